"""pgBackRest against the lab's db1, every run of the suite: a full then an incremental backup
taken as jobs and verified into usable runs, a point-in-time restore into a scratch instance
on db1's host (never over db1's data directory) holding exactly the rows committed before the
noted time, and a damaged copy of the repository reported corrupt and never usable.

Set-up is per test and undone after it: a repository under the lab directory (the lab's shared
storage: the hosts share the filesystem), and db1's archive_command extended by ALTER SYSTEM to
`pgbackrest ... archive-push %p && <the lab's own command>`, so the lab archive keeps every
segment; RESET afterwards gives the lab's postgresql.conf value back. Every remote step goes
through console.executor (SSH to db1, sudo to postgres), as the console itself does.
"""

import os
import shutil
import time
from pathlib import Path

import pytest
from psycopg import sql

from backups import actions, tasks
from backups.drivers import pgbackrest
from backups.models import BackupCatalog, BackupPolicy, BackupRun, RestoreRun
from console import audit, jobs
from console.executor import run_command, run_sql
from console.lab.parts.postgres import PG_BIN
from console.models import AuditEntry, Job

# pgBackRest keeps a stanza's locks in /tmp/pgbackrest, which every lab on this machine shares:
# a stanza named after the lab lets several labs run these tests at once.
STANZA = Path(os.environ.get("LAB_DIR", "dbconsole-lab")).name
SCRATCH_PORT = 5433  # on db1's address, next to db1's own 5432
TABLE = "pgbackrest_pitr_probe"
CHECK = "SELECT array_agg(id ORDER BY id)::text FROM pgbackrest_pitr_probe"  # the restore's


def wait_for(what: str, probe, timeout: float = 60.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)  # polling interval, not synchronisation: the deadline decides


def sql1(target, query, params=None, *, actor):
    return run_sql(target, query, params, actor=actor).rows[0][0]


@pytest.fixture
def db1(lab_env, lab):
    from clusters.models import Node
    from console.lab.demo import register_demo

    register_demo({**os.environ, **lab_env})
    return Node.objects.get(name="db1")


@pytest.fixture
def site(db1, dba, lab_env):
    """A repository directory for the test and db1 archiving into it; all undone after."""
    parent = Path(lab_env["LAB_DIR"]) / "pgbackrest-e2e"
    shutil.rmtree(parent, ignore_errors=True)
    parent.mkdir(mode=0o700)
    shutil.chown(parent, "postgres", "postgres")
    repo = pgbackrest.Repository(path=str(parent / "repo"), stanza=STANZA)
    instance, settings = actions.pg_instance(db1, actor=dba)
    original = settings["archive_command"]
    pushed = f"{pgbackrest.archive_command(repo, instance.path)} && {original}"
    _set_archive_command(db1, pushed, dba)
    try:
        yield parent, repo, instance, original
    finally:
        _pg_ctl_stop(db1, parent / "scratch", dba)
        run_sql(db1, sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(TABLE)), actor=dba)
        run_sql(db1, "ALTER SYSTEM RESET archive_command", actor=dba)
        run_sql(db1, "SELECT pg_reload_conf()", actor=dba)
        wait_for("db1's own archive_command back",
                 lambda: sql1(db1, "SHOW archive_command", actor=dba) == original)  # fmt: skip
        shutil.rmtree(parent, ignore_errors=True)


def _set_archive_command(node, command: str, actor) -> None:
    statement = sql.SQL("ALTER SYSTEM SET archive_command = {}").format(sql.Literal(command))
    run_sql(node, statement, actor=actor)
    run_sql(node, "SELECT pg_reload_conf()", actor=actor)
    wait_for("the new archive_command",
             lambda: sql1(node, "SHOW archive_command", actor=actor) == command)  # fmt: skip


def _pg_ctl_stop(node, data: Path, actor) -> None:
    if (data / "postmaster.pid").exists():
        run_command(node, [f"{PG_BIN}/pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"],
                    actor=actor, sudo_user="postgres", check=False)  # fmt: skip


@pytest.fixture
def catalog(db1, site):
    parent, repo, _instance, _original = site
    catalog = BackupCatalog.objects.create(
        cluster=db1.cluster, name="lab", engine="pgbackrest", path=repo.path, stanza=STANZA
    )
    catalog.nodes.add(db1)
    return catalog


def backup_now(target, mode, dba) -> BackupRun:
    """What a schedule or the button does: queue the backup, then a worker runs its job."""
    run = actions.start_backup(target, mode, actor=dba)
    assert jobs.run_job(run.job_id, tasks.run_backup.body) == "succeeded", (
        Job.objects.get(pk=run.job_id).error
    )  # fmt: skip
    run.refresh_from_db()
    return run


@pytest.mark.django_db(transaction=True)
def test_full_then_incremental_usable_and_a_restore_to_a_noted_time_has_exactly_the_rows_before_it(  # noqa: E501
    db1, catalog, site, dba, assert_no_secret_stored
):
    parent, repo, instance, _original = site
    policy = BackupPolicy.objects.create(catalog=catalog, name="nightly", schedule="0 2 * * *",
                                         mode="incr", compress=False)  # fmt: skip
    full = backup_now(policy, "full", dba)
    assert (full.status, full.usable, full.validated, full.found_outside_console) == (
        "ok", True, True, False)  # fmt: skip
    assert full.mode == "full" and full.backup_id.endswith("F")
    assert full.database_bytes > 10_000_000 and full.data_bytes == full.database_bytes
    assert full.sizes_exact and full.written_bytes > 0 and full.timeline >= 1
    assert full.start_lsn and full.stop_lsn and full.started <= full.ended

    run_sql(db1, sql.SQL("CREATE TABLE {} (id int PRIMARY KEY)").format(sql.Identifier(TABLE)),
            actor=dba)  # fmt: skip
    incr = actions.start_backup(policy, "incr", actor=dba)
    with pytest.raises(actions.BackupRefused, match="already queued or running; one at a time"):
        actions.start_backup(catalog, "full", actor=dba)
    assert jobs.run_job(incr.job_id, tasks.run_backup.body) == "succeeded"
    assert jobs.run_job(incr.job_id, tasks.run_backup.body) == "skipped"  # redelivered: nothing
    incr.refresh_from_db()
    assert (incr.status, incr.usable, incr.mode) == ("ok", True, "incr")
    assert incr.backup_id.startswith(f"{full.backup_id}_") and incr.backup_id.endswith("I")
    assert incr.data_bytes < full.data_bytes / 4  # only the files that changed
    assert [r.backup_id for r in BackupRun.objects.filter(catalog=catalog, status="ok")] == [
        incr.backup_id, full.backup_id]  # fmt: skip

    insert = sql.SQL("INSERT INTO {} SELECT generate_series(%(a)s::int, %(b)s::int)").format(
        sql.Identifier(TABLE)
    )
    run_sql(db1, insert, {"a": 1, "b": 5}, actor=dba)
    noted = sql1(db1, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD HH24:MI:SS.US') || '+00'", actor=dba)  # fmt: skip
    run_sql(db1, insert, {"a": 6, "b": 8}, actor=dba)
    segment = sql1(db1, "SELECT pg_walfile_name(pg_switch_wal())", actor=dba)
    wait_for(f"{segment} archived", lambda: (sql1(
        db1, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver", actor=dba
    ) >= segment))  # fmt: skip

    scratch = parent / "scratch"
    restore = actions.restore_to_scratch(
        catalog, db1, data_directory=str(scratch), port=SCRATCH_PORT, target_kind="time",
        target_value=noted, check_query=CHECK,
        actor=dba,
    )  # fmt: skip
    # Exactly the rows committed before the noted time; db1 itself has all of them.
    assert (restore.status, restore.check_result, restore.check_ok) == (
        "succeeded", "{1,2,3,4,5}", True)  # fmt: skip
    count = sql.SQL("SELECT array_agg(id ORDER BY id) FROM {}").format(sql.Identifier(TABLE))
    assert sql1(db1, count, actor=dba) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert restore.backup == incr  # the newest backup before the noted time
    assert restore.test_restore and restore.duration.total_seconds() > 0
    assert restore.message == f"restored from backup set {incr.backup_id}"
    assert not scratch.exists()  # stopped and removed
    assert not (Path(instance.path) / "recovery.signal").exists()  # db1 itself untouched
    restore_entry = AuditEntry.objects.get(action=audit.BACKUP_RESTORE)
    assert restore_entry.target == f"restore_run:{restore.pk}" and restore_entry.node == "db1"
    assert AuditEntry.objects.filter(action=audit.BACKUP_COMMAND, node=f"db1:{SCRATCH_PORT}",
                                     command__contains="pg_is_in_recovery").exists()  # fmt: skip

    # A directory that exists is refused before anything is touched.
    scratch.mkdir()
    with pytest.raises(actions.ExpectedFailure, match="already exists on db1"):
        actions.restore_to_scratch(catalog, db1, data_directory=str(scratch),
                                   port=SCRATCH_PORT, actor=dba)  # fmt: skip
    assert RestoreRun.objects.count() == 1 and scratch.is_dir() and not any(scratch.iterdir())

    started = AuditEntry.objects.filter(action=audit.BACKUP_START)
    assert started.count() == 2 and set(started.values_list("status", flat=True)) == {"succeeded"}
    remote = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND, node="db1")
    assert remote.filter(command__contains="pgbackrest").filter(
        command__contains="backup --type=incr").exists()  # fmt: skip
    assert_no_secret_stored(
        os.environ["LAB_PG_PASSWORD"], Path(os.environ["LAB_SSH_KEY"]).read_text()
    )


@pytest.mark.django_db(transaction=True)
def test_a_backup_taken_outside_the_console_appears_and_a_damaged_copy_is_never_usable(
    db1, catalog, site, dba
):
    parent, repo, instance, _original = site
    policy = BackupPolicy.objects.create(catalog=catalog, name="weekly", schedule="0 3 * * 0",
                                         mode="full", compress=False)  # fmt: skip
    full = backup_now(policy, "full", dba)
    assert full.usable

    # A DBA's own differential backup, not started by the console.
    by_hand = pgbackrest.backup(repo, instance, "diff", compress=False)
    label = pgbackrest.new_label(actions.run_pgbackrest(db1, by_hand, actor=dba).stdout)
    read = actions.read_repository(catalog, actor=dba)
    assert (read.created, read.total) == ([label], 2)
    diff = BackupRun.objects.get(catalog=catalog, backup_id=label)
    assert (diff.mode, diff.status, diff.usable, diff.found_outside_console) == (
        "diff", "ok", True, True)  # fmt: skip
    assert diff.job is None and diff.policy is None and diff.data_bytes < full.data_bytes

    copy = parent / "repo-damaged"
    run_command(db1, ["cp", "-a", repo.path, str(copy)], actor=dba, sudo_user="postgres")
    damaged_file = copy / "backup" / STANZA / full.backup_id / "pg_data" / "global" / "pg_control"
    run_command(db1, ["dd", f"of={damaged_file}", "bs=1", "seek=20", "conv=notrunc"],
                input="XXXXXXXXXXXXXXXX", actor=dba, sudo_user="postgres")  # fmt: skip
    damaged = BackupCatalog.objects.create(
        cluster=db1.cluster, name="damaged", engine="pgbackrest", path=str(copy), stanza=STANZA
    )
    damaged.nodes.add(db1)

    read = actions.read_repository(damaged, actor=dba)
    assert sorted(read.created) == sorted([full.backup_id, label])
    runs = {r.backup_id: r for r in BackupRun.objects.filter(catalog=damaged)}
    assert (runs[full.backup_id].status, runs[full.backup_id].usable) == ("corrupt", False)
    assert runs[full.backup_id].validated and runs[full.backup_id].found_outside_console
    assert runs[label].status == "corrupt"  # it references the damaged full
    assert not BackupRun.objects.filter(catalog=damaged, status="ok").exists()
    again = actions.read_repository(damaged, actor=dba)  # a second read changes nothing
    assert (again.created, again.updated, again.matched) == ([], [], [])
    # The original repository is untouched and still verifies.
    actions.read_repository(catalog, actor=dba)
    assert BackupRun.objects.filter(catalog=catalog, status="ok").count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_repository_postgres_may_not_write_fails_the_run_with_pgbackrest_words(db1, dba, lab_env):
    parent = Path(lab_env["LAB_DIR"]) / "pgbackrest-root-only"
    shutil.rmtree(parent, ignore_errors=True)
    parent.mkdir(mode=0o700)  # root's: postgres cannot enter it
    try:
        catalog = BackupCatalog.objects.create(
            cluster=db1.cluster, name="ro", stanza=STANZA, engine="pgbackrest",
            path=str(parent / "repo"),
        )  # fmt: skip
        run = actions.start_backup(catalog, "full", actor=dba)
        assert jobs.run_job(run.job_id, tasks.run_backup.body) == "failed"
        run.refresh_from_db()
        assert (run.status, run.usable, run.backup_id) == ("failed", False, "")
        assert run.message.startswith(
            "pgBackRest, as the postgres user, may not read or write there. pgBackRest: unable "
            f"to get info for path/file '{parent}/repo/archive/{STANZA}/archive.info'"
        )
        assert run.message.endswith("Permission denied.")
        assert Job.objects.get(pk=run.job_id).error == run.message
        outcome = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND, status="failed").get()
        assert outcome.exit_code == 41 and "stanza-create" in outcome.command
        assert not (parent / "repo").exists()
        # The cluster is free again: the next backup may start.
        assert actions.start_backup(catalog, "full", actor=dba).status == "pending"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.django_db
def test_a_backup_the_engine_cannot_take_is_refused_and_nothing_changes(dba):
    from tests import factories

    cluster = factories.make_monitored_cluster("bk-refused")
    pg_rman = BackupCatalog.objects.create(cluster=cluster, name="rman", engine="pg_rman",
                                           path="/srv/c", arclog_path="/srv/a")  # fmt: skip
    brest = BackupCatalog.objects.create(cluster=cluster, name="brest", engine="pgbackrest",
                                         path="/srv/r", stanza="main")  # fmt: skip
    with pytest.raises(
        actions.BackupRefused, match="full, incremental, archive backups, not 'diff'"
    ):
        actions.start_backup(pg_rman, "diff", actor=dba)
    with pytest.raises(actions.BackupRefused, match="full, diff, incr backups, not 'incremental'"):
        actions.start_backup(brest, "incremental", actor=dba)
    assert not BackupRun.objects.exists() and not Job.objects.exists()
    assert not AuditEntry.objects.filter(action=audit.BACKUP_START).exists()
