"""Actions of the users app: the directory sync (directory.py) and the account inventory
(accounts.py). Re-exported here: `from users.actions import sync_directory`."""

from users.actions.accounts import (
    ClassificationRefused,
    import_accounts,
    import_clusters,
    link_account,
    mark_account_functional,
    unclassify_account,
)
from users.actions.directory import (
    SyncRefused,
    confirm_directory_sync,
    dismiss_directory_sync,
    open_hold,
    sync_directory,
)

__all__ = [
    "ClassificationRefused",
    "SyncRefused",
    "confirm_directory_sync",
    "dismiss_directory_sync",
    "import_accounts",
    "import_clusters",
    "link_account",
    "mark_account_functional",
    "open_hold",
    "sync_directory",
    "unclassify_account",
]
