"""users/actions/grants.py against the lab's real PostgreSQL cluster and MariaDB (issue 6, part 3):
roles, privileges and password expiry granted, revoked and set, each read back from the server
and checked by logging in; a second call changes nothing. Every test cleans up what it made."""

import psycopg
import pytest
from psycopg import sql

from tests.users.labdb import (
    PASSWORD,
    my_account,
    my_admin,
    my_create,
    my_login,
    pg_account,
    pg_admin,
    pg_can_login,
    pg_create,
    pg_login,
)
from users import dbops
from users.actions import grants

pytestmark = pytest.mark.django_db(transaction=True)


# --- actions: roles, privileges, expiry ---------------------------------------------------------


def test_pg_grant_and_revoke_a_role_read_back(demo, lab_env, cleanup, dba):
    pg_create(lab_env, cleanup, "member m")
    pg_create(lab_env, cleanup, 'Group G"', login=False)
    account = pg_account(demo, "member m")
    done = grants.grant_role(account, 'Group G"', actor=dba)
    assert done.changed and done.detail["member_of"] == ['Group G"']
    account.refresh_from_db()
    assert account.member_of == ['Group G"']
    assert not grants.grant_role(account, 'Group G"', actor=dba).changed
    assert grants.revoke_role(account, 'Group G"', actor=dba).changed
    assert dbops.account_state(account)["member_of"] == []
    assert not grants.revoke_role(account, 'Group G"', actor=dba).changed


def test_mariadb_grant_and_revoke_a_role_read_back(demo, lab_env, cleanup):
    my_create(lab_env, cleanup, "member m")
    conn = my_admin(lab_env)
    try:
        conn.cursor().execute("CREATE ROLE IF NOT EXISTS `lc role r`")
    finally:
        conn.close()
    account = my_account(demo, "member m")
    try:
        assert grants.grant_role(account, "lc role r").changed
        assert dbops.account_state(account)["member_of"] == ["lc role r"]
        assert grants.revoke_role(account, "lc role r").changed
        assert dbops.account_state(account)["member_of"] == []
    finally:
        conn = my_admin(lab_env)
        try:
            conn.cursor().execute("DROP ROLE IF EXISTS `lc role r`")
        finally:
            conn.close()


def test_pg_privileges_are_granted_revoked_and_read_back(demo, lab_env, cleanup, dba):
    db = "lc lifecycle db"
    cleanup.pg_databases.append(db)
    pg_create(lab_env, cleanup, "reader r")
    with pg_admin(lab_env) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with pg_login(lab_env, lab_env["LAB_PG_USER"], lab_env["LAB_PG_PASSWORD"], dbname=db) as conn:
        conn.execute('CREATE SCHEMA "Sales"')
        conn.execute('CREATE TABLE "Sales".a (id int)')
        conn.execute('CREATE TABLE "Sales".b (id int)')
    account = pg_account(demo, "reader r")
    wanted = ["CONNECT", "USAGE", "SELECT"]
    done = grants.grant_privileges(account, privileges_=wanted, database=db, schema="Sales")
    assert done.changed
    assert done.detail["privileges"] == {"database": ["CONNECT"], "schema": ["USAGE"],
                                         "tables": ["SELECT"]}  # fmt: skip
    with pg_login(lab_env, "reader r", PASSWORD, dbname=db) as conn:
        assert conn.execute('SELECT count(*) FROM "Sales".b').fetchone()[0] == 0
    again = grants.grant_privileges(account, privileges_=wanted, database=db, schema="Sales")
    assert not again.changed
    done = grants.revoke_privileges(account, privileges_=["SELECT"], database=db, schema="Sales")
    assert done.detail["privileges"]["tables"] == []
    with pg_login(lab_env, "reader r", PASSWORD, dbname=db) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute('SELECT count(*) FROM "Sales".b')
    with pytest.raises(dbops.AccountRefused, match="choose privileges"):
        grants.grant_privileges(account, privileges_=["DROP TABLE"], database=db)


def test_mariadb_privileges_are_granted_revoked_and_read_back(demo, lab_env, cleanup):
    my_create(lab_env, cleanup, "reader r")
    cleanup.my_databases.extend(["lc_app_db", "lcXapp_db"])
    conn = my_admin(lab_env)
    try:
        conn.cursor().execute("CREATE DATABASE lc_app_db")
        conn.cursor().execute("CREATE DATABASE lcXapp_db")
    finally:
        conn.close()
    account = my_account(demo, "reader r")
    done = grants.grant_privileges(account, privileges_=["SELECT", "INSERT"], database="lc_app_db")
    assert done.changed and done.detail["privileges"] == {"database": ["SELECT", "INSERT"]}
    conn = my_login(lab_env, "reader r", PASSWORD)
    try:
        cur = conn.cursor()
        cur.execute("SHOW DATABASES")
        shown = {r[0] for r in cur.fetchall()}
    finally:
        conn.close()
    assert "lc_app_db" in shown and "lcXapp_db" not in shown, "_ is not a wildcard here"
    assert not grants.grant_privileges(
        account, privileges_=["SELECT"], database="lc_app_db"
    ).changed
    done = grants.revoke_privileges(account, privileges_=["SELECT", "INSERT"], database="lc_app_db")
    assert done.detail["privileges"] == {"database": []}


def test_pg_valid_until_is_set_and_cleared(demo, lab_env, cleanup, dba):
    from datetime import UTC, datetime, timedelta

    pg_create(lab_env, cleanup, "expiring e")
    account = pg_account(demo, "expiring e")
    past = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert grants.set_password_expiry(account, until=past, actor=dba).changed
    account.refresh_from_db()
    assert account.valid_until == past and account.expired
    assert not pg_can_login(lab_env, "expiring e", PASSWORD)
    assert not grants.set_password_expiry(account, until=past).changed
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    assert grants.set_password_expiry(account, until=later).changed
    assert pg_can_login(lab_env, "expiring e", PASSWORD)
    assert grants.set_password_expiry(account, until=None).changed
    assert dbops.account_state(account)["valid_until"] is None


def test_mariadb_password_expiry_modes(demo, lab_env, cleanup):
    my_create(lab_env, cleanup, "expiring e")
    account = my_account(demo, "expiring e")
    assert grants.set_password_expiry(account, mariadb="interval", days=90).changed
    assert dbops.account_state(account)["password_lifetime"] == 90
    assert not grants.set_password_expiry(account, mariadb="interval", days=90).changed
    assert grants.set_password_expiry(account, mariadb="never").changed
    assert dbops.account_state(account)["password_lifetime"] == 0
    assert grants.set_password_expiry(account, mariadb="now").changed
    assert dbops.account_state(account)["expired"]
    with pytest.raises(dbops.AccountRefused, match="between 1 and 65535"):
        grants.set_password_expiry(account, mariadb="interval", days=0)
