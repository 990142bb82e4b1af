"""Account lifecycle against the lab's real PostgreSQL cluster and MariaDB (issue 6, part 3):
the engine primitives of users/dbops.py and the actions of users/actions/lifecycle.py. Every
test checks the server itself (a locked role really cannot log in) and cleans up what it made."""

import time

import psycopg
import pytest
from psycopg import sql

from console import audit
from console.models import AuditEntry
from tests.users.labdb import (
    Cleanup,
    my_admin,
    my_can_login,
    my_login,
    pg_admin,
    pg_can_login,
    pg_login,
)
from users import dbops, passwords
from users.actions import lifecycle
from users.models import DatabaseAccount

pytestmark = pytest.mark.django_db(transaction=True)

EVIL = 'x"; DROP TABLE t; --'
PASSWORD = "Corr3ct horse 'battery' staple"


@pytest.fixture
def cleanup(lab_env):
    c = Cleanup(lab_env)
    yield c
    c.run()


def _pg_account(demo, name: str) -> DatabaseAccount:
    cluster = demo["lab-pg"]
    return DatabaseAccount.objects.create(
        cluster=cluster, node=cluster.nodes.get(name="db1"), name=name
    )


def _my_account(demo, name: str, host: str = "%") -> DatabaseAccount:
    cluster = demo["lab-mariadb"]
    return DatabaseAccount.objects.create(
        cluster=cluster, node=cluster.nodes.get(name="my1"), name=name, host=host
    )


def _pg_create(env, cleanup, name: str, password: str = PASSWORD, login=True) -> None:
    cleanup.pg_roles.append(name)
    with pg_admin(env) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} {} PASSWORD {}").format(
                sql.Identifier(name),
                sql.SQL("LOGIN" if login else "NOLOGIN"),
                sql.Literal(password),
            )
        )


def _my_create(env, cleanup, name: str, host: str = "%", password: str = PASSWORD) -> None:
    from console.executor.sql import quote_mysql_account

    cleanup.my_accounts.append((name, host))
    conn = my_admin(env)
    try:
        conn.cursor().execute(
            "CREATE USER " + quote_mysql_account(name, host) + " IDENTIFIED BY %s", (password,)
        )
    finally:
        conn.close()


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
    _pg_create(lab_env, cleanup, EVIL)
    account = _pg_account(demo, EVIL)
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
    _pg_create(lab_env, cleanup, "Replicated Role")
    account = _pg_account(demo, "Replicated Role")
    dbops.lock_account(account)
    standby = demo["lab-pg"].nodes.get(name="db2")
    assert _wait(lambda: dbops.account_state(account, node=standby)["locked"])
    assert not pg_can_login(lab_env, "Replicated Role", PASSWORD)


def test_pg_lock_of_a_role_missing_on_the_server_says_so(demo):
    account = _pg_account(demo, "never created here")
    with pytest.raises(dbops.AccountMissing, match="does not exist on db1"):
        dbops.lock_account(account)


def test_pg_terminate_sessions_ends_primary_and_standby_sessions(demo, lab_env, cleanup):
    _pg_create(lab_env, cleanup, "Sessions Ünïcode")
    account = _pg_account(demo, "Sessions Ünïcode")
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
    _my_create(lab_env, cleanup, EVIL)
    account = _my_account(demo, EVIL)
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
    _my_create(lab_env, cleanup, "Kill Me")
    account = _my_account(demo, "Kill Me")
    conn = my_login(lab_env, "Kill Me", PASSWORD)
    try:
        assert dbops.account_state(account)["sessions"] == 1
        assert dbops.terminate_sessions(account) == 1
        with pytest.raises(Exception):  # noqa: B017 - MySQLdb raises OperationalError 2006/2013
            conn.cursor().execute("SELECT 1")
        assert dbops.terminate_sessions(account) == 0
    finally:
        conn.close()


# --- actions: create, lock, drop (the must-show) -----------------------------------------------


def _pg_table_exists(env, dbname: str, table: str) -> bool:
    with pg_admin(env) as conn:
        conn.execute(sql.SQL("SET search_path TO public"))
        return bool(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0])


def test_the_injection_named_role_is_created_locked_and_dropped(
    demo, lab_env, cleanup, dba, assert_no_secret_stored
):
    cleanup.pg_roles.append(EVIL)
    with pg_admin(lab_env) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id int)")
    try:
        account, password = lifecycle.create_account(
            demo["lab-pg"], EVIL, kind="unclassified", actor=dba
        )
        assert account.name == EVIL and account.node.name == "db1"
        assert pg_can_login(lab_env, EVIL, password)
        with pg_admin(lab_env) as conn:
            stored = conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (EVIL,)
            ).fetchone()[0]
        assert passwords.scram_matches(stored, password)

        assert dbops.lock_account(account, actor=dba).changed
        assert not pg_can_login(lab_env, EVIL, password)

        done = lifecycle.drop_account(account, actor=dba)
        assert done.changed and "it owned nothing" in done.message
        with pg_admin(lab_env) as conn:
            assert (
                conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (EVIL,)).fetchone()
                is None
            )
        assert _pg_table_exists(lab_env, "postgres", "t"), "the table t must still be there"
        account.refresh_from_db()
        assert account.gone_at is not None
        assert not lifecycle.drop_account(account, actor=dba).changed
        assert_no_secret_stored(password)
        created = AuditEntry.objects.filter(action=audit.ACCOUNT_CREATED, status="succeeded")
        assert any(
            'CREATE ROLE "x""; DROP TABLE t; --" LOGIN PASSWORD' in e.command for e in created
        )
        assert all("SCRAM-SHA-256$" not in e.command for e in created)
    finally:
        with pg_admin(lab_env) as conn:
            conn.execute("DROP TABLE IF EXISTS t")


def test_the_injection_named_mariadb_user_is_created_locked_and_dropped(
    demo, lab_env, cleanup, dba, assert_no_secret_stored
):
    cleanup.my_accounts.append((EVIL, "%"))
    account, password = lifecycle.create_account(demo["lab-mariadb"], EVIL, actor=dba)
    assert account.host == "%"
    assert my_can_login(lab_env, EVIL, password)
    conn = my_admin(lab_env)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT JSON_VALUE(Priv, '$.authentication_string'), JSON_VALUE(Priv, '$.plugin') "
            "FROM mysql.global_priv WHERE User = %s AND Host = '%%'",
            (EVIL,),
        )
        stored, plugin = cur.fetchone()
    finally:
        conn.close()
    assert stored == passwords.mysql_native_password_hash(password)
    assert plugin == "mysql_native_password"
    assert dbops.lock_account(account, actor=dba).changed
    assert not my_can_login(lab_env, EVIL, password)
    assert lifecycle.drop_account(account, actor=dba).changed
    assert not dbops.account_state(account)["exists"]
    assert_no_secret_stored(password, stored)


@pytest.mark.parametrize("name", ["Upper Case", "ünïcødé ロール", 'it\'s "quoted"'])
def test_names_with_quotes_spaces_case_unicode_work(demo, lab_env, cleanup, name):
    cleanup.pg_roles.append(name)
    cleanup.my_accounts.append((name, "%"))
    account, password = lifecycle.create_account(demo["lab-pg"], name)
    assert pg_can_login(lab_env, name, password)
    mine, my_password = lifecycle.create_account(demo["lab-mariadb"], name)
    assert my_can_login(lab_env, name, my_password)
    assert lifecycle.drop_account(account).changed and lifecycle.drop_account(mine).changed


@pytest.mark.parametrize("name", ["a" * 64, "nul\x00", "", "pg_evil"])
def test_bad_names_are_refused_before_anything_is_sent(demo, name):
    before = (AuditEntry.objects.count(), DatabaseAccount.objects.count())
    with pytest.raises(dbops.AccountRefused):
        lifecycle.create_account(demo["lab-pg"], name)
    assert (AuditEntry.objects.count(), DatabaseAccount.objects.count()) == before


def test_create_refuses_an_account_that_already_exists(demo, lab_env, cleanup):
    _pg_create(lab_env, cleanup, "already here")
    with pytest.raises(dbops.AccountRefused, match="already exists on db1"):
        lifecycle.create_account(demo["lab-pg"], "already here")


# --- actions: drop in the safe order -----------------------------------------------------------


def _pg_owner_with_objects(env, cleanup, role: str) -> str:
    """A role owning a schema with a table and a view in a database of its own (the database
    is owned by the admin), and holding a privilege on another table."""
    db = "lc lifecycle db"
    cleanup.pg_databases.append(db)
    _pg_create(env, cleanup, role)
    with pg_admin(env) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with pg_login(env, env["LAB_PG_USER"], env["LAB_PG_PASSWORD"], dbname=db) as conn:
        r = sql.Identifier(role)
        conn.execute(sql.SQL("CREATE SCHEMA app AUTHORIZATION {}").format(r))
        conn.execute("CREATE TABLE public.kept (id int)")
        conn.execute(sql.SQL("GRANT SELECT ON public.kept TO {}").format(r))
        conn.execute(sql.SQL("SET ROLE {}").format(r))
        conn.execute("CREATE TABLE app.orders (id int)")
        conn.execute("INSERT INTO app.orders VALUES (1), (2)")
        conn.execute("CREATE VIEW app.v AS SELECT id FROM app.orders")
    return db


def test_drop_is_refused_without_a_reassign_target_when_the_role_owns_objects(
    demo, lab_env, cleanup, dba
):
    owner = "Owner O'Brien"
    db = _pg_owner_with_objects(lab_env, cleanup, owner)
    account = _pg_account(demo, owner)
    with pytest.raises(dbops.AccountRefused, match="Choose a role to reassign") as refused:
        lifecycle.drop_account(account, actor=dba)
    assert refused.value.field == "reassign_to" and db in str(refused.value)
    assert pg_can_login(lab_env, owner, PASSWORD), "a refused drop changes nothing"
    assert not dbops.account_state(account)["locked"]
    with pytest.raises(dbops.AccountRefused, match="no role nobody-here"):
        lifecycle.drop_account(account, reassign_to="nobody-here", actor=dba)


def test_drop_with_a_reassign_target_keeps_the_objects_and_ends_sessions(
    demo, lab_env, cleanup, dba
):
    owner, heir = "Owner O'Brien", "Heir Ünïcode"
    db = _pg_owner_with_objects(lab_env, cleanup, owner)
    _pg_create(lab_env, cleanup, heir, login=False)
    account = _pg_account(demo, owner)
    session = pg_login(lab_env, owner, PASSWORD, dbname=db)
    try:
        done = lifecycle.drop_account(account, reassign_to=heir, actor=dba)
    finally:
        session.close()
    assert done.changed and done.detail["sessions"] == 1
    objects = dict((n, k) for k, n in done.detail["owned"]["databases"][db]["objects"])
    assert objects["app.orders"] == "table" and objects["app"] == "schema"
    assert "reassigned to Heir Ünïcode" in done.message
    with pg_login(lab_env, lab_env["LAB_PG_USER"], lab_env["LAB_PG_PASSWORD"], dbname=db) as conn:
        owners = dict(conn.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app'"
        ).fetchall())  # fmt: skip
        assert owners == {"orders": heir, "v": heir}
        assert conn.execute("SELECT count(*) FROM app.orders").fetchone()[0] == 2
    with pg_admin(lab_env) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone() is None
        )
    entry = AuditEntry.objects.filter(action=audit.ACCOUNT_DROPPED, status="succeeded").latest("id")
    assert "object(s) in lc lifecycle db (" in entry.output and "table app.orders" in entry.output
    dropped = AuditEntry.objects.filter(action=audit.ACCOUNT_DROPPED, status="succeeded")
    steps = [e.command.split(" ")[0] for e in dropped.exclude(command="").order_by("id")]
    assert steps[-3:] == ["REASSIGN", "DROP", "DROP"]


def test_mariadb_drop_is_refused_while_the_account_defines_a_view(demo, lab_env, cleanup):
    name = "definer d"
    _my_create(lab_env, cleanup, name)
    cleanup.my_databases.append("lc_definer")
    conn = my_admin(lab_env)
    try:
        cur = conn.cursor()
        cur.execute("CREATE DATABASE lc_definer")
        cur.execute("CREATE VIEW lc_definer.v1 AS SELECT 1 AS one")
        cur.execute("ALTER DEFINER = `definer d`@`%` VIEW lc_definer.v1 AS SELECT 1 AS one")
    finally:
        conn.close()
    account = _my_account(demo, name)
    with pytest.raises(dbops.AccountRefused, match="DEFINER of view lc_definer.v1"):
        lifecycle.drop_account(account)
    assert dbops.account_state(account)["exists"]


# --- actions: roles, privileges, expiry ---------------------------------------------------------


def test_pg_grant_and_revoke_a_role_read_back(demo, lab_env, cleanup, dba):
    _pg_create(lab_env, cleanup, "member m")
    _pg_create(lab_env, cleanup, 'Group G"', login=False)
    account = _pg_account(demo, "member m")
    done = lifecycle.grant_role(account, 'Group G"', actor=dba)
    assert done.changed and done.detail["member_of"] == ['Group G"']
    account.refresh_from_db()
    assert account.member_of == ['Group G"']
    assert not lifecycle.grant_role(account, 'Group G"', actor=dba).changed
    assert lifecycle.revoke_role(account, 'Group G"', actor=dba).changed
    assert dbops.account_state(account)["member_of"] == []
    assert not lifecycle.revoke_role(account, 'Group G"', actor=dba).changed


def test_mariadb_grant_and_revoke_a_role_read_back(demo, lab_env, cleanup):
    _my_create(lab_env, cleanup, "member m")
    conn = my_admin(lab_env)
    try:
        conn.cursor().execute("CREATE ROLE IF NOT EXISTS `lc role r`")
    finally:
        conn.close()
    account = _my_account(demo, "member m")
    try:
        assert lifecycle.grant_role(account, "lc role r").changed
        assert dbops.account_state(account)["member_of"] == ["lc role r"]
        assert lifecycle.revoke_role(account, "lc role r").changed
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
    _pg_create(lab_env, cleanup, "reader r")
    with pg_admin(lab_env) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with pg_login(lab_env, lab_env["LAB_PG_USER"], lab_env["LAB_PG_PASSWORD"], dbname=db) as conn:
        conn.execute('CREATE SCHEMA "Sales"')
        conn.execute('CREATE TABLE "Sales".a (id int)')
        conn.execute('CREATE TABLE "Sales".b (id int)')
    account = _pg_account(demo, "reader r")
    wanted = ["CONNECT", "USAGE", "SELECT"]
    done = lifecycle.grant_privileges(account, privileges_=wanted, database=db, schema="Sales")
    assert done.changed
    assert done.detail["privileges"] == {"database": ["CONNECT"], "schema": ["USAGE"],
                                         "tables": ["SELECT"]}  # fmt: skip
    with pg_login(lab_env, "reader r", PASSWORD, dbname=db) as conn:
        assert conn.execute('SELECT count(*) FROM "Sales".b').fetchone()[0] == 0
    again = lifecycle.grant_privileges(account, privileges_=wanted, database=db, schema="Sales")
    assert not again.changed
    done = lifecycle.revoke_privileges(account, privileges_=["SELECT"], database=db, schema="Sales")
    assert done.detail["privileges"]["tables"] == []
    with pg_login(lab_env, "reader r", PASSWORD, dbname=db) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute('SELECT count(*) FROM "Sales".b')
    with pytest.raises(dbops.AccountRefused, match="choose privileges"):
        lifecycle.grant_privileges(account, privileges_=["DROP TABLE"], database=db)


def test_mariadb_privileges_are_granted_revoked_and_read_back(demo, lab_env, cleanup):
    _my_create(lab_env, cleanup, "reader r")
    cleanup.my_databases.extend(["lc_app_db", "lcXapp_db"])
    conn = my_admin(lab_env)
    try:
        conn.cursor().execute("CREATE DATABASE lc_app_db")
        conn.cursor().execute("CREATE DATABASE lcXapp_db")
    finally:
        conn.close()
    account = _my_account(demo, "reader r")
    done = lifecycle.grant_privileges(
        account, privileges_=["SELECT", "INSERT"], database="lc_app_db"
    )
    assert done.changed and done.detail["privileges"] == {"database": ["SELECT", "INSERT"]}
    conn = my_login(lab_env, "reader r", PASSWORD)
    try:
        cur = conn.cursor()
        cur.execute("SHOW DATABASES")
        shown = {r[0] for r in cur.fetchall()}
    finally:
        conn.close()
    assert "lc_app_db" in shown and "lcXapp_db" not in shown, "_ is not a wildcard here"
    assert not lifecycle.grant_privileges(
        account, privileges_=["SELECT"], database="lc_app_db"
    ).changed
    done = lifecycle.revoke_privileges(
        account, privileges_=["SELECT", "INSERT"], database="lc_app_db"
    )
    assert done.detail["privileges"] == {"database": []}


def test_pg_valid_until_is_set_and_cleared(demo, lab_env, cleanup, dba):
    from datetime import UTC, datetime, timedelta

    _pg_create(lab_env, cleanup, "expiring e")
    account = _pg_account(demo, "expiring e")
    past = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert lifecycle.set_password_expiry(account, until=past, actor=dba).changed
    account.refresh_from_db()
    assert account.valid_until == past and account.expired
    assert not pg_can_login(lab_env, "expiring e", PASSWORD)
    assert not lifecycle.set_password_expiry(account, until=past).changed
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    assert lifecycle.set_password_expiry(account, until=later).changed
    assert pg_can_login(lab_env, "expiring e", PASSWORD)
    assert lifecycle.set_password_expiry(account, until=None).changed
    assert dbops.account_state(account)["valid_until"] is None


def test_mariadb_password_expiry_modes(demo, lab_env, cleanup):
    _my_create(lab_env, cleanup, "expiring e")
    account = _my_account(demo, "expiring e")
    assert lifecycle.set_password_expiry(account, mariadb="interval", days=90).changed
    assert dbops.account_state(account)["password_lifetime"] == 90
    assert not lifecycle.set_password_expiry(account, mariadb="interval", days=90).changed
    assert lifecycle.set_password_expiry(account, mariadb="never").changed
    assert dbops.account_state(account)["password_lifetime"] == 0
    assert lifecycle.set_password_expiry(account, mariadb="now").changed
    assert dbops.account_state(account)["expired"]
    with pytest.raises(dbops.AccountRefused, match="between 1 and 65535"):
        lifecycle.set_password_expiry(account, mariadb="interval", days=0)


# --- actions: rotate, shown once ---------------------------------------------------------------


def test_rotate_is_for_functional_accounts_only(demo, lab_env, cleanup):
    _pg_create(lab_env, cleanup, "personal p")
    account = _pg_account(demo, "personal p")
    with pytest.raises(dbops.AccountRefused, match="not a functional account"):
        lifecycle.rotate_password(account)
    assert pg_can_login(lab_env, "personal p", PASSWORD)


@pytest.mark.parametrize("cluster", ["lab-pg", "lab-mariadb"])
def test_rotate_job_shows_the_new_password_once(
    demo, lab_env, cleanup, dba, cluster, assert_no_secret_stored
):
    from console import jobs
    from users import tasks

    name = "app svc"
    if cluster == "lab-pg":
        _pg_create(lab_env, cleanup, name)
        account, can_login = _pg_account(demo, name), pg_can_login
    else:
        _my_create(lab_env, cleanup, name)
        account, can_login = _my_account(demo, name), my_can_login
    DatabaseAccount.objects.filter(pk=account.pk).update(kind="functional", purpose="app")
    job = lifecycle.request_action(account, "rotate_password", {}, actor=dba)
    jobs.run_job(job.pk, tasks.rotate_password.body)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert "password_token" in job.result and PASSWORD not in str(job.result)
    assert not can_login(lab_env, name, PASSWORD)

    other = lifecycle.request_action(account, "lock_account", {}, actor=dba)
    with pytest.raises(lifecycle.PasswordGone):
        lifecycle.reveal_password(other, actor=dba)
    new = lifecycle.reveal_password(job, actor=dba)
    assert len(new) == 32 and can_login(lab_env, name, new)
    with pytest.raises(lifecycle.PasswordGone, match="shown once already"):
        lifecycle.reveal_password(job, actor=dba)
    job.refresh_from_db()
    assert "password_token" not in job.result and "password_shown_at" in job.result
    assert_no_secret_stored(new)
    shown = AuditEntry.objects.get(action=audit.ACCOUNT_PASSWORD_SHOWN)
    assert shown.actor_name == "dba" and new not in shown.output


# --- jobs --------------------------------------------------------------------------------------


def test_lock_job_twice_the_second_changes_nothing(demo, lab_env, cleanup, helpdesk):
    from console import jobs
    from users import tasks

    _pg_create(lab_env, cleanup, "job lock")
    account = _pg_account(demo, "job lock")
    first = lifecycle.request_action(account, "lock_account", {}, actor=helpdesk)
    jobs.run_job(first.pk, tasks.lock_account.body)
    second = lifecycle.request_action(account, "lock_account", {}, actor=helpdesk)
    jobs.run_job(second.pk, tasks.lock_account.body)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.result["changed"]) == ("succeeded", True)
    assert (second.status, second.result["changed"]) == ("succeeded", False)
    assert any("already locked" in line.message for line in second.log_lines.all())
    assert not pg_can_login(lab_env, "job lock", PASSWORD)


def test_a_refused_drop_fails_the_job_with_the_reason(demo, lab_env, cleanup, dba):
    from console import jobs
    from users import tasks

    _pg_owner_with_objects(lab_env, cleanup, "owner job")
    account = _pg_account(demo, "owner job")
    job = lifecycle.request_action(account, "drop_account", {}, actor=dba)
    jobs.run_job(job.pk, tasks.drop_account.body)
    job.refresh_from_db()
    assert job.status == "failed" and "Choose a role to reassign" in job.error
    assert pg_can_login(lab_env, "owner job", PASSWORD)


def test_create_job_keeps_the_password_encrypted_until_shown(demo, lab_env, cleanup, dba):
    from console import jobs
    from users import tasks

    cleanup.pg_roles.append("created by job")
    params = {"name": "created by job", "kind": "unclassified"}
    job = lifecycle.request_create(demo["lab-pg"], params, actor=dba)
    jobs.run_job(job.pk, tasks.create_account.body)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    password = lifecycle.reveal_password(job, actor=dba)
    assert pg_can_login(lab_env, "created by job", password)
    assert DatabaseAccount.objects.get(name="created by job").node.name == "db1"


def test_mariadb_server_plugin_mode_sends_the_password_bound_and_never_records_it(
    demo, lab_env, cleanup, settings, assert_no_secret_stored
):
    settings.USERS_MARIADB_PASSWORD_PLUGIN = "server"
    cleanup.my_accounts.append(("server plugin", "%"))
    account, password = lifecycle.create_account(demo["lab-mariadb"], "server plugin")
    assert my_can_login(lab_env, "server plugin", password)
    DatabaseAccount.objects.filter(pk=account.pk).update(kind="functional")
    account.refresh_from_db()
    new = lifecycle.rotate_password(account)
    assert my_can_login(lab_env, "server plugin", new)
    assert not my_can_login(lab_env, "server plugin", password)
    assert_no_secret_stored(password, new)
    created = AuditEntry.objects.filter(action=audit.ACCOUNT_CREATED, status="succeeded")
    entry = created.exclude(command="").get()
    assert "IDENTIFIED BY %s" in entry.command
