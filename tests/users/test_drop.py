"""users/actions/drop.py against the lab's real PostgreSQL cluster and MariaDB (issue 6, part 3):
the drop is refused, changing nothing, while the account owns objects and no role to reassign
them to is named, or while it is a MariaDB DEFINER; with a role named, the objects are kept and
handed over, sessions ended, then the role is gone. Every test cleans up what it made."""

import pytest
from psycopg import sql

from console import audit
from console.models import AuditEntry
from tests.users.labdb import (
    PASSWORD,
    my_account,
    my_admin,
    my_create,
    pg_account,
    pg_admin,
    pg_can_login,
    pg_create,
    pg_login,
)
from users import dbops
from users.actions import drop, lifecycle

pytestmark = pytest.mark.django_db(transaction=True)


# --- actions: drop in the safe order -----------------------------------------------------------


def _pg_owner_with_objects(env, cleanup, role: str) -> str:
    """A role owning a schema with a table and a view in a database of its own (the database
    is owned by the admin), and holding a privilege on another table."""
    db = "lc lifecycle db"
    cleanup.pg_databases.append(db)
    pg_create(env, cleanup, role)
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
    account = pg_account(demo, owner)
    with pytest.raises(dbops.AccountRefused, match="Choose a role to reassign") as refused:
        drop.drop_account(account, actor=dba)
    assert refused.value.field == "reassign_to" and db in str(refused.value)
    assert pg_can_login(lab_env, owner, PASSWORD), "a refused drop changes nothing"
    assert not dbops.account_state(account)["locked"]
    with pytest.raises(dbops.AccountRefused, match="no role nobody-here"):
        drop.drop_account(account, reassign_to="nobody-here", actor=dba)


def test_drop_with_a_reassign_target_keeps_the_objects_and_ends_sessions(
    demo, lab_env, cleanup, dba
):
    owner, heir = "Owner O'Brien", "Heir Ünïcode"
    db = _pg_owner_with_objects(lab_env, cleanup, owner)
    pg_create(lab_env, cleanup, heir, login=False)
    account = pg_account(demo, owner)
    session = pg_login(lab_env, owner, PASSWORD, dbname=db)
    try:
        done = drop.drop_account(account, reassign_to=heir, actor=dba)
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
    my_create(lab_env, cleanup, name)
    cleanup.my_databases.append("lc_definer")
    conn = my_admin(lab_env)
    try:
        cur = conn.cursor()
        cur.execute("CREATE DATABASE lc_definer")
        cur.execute("CREATE VIEW lc_definer.v1 AS SELECT 1 AS one")
        cur.execute("ALTER DEFINER = `definer d`@`%` VIEW lc_definer.v1 AS SELECT 1 AS one")
    finally:
        conn.close()
    account = my_account(demo, name)
    with pytest.raises(dbops.AccountRefused, match="DEFINER of view lc_definer.v1"):
        drop.drop_account(account)
    assert dbops.account_state(account)["exists"]


def test_a_refused_drop_fails_the_job_with_the_reason(demo, lab_env, cleanup, dba):
    from console import jobs
    from users import tasks

    _pg_owner_with_objects(lab_env, cleanup, "owner job")
    account = pg_account(demo, "owner job")
    job = lifecycle.request_action(account, "drop_account", {}, actor=dba)
    jobs.run_job(job.pk, tasks.drop_account.body)
    job.refresh_from_db()
    assert job.status == "failed" and "Choose a role to reassign" in job.error
    assert pg_can_login(lab_env, "owner job", PASSWORD)
