"""The engine primitives of users/dbops.py against the lab's real PostgreSQL cluster and MariaDB
(issue 6, part 3): names the servers would misread are refused; lock, unlock and ending sessions
are checked on the servers themselves (a locked role really cannot log in, on the standby too).
Every test cleans up what it made."""

import time

import psycopg
import pytest

from console import audit
from console.models import AuditEntry
from tests.users.labdb import (
    EVIL,
    PASSWORD,
    my_account,
    my_can_login,
    my_create,
    my_login,
    pg_account,
    pg_can_login,
    pg_create,
    pg_login,
)
from users import dbops

pytestmark = pytest.mark.django_db(transaction=True)


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


# --- dbops: names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "empty"),
        ("a\x00b", "NUL"),
        ("é" * 32, "at most 63 bytes"),
        ("pg_monitor_x", "reserved"),
        ("public", "reserved"),
    ],
)
def test_postgresql_names_the_server_would_misread_are_refused(name, message):
    with pytest.raises(dbops.AccountRefused, match=message):
        dbops.check_account_name(name, "postgresql")


def test_postgresql_names_with_quotes_spaces_case_unicode_are_accepted():
    for name in (EVIL, "Mixed Case", "ünïcødé ロール", "a" * 63, "é" * 31):
        dbops.check_account_name(name, "postgresql")


def test_mariadb_names_the_helper_cannot_quote_are_refused():
    with pytest.raises(dbops.AccountRefused, match="NUL"):
        dbops.check_account_name("a\x00", "mariadb", "%")
    with pytest.raises(dbops.AccountRefused, match="at most 128"):
        dbops.check_account_name("u" * 129, "mariadb", "%")


# --- dbops: lock, unlock, sessions, state on PostgreSQL ----------------------------------------


def test_pg_lock_refuses_login_and_unlock_restores_it(demo, lab_env, cleanup, dba):
    pg_create(lab_env, cleanup, EVIL)
    account = pg_account(demo, EVIL)
    assert pg_can_login(lab_env, EVIL, PASSWORD)

    done = dbops.lock_account(account, actor=dba)
    assert done.changed and "locked" in done.message
    assert not pg_can_login(lab_env, EVIL, PASSWORD)
    assert dbops.account_state(account)["locked"] is True
    account.refresh_from_db()
    assert account.locked

    again = dbops.lock_account(account, actor=dba)
    assert not again.changed and "already locked" in again.message

    done = dbops.unlock_account(account, actor=dba)
    assert done.changed
    assert pg_can_login(lab_env, EVIL, PASSWORD)
    assert not dbops.unlock_account(account, actor=dba).changed

    entries = AuditEntry.objects.filter(action=audit.ACCOUNT_LOCKED).order_by("id")
    assert [e.status for e in entries] == ["started", "succeeded"]
    assert "NOLOGIN" in entries[1].command
    assert 'ALTER ROLE "x""; DROP TABLE t; --" NOLOGIN' in entries[1].command
    assert PASSWORD not in "".join(e.command + e.output for e in AuditEntry.objects.all())


def test_pg_lock_replicates_to_the_standby(demo, lab_env, cleanup):
    pg_create(lab_env, cleanup, "Replicated Role")
    account = pg_account(demo, "Replicated Role")
    dbops.lock_account(account)
    standby = demo["lab-pg"].nodes.get(name="db2")
    assert _wait(lambda: dbops.account_state(account, node=standby)["locked"])
    assert not pg_can_login(lab_env, "Replicated Role", PASSWORD)


def test_pg_lock_of_a_role_missing_on_the_server_says_so(demo):
    account = pg_account(demo, "never created here")
    with pytest.raises(dbops.AccountMissing, match="does not exist on db1"):
        dbops.lock_account(account)


def test_pg_terminate_sessions_ends_primary_and_standby_sessions(demo, lab_env, cleanup):
    pg_create(lab_env, cleanup, "Sessions Ünïcode")
    account = pg_account(demo, "Sessions Ünïcode")
    on_primary = pg_login(lab_env, "Sessions Ünïcode", PASSWORD)
    standby = demo["lab-pg"].nodes.get(name="db2").address
    assert _wait(lambda: pg_can_login(lab_env, "Sessions Ünïcode", PASSWORD))
    on_standby = pg_login(lab_env, "Sessions Ünïcode", PASSWORD, host=standby)
    try:
        assert dbops.account_state(account)["sessions"] == 1
        assert dbops.terminate_sessions(account) == 2
        for conn in (on_primary, on_standby):
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
        assert dbops.terminate_sessions(account) == 0
    finally:
        on_primary.close()
        on_standby.close()


# --- dbops: MariaDB ----------------------------------------------------------------------------


def test_mariadb_lock_refuses_login_and_unlock_restores_it(demo, lab_env, cleanup, dba):
    my_create(lab_env, cleanup, EVIL)
    account = my_account(demo, EVIL)
    assert my_can_login(lab_env, EVIL, PASSWORD)

    assert dbops.lock_account(account, actor=dba).changed
    assert not my_can_login(lab_env, EVIL, PASSWORD)
    state = dbops.account_state(account)
    assert state["locked"] and not state["can_login"]
    assert not dbops.lock_account(account, actor=dba).changed

    assert dbops.unlock_account(account, actor=dba).changed
    assert my_can_login(lab_env, EVIL, PASSWORD)
    entry = AuditEntry.objects.filter(action=audit.ACCOUNT_LOCKED).latest("id")
    assert (
        'ALTER USER `x"; DROP TABLE t; --`@`%%` ACCOUNT LOCK' in entry.command
    )  # the template as sent


def test_mariadb_terminate_sessions_kills_the_users_threads(demo, lab_env, cleanup):
    my_create(lab_env, cleanup, "Kill Me")
    account = my_account(demo, "Kill Me")
    conn = my_login(lab_env, "Kill Me", PASSWORD)
    try:
        assert dbops.account_state(account)["sessions"] == 1
        assert dbops.terminate_sessions(account) == 1
        with pytest.raises(Exception):  # noqa: B017 - MySQLdb raises OperationalError 2006/2013
            conn.cursor().execute("SELECT 1")
        assert dbops.terminate_sessions(account) == 0
    finally:
        conn.close()
