"""The restore wizard's plan and job with pg_rman. Its commands are tested everywhere from the
real captures (test_restore_plan.py); the end-to-end restore runs where a pg_rman binary is
installed (the lab hosts share this machine's files) and otherwise skips saying why. Where it
is missing, the pre-check on the target host says so before anything is queued or touched."""

import os
import shutil
import time
from pathlib import Path

import pytest
from psycopg import sql

from backups import actions, restore, restore_followups
from backups.drivers import pg_rman
from backups.models import BackupCatalog, RestoreRun
from backups.restore_plan import make_plan, parse_target
from clusters.models import Node
from console import jobs
from console.executor import run_command, run_sql
from console.lab.parts.postgres import PG_BIN
from console.models import Job
from tests.backups.pg_rman_captures import capture
from tests.backups.test_pg_rman_e2e import PG_RMAN, e2e_commands, needs_pg_rman

TABLE = "pg_rman_restore_probe"


@pytest.fixture
def lab_nodes(lab_env, lab):
    from console.lab.demo import register_demo

    register_demo({**os.environ, **lab_env})
    primary = lab.parts["primary"]
    return (Node.objects.get(name="db1"), Node.objects.get(name="bare1"), str(primary.data),
            str(primary.socket_dir), Path(lab_env["LAB_DIR"]))  # fmt: skip


@pytest.fixture
def rman_site(lab_nodes, dba):
    db1, bare1, _pgdata, _socket, lab_dir = lab_nodes
    parent = lab_dir / "pg_rman-restore"
    shutil.rmtree(parent, ignore_errors=True)
    parent.mkdir(mode=0o700)
    shutil.chown(parent, "postgres", "postgres")
    catalog = BackupCatalog.objects.create(
        cluster=db1.cluster, name="rman", engine="pg_rman", path=str(parent / "catalog"),
        arclog_path=str(lab_dir / "archive"),
    )  # fmt: skip
    catalog.nodes.add(db1)
    yield catalog, parent
    clone = parent / "clone"
    if (clone / "postmaster.pid").exists():
        run_command(bare1, [f"{PG_BIN}/pg_ctl", "-D", str(clone), "-m", "immediate", "-w",
                            "stop"], actor=dba, sudo_user="postgres", check=False)  # fmt: skip
    run_sql(db1, sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(TABLE)), actor=dba)
    shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.skipif(PG_RMAN is not None, reason="pg_rman is installed: the end-to-end test runs")
@pytest.mark.django_db(transaction=True)
def test_where_pg_rman_is_missing_the_pre_check_says_so_and_nothing_is_queued(
    lab_nodes, rman_site, dba
):
    _db1, bare1, *_ = lab_nodes
    catalog, parent = rman_site
    listing = pg_rman.parse_show(capture("show-detail.txt").stdout)  # a real catalog's rows
    actions.store_catalog_listing(catalog, listing, actor=dba)
    plan = make_plan(catalog, bare1, parse_target("latest"), data_directory=str(parent / "clone"),
                     port=5434)  # fmt: skip
    assert plan.command.argv[:2] == ["pg_rman", "restore"]
    with pytest.raises(restore.RestoreRefused) as refused:
        restore.start_restore(plan, confirm=catalog.cluster.name, actor=dba)
    (failed,) = refused.value.report.failed
    assert failed.name == "repository"
    assert "bare1 cannot read the catalog" in failed.detail
    assert "pg_rman is not installed on this host" in failed.detail
    assert not RestoreRun.objects.exists() and not Job.objects.filter(kind="backups.restore")
    assert not (parent / "clone").exists()


def _sql1(node, query, params=None, *, actor):
    return run_sql(node, query, params, actor=actor).rows[0][0]


@needs_pg_rman
@pytest.mark.django_db(transaction=True)
def test_a_pg_rman_restore_to_a_noted_time_onto_bare1_has_exactly_the_rows_before_it(
    lab_nodes, rman_site, dba
):
    db1, bare1, pgdata, socket_dir, _lab_dir = lab_nodes
    catalog, parent = rman_site
    commands = e2e_commands(catalog, pgdata, socket_dir, db1.db_port)
    actions.run_pg_rman(db1, commands["init"], actor=dba)
    run_sql(db1, sql.SQL("CREATE TABLE {} (id int PRIMARY KEY)").format(sql.Identifier(TABLE)),
            actor=dba)  # fmt: skip
    actions.run_pg_rman(db1, commands["full"], actor=dba)
    actions.run_pg_rman(db1, commands["validate"], actor=dba)
    actions.read_catalog(catalog, actor=dba)
    insert = sql.SQL("INSERT INTO {} SELECT generate_series(%(a)s::int, %(b)s::int)").format(
        sql.Identifier(TABLE)
    )
    run_sql(db1, insert, {"a": 1, "b": 5}, actor=dba)
    noted = _sql1(db1, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                       "'YYYY-MM-DD HH24:MI:SS.US')", actor=dba)  # fmt: skip
    run_sql(db1, insert, {"a": 6, "b": 8}, actor=dba)
    segment = _sql1(db1, "SELECT pg_walfile_name(pg_switch_wal())", actor=dba)
    deadline = time.monotonic() + 60
    while _sql1(db1, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver",
                actor=dba) < segment:  # fmt: skip
        assert time.monotonic() < deadline, f"{segment} not archived within 60 s"
        time.sleep(0.2)  # polling interval; the deadline decides

    clone = parent / "clone"
    plan = make_plan(catalog, bare1, parse_target("time", noted), data_directory=str(clone),
                     port=5434, check_query=f"SELECT array_agg(id ORDER BY id)::text FROM {TABLE}")  # noqa: S608 # fmt: skip
    run = restore.start_restore(plan, confirm=catalog.cluster.name, actor=dba)
    assert jobs.run_job(run.job_id, restore.restore_task.body) == "succeeded", (
        Job.objects.get(pk=run.job_id).error)  # fmt: skip
    run.refresh_from_db()
    assert (run.status, run.check_result, run.check_ok) == ("succeeded", "{1,2,3,4,5}", True)
    assert (clone / "pg_rman_recovery.conf").exists()
    restore_followups.remove_recovery_settings(run, actor=dba)
    assert not (clone / "pg_rman_recovery.conf").exists()
    assert "pg_rman_recovery.conf" not in (clone / "postgresql.conf").read_text()
