"""The offboarding's own statements (users/actions/offboarding_remote.py) with names that are SQL,
against the lab: a person whose PostgreSQL role on db1 and MariaDB user on my1 are both named
`x"; DROP TABLE t; --` (and a role with quotes, spaces, upper case and unicode) is offboarded:
each account is locked (the servers refuse the right password as locked), verified on db1, db2
and my1, the table t is still there, the audit records the names composed as identifiers; the
undo unlocks them and they log in again."""

import pytest
from psycopg import sql

from console.models import AuditEntry
from tests.users.labdb import Cleanup, my_admin, my_can_login, pg_admin, pg_can_login, pg_login
from tests.users.test_offboarding import _offboard_job
from users import actions
from users.actions import offboarding
from users.models import DatabaseAccount, Person

pytestmark = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions

EVIL = 'x"; DROP TABLE t; --'
ODD = "Ünïcødé 'Quoted' Name"
PASSWORD = "Corr3ct horse 'battery' staple"


@pytest.fixture
def cleanup(lab_env):
    c = Cleanup(lab_env)
    yield c
    c.run()
    with pg_admin(lab_env) as conn:
        conn.execute("DROP TABLE IF EXISTS t")


def _table_t_exists(lab_env) -> tuple[bool, bool]:
    with pg_admin(lab_env) as conn:
        pg = conn.execute("SELECT to_regclass('public.t') IS NOT NULL").fetchone()[0]
    conn = my_admin(lab_env)
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = 'offboard_names' AND TABLE_NAME = 't'")  # fmt: skip
        my = cur.fetchone()[0] > 0
    finally:
        conn.close()
    return pg, my


def test_accounts_named_in_sql_are_offboarded_verified_and_undone(
    demo, lab_env, cleanup, helpdesk, dba
):
    cleanup.pg_roles += [EVIL, ODD]
    cleanup.my_accounts.append((EVIL, "%"))
    cleanup.my_databases.append("offboard_names")
    with pg_admin(lab_env) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id int)")
        for name in (EVIL, ODD):
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(PASSWORD)))  # fmt: skip
    conn = my_admin(lab_env)
    try:
        cur = conn.cursor()
        cur.execute("CREATE DATABASE IF NOT EXISTS offboard_names")
        cur.execute("CREATE TABLE IF NOT EXISTS offboard_names.t (id int)")
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (EVIL, PASSWORD))
    finally:
        conn.close()
    # Opened sessions (on the primary) must be ended by the offboarding.
    held = pg_login(lab_env, EVIL, PASSWORD)
    for cluster in demo.values():
        assert actions.import_accounts(cluster).status == "succeeded"
    mallory = Person.objects.create(uid="mallory", name="Mallory", mail="m@example.org")
    mine = DatabaseAccount.objects.filter(name__in=(EVIL, ODD))
    assert mine.count() == 3
    for account in mine:
        actions.link_account(account, mallory, actor=dba)

    run = offboarding.start_offboarding(mallory, actor=helpdesk, confirmation="mallory")
    assert _offboard_job(run).status == "succeeded"
    run.refresh_from_db()
    assert run.state == "offboarded"
    steps = {(s.cluster_name, s.login): s for s in run.steps.all()}
    assert all(s.result == "verified" for s in steps.values()), steps
    assert steps[("lab-pg", EVIL)].servers == "db1, db2"
    assert steps[("lab-pg", EVIL)].sessions_ended == 1
    assert not pg_can_login(lab_env, EVIL, PASSWORD)
    assert not pg_can_login(lab_env, ODD, PASSWORD)
    assert not my_can_login(lab_env, EVIL, PASSWORD)
    assert _table_t_exists(lab_env) == (True, True)
    locks = AuditEntry.objects.filter(action="account.locked", status="succeeded")
    commands = sorted(e.command for e in locks)
    assert 'ALTER ROLE "x""; DROP TABLE t; --" NOLOGIN' in commands
    # MySQL statements are recorded as the run_sql template sent (a literal % doubled).
    assert 'ALTER USER `x"; DROP TABLE t; --`@`%%` ACCOUNT LOCK' in commands
    held.close()

    offboarding.undo_offboarding(run, actor=dba, confirmation="mallory")
    assert pg_can_login(lab_env, EVIL, PASSWORD) and pg_can_login(lab_env, ODD, PASSWORD)
    assert my_can_login(lab_env, EVIL, PASSWORD)
    assert _table_t_exists(lab_env) == (True, True)
