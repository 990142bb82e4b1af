"""Pages of the users app, one module per area, re-exported here for users.urls:
people.py (the people list, a person's page with its offboarding box, the directory syncs),
accounts.py (the account inventory, an account's page and its classification),
offboarding.py (start and undo an offboarding, its live box, evidence, the list of runs),
lifecycle.py (an account's manage page and its actions, each queued as a job; the one-time
password page).

Thin: one gate in users.access, then render, enqueue one job or call one action.
"""

from users.views.accounts import (
    account_detail,
    account_functional,
    account_link,
    account_list,
    account_unclassify,
    accounts_import,
)
from users.views.lifecycle import (
    account_create,
    account_drop,
    account_expiry,
    account_lifecycle,
    account_lock,
    account_password,
    account_privileges,
    account_role,
    account_rotate,
    account_unlock,
)
from users.views.offboarding import (
    offboarding_evidence,
    offboarding_list,
    person_offboard,
    person_offboard_undo,
    person_offboarding,
)
from users.views.people import (
    person_detail,
    person_list,
    sync_confirm,
    sync_detail,
    sync_dismiss,
    sync_list,
    sync_start,
)

__all__ = [
    "account_create",
    "account_detail",
    "account_drop",
    "account_expiry",
    "account_functional",
    "account_lifecycle",
    "account_link",
    "account_list",
    "account_lock",
    "account_password",
    "account_privileges",
    "account_role",
    "account_rotate",
    "account_unclassify",
    "account_unlock",
    "accounts_import",
    "offboarding_evidence",
    "offboarding_list",
    "person_detail",
    "person_list",
    "person_offboard",
    "person_offboard_undo",
    "person_offboarding",
    "sync_confirm",
    "sync_detail",
    "sync_dismiss",
    "sync_list",
    "sync_start",
]
