"""Account lifecycle against the lab's real PostgreSQL cluster and MariaDB (issue 6, part 3):
the actions of users/actions/lifecycle.py (create, rotate, the one-time password) and the jobs
that run them. The engine primitives are in test_dbops.py, the drop in test_drop.py, roles,
privileges and expiry in test_grants.py. Every test checks the server itself (a locked role
really cannot log in) and cleans up what it made."""

import pytest
from psycopg import sql

from console import audit
from console.models import AuditEntry
from tests.users.labdb import (
    EVIL,
    PASSWORD,
    my_account,
    my_admin,
    my_can_login,
    my_create,
    pg_account,
    pg_admin,
    pg_can_login,
    pg_create,
)
from users import dbops, passwords
from users.actions import drop, lifecycle
from users.models import DatabaseAccount

pytestmark = pytest.mark.django_db(transaction=True)


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

        done = drop.drop_account(account, actor=dba)
        assert done.changed and "it owned nothing" in done.message
        with pg_admin(lab_env) as conn:
            assert (
                conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (EVIL,)).fetchone()
                is None
            )
        assert _pg_table_exists(lab_env, "postgres", "t"), "the table t must still be there"
        account.refresh_from_db()
        assert account.gone_at is not None
        assert not drop.drop_account(account, actor=dba).changed
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
    assert drop.drop_account(account, actor=dba).changed
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
    assert drop.drop_account(account).changed and drop.drop_account(mine).changed


@pytest.mark.parametrize("name", ["a" * 64, "nul\x00", "", "pg_evil"])
def test_bad_names_are_refused_before_anything_is_sent(demo, name):
    before = (AuditEntry.objects.count(), DatabaseAccount.objects.count())
    with pytest.raises(dbops.AccountRefused):
        lifecycle.create_account(demo["lab-pg"], name)
    assert (AuditEntry.objects.count(), DatabaseAccount.objects.count()) == before


def test_create_refuses_an_account_that_already_exists(demo, lab_env, cleanup):
    pg_create(lab_env, cleanup, "already here")
    with pytest.raises(dbops.AccountRefused, match="already exists on db1"):
        lifecycle.create_account(demo["lab-pg"], "already here")


# --- actions: rotate, shown once ---------------------------------------------------------------


def test_rotate_is_for_functional_accounts_only(demo, lab_env, cleanup):
    pg_create(lab_env, cleanup, "personal p")
    account = pg_account(demo, "personal p")
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
        pg_create(lab_env, cleanup, name)
        account, can_login = pg_account(demo, name), pg_can_login
    else:
        my_create(lab_env, cleanup, name)
        account, can_login = my_account(demo, name), my_can_login
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

    pg_create(lab_env, cleanup, "job lock")
    account = pg_account(demo, "job lock")
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
