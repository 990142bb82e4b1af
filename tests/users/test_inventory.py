"""Pure parts of the users app: the servers' answers (recorded from the lab by the statements of
users/sql/), the MariaDB password lifetime, the naming rules and the sync's plan and threshold."""

import json
from pathlib import Path

import pytest

from users.actions.directory import DISABLED, GONE, plan_sync, too_many_leave
from users.inventory import NamingRules, mariadb_accounts, mariadb_password_expired, pg_accounts
from users.ldap import DirectoryEntry
from users.models import Person

FIXTURES = Path(__file__).parent / "fixtures"


def _recorded(name: str):
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    return data["columns"], [tuple(row) for row in data["rows"]]


def test_pg_roles_as_recorded_on_db1():
    accounts = {a.name: a for a in pg_accounts(*_recorded("accounts-pg-list"))}
    assert accounts["postgres"].superuser and accounts["postgres"].can_login
    assert "replication" in accounts["postgres"].attributes
    assert accounts["alice"].member_of == ("pg_monitor",) and not accounts["alice"].locked
    assert accounts["replicator"].attributes == ("replication",)
    assert accounts["analytics_ro"].comment.startswith("owner=team-analytics")
    assert all(a.password_changed_at is None for a in accounts.values())


def test_mariadb_users_as_recorded_on_my1():
    accounts = {(a.name, a.host): a for a in mariadb_accounts(*_recorded("accounts-mariadb-list"))}
    assert ("PUBLIC", "") not in accounts  # a role, not a login
    sys_account = accounts["mariadb.sys", "localhost"]
    assert (sys_account.locked, sys_account.expired) == (True, True)
    assert accounts["root", "localhost"].plugin == "mysql_native_password or unix_socket"
    alice = accounts["alice", "%"]
    assert alice.superuser and not alice.locked and alice.password_changed_at.year >= 2024
    assert accounts["", "localhost"].plugin == ""  # the anonymous account


def _row(**values):
    row = {"password_expired": 0, "password_lifetime": None, "default_password_lifetime": 0,
           "password_last_changed": 1_000_000, "server_now": 1_000_000 + 10 * 86400}  # fmt: skip
    return {**row, **values}


@pytest.mark.parametrize(
    "values, expired",
    [
        ({}, False),  # no lifetime anywhere
        ({"password_expired": 1}, True),  # PASSWORD EXPIRE
        ({"default_password_lifetime": 5}, True),  # the server's default, passed
        ({"default_password_lifetime": 30}, False),
        ({"default_password_lifetime": 5, "password_lifetime": "0"}, False),  # never, its own
        ({"password_lifetime": "9"}, True),
        ({"password_lifetime": "9", "password_last_changed": None}, False),
    ],
)
def test_mariadb_password_lifetime(values, expired):
    assert mariadb_password_expired(_row(**values)) is expired


UIDS = {"alice": "alice", "bob": "bob", "zoe": "zoe"}


@pytest.mark.parametrize(
    "name, uid",
    [("alice", "alice"), ("ALICE", "alice"), ("alice_adm", "alice"), ("p_bob", "bob"),
     ("bobby", None), ("p_alice_adm", None), ("old_contractor", None), ('x"; --', None)],
)  # fmt: skip
def test_naming_rules(name, uid):
    rules = NamingRules(["^{uid}$", "^{uid}_adm$", "^p_{uid}$"])
    assert rules.person_for(name, UIDS) == uid


def test_a_name_two_rules_give_to_different_people_is_left_to_a_person():
    rules = NamingRules(["^{uid}$", "^{uid}_adm$"])
    assert rules.person_for("bob_adm", {"bob": "bob", "bob_adm": "bob_adm"}) is None


@pytest.mark.parametrize("rule", ["^admin$", "^{uid}{uid}$", "^({uid}$"])
def test_bad_naming_rules_are_refused(rule):
    with pytest.raises(ValueError, match="naming rule"):
        NamingRules([rule])


def _person(uid: str, state: str = "active", groups=()) -> Person:
    return Person(uid=uid, name=uid.title(), mail=f"{uid}@example.org",
                  dn=f"uid={uid},ou=people", groups=list(groups), state=state)  # fmt: skip


def _entry(uid: str, **fields) -> DirectoryEntry:
    base = {"uid": uid, "name": uid.title(), "mail": f"{uid}@example.org",
            "dn": f"uid={uid},ou=people"}  # fmt: skip
    return DirectoryEntry(**{**base, **fields})


def test_the_plan_of_a_sync():
    people = [_person("ann"), _person("ben"), _person("cid"), _person("dot", state="left")]
    entries = [_entry("ann"), _entry("ben", groups=("dba",)), _entry("cid", disabled=True),
               _entry("dot"), _entry("eve")]  # fmt: skip
    plan = plan_sync(entries, people)
    assert [e.uid for e in plan.create] == ["eve"]
    assert [(p.uid, changed) for p, _e, changed in plan.update] == [("ben", ["groups"])]
    assert [(p.uid, reason) for p, reason in plan.leave] == [("cid", DISABLED)]
    assert [p.uid for p, _e in plan.returned] == ["dot"]
    assert plan_sync(entries[:1], people[:2]).leave[0][1] == GONE


def test_the_share_of_people_leaving_at_once():
    assert not too_many_leave(1, 13, 0.10)  # 7.7 %
    assert too_many_leave(2, 13, 0.10)  # 15.4 %
    assert not too_many_leave(1, 10, 0.10)  # exactly 10 %: not more than
    assert not too_many_leave(0, 0, 0.10)
    assert too_many_leave(13, 13, 0.10)  # an empty answer
