"""Shared fixtures. Servers come from the lab (`python manage.py lab up`, run by `make test`)."""

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
