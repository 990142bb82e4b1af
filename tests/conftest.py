"""Shared fixtures. Servers come from the lab (`python manage.py lab up`, run by `make test`)."""

import os
from collections.abc import Mapping
from types import MappingProxyType

import pytest

from tests import factories


# Personas: signed-in users of each kind, and one in no persona group.
@pytest.fixture
def dba(db):
    return factories.make_user("dba", persona="dba", first_name="Dana", last_name="Admin")


@pytest.fixture
def helpdesk(db):
    return factories.make_user("helpdesk", persona="helpdesk")


@pytest.fixture
def manager(db):
    return factories.make_user("manager", persona="manager")


@pytest.fixture
def auditor(db):
    return factories.make_user("auditor", persona="auditor")


@pytest.fixture
def outsider(db):
    return factories.make_user("outsider")


# --- The lab (console/lab): servers started by `make test`, variables loaded from `lab env` -----
LAB_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "LAB_DIR",
    "LAB_SSH_HOST",
    "LAB_SSH_PORT",
    "LAB_SSH_USER",
    "LAB_SSH_KEY",
    "LAB_SSH_KNOWN_HOSTS",
    "LAB_PG_HOST",
    "LAB_PG_PORT",
    "LAB_PG_USER",
    "LAB_PG_PASSWORD",
    "LAB_MYSQL_HOST",
    "LAB_MYSQL_PORT",
    "LAB_MYSQL_USER",
    "LAB_MYSQL_PASSWORD",
    "LAB_LDAP_URI",
    "LAB_LDAP_BASE",
    "LAB_LDAP_ADMIN_DN",
    "LAB_LDAP_ADMIN_PASSWORD",
)


@pytest.fixture(scope="session")
def lab_env() -> Mapping[str, str]:
    """The lab's variables (read-only mapping). Fails, never skips, when the lab env is not
    loaded: a test that needs a server must not pass without one."""
    missing = [name for name in LAB_VARIABLES if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"lab environment not loaded: {', '.join(missing)} unset. Run `make test`, or as root: "
            'python manage.py lab up; set -a; eval "$(python manage.py lab env)"; set +a',
            pytrace=False,
        )
    return MappingProxyType({name: os.environ[name] for name in LAB_VARIABLES})
