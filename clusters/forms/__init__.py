"""Forms of the clusters app, one module per area, re-exported here: inventory.py."""

from clusters.forms.ha import HaConfirmForm
from clusters.forms.inventory import LogSearchForm, RegistrationForm, SecretTextarea
from clusters.forms.provision_mariadb import MariadbProvisionForm

__all__ = [
    "HaConfirmForm",
    "LogSearchForm",
    "MariadbProvisionForm",
    "RegistrationForm",
    "SecretTextarea",
]
