"""Forms of the clusters app, one module per area, re-exported here: inventory.py."""

from clusters.forms.inventory import LogSearchForm, RegistrationForm, SecretTextarea

__all__ = ["LogSearchForm", "RegistrationForm", "SecretTextarea"]
