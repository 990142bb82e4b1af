"""Backup assurance against the lab's db1 with pgBackRest: scheduled test restores into a
scratch instance on db1's host (port 5433, never db1's own directory), recorded with their
check result and duration and removed afterwards; WAL archive continuity, with a gap made in a
COPY of the repository (the original is never touched); the restorable point and the RPO.

The repository and db1's archiving into it come from test_pgbackrest's fixtures (a repository
per test under the lab directory, undone afterwards).
"""

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from psycopg import sql

from backups import assurance, assurance_archive, assurance_tasks
from backups.models import (
    ArchiveCheck,
    BackupCatalog,
    BackupRun,
    RestoreRun,
    TestRestorePolicy,
)
from backups.restore_server import restored_target
from console import audit, jobs
from console.executor import ExecutorError, run_command, run_sql
from console.models import AuditEntry, Job
from tests.backups import test_pgbackrest as pgbackrest_lab

# The lab set-up of the pgBackRest tests: db1 registered, a repository per test with db1
# archiving into it (undone afterwards), its catalog.
db1, site, catalog = pgbackrest_lab.db1, pgbackrest_lab.site, pgbackrest_lab.catalog
STANZA, backup_now, sql1, wait_for = (pgbackrest_lab.STANZA, pgbackrest_lab.backup_now,
                                      pgbackrest_lab.sql1, pgbackrest_lab.wait_for)  # fmt: skip

TABLE = "assurance_probe"
SCRATCH_PORT = 5433


def _make_rows(db1, dba, count: int) -> None:
    run_sql(db1, sql.SQL("CREATE TABLE IF NOT EXISTS {} (id int)").format(sql.Identifier(TABLE)),
            actor=dba)  # fmt: skip
    run_sql(db1, sql.SQL("INSERT INTO {} SELECT generate_series(1, %(n)s::int)").format(
        sql.Identifier(TABLE)), {"n": count}, actor=dba)  # fmt: skip


def _switch_and_wait(db1, dba, times: int = 1) -> str:
    """Write, switch to a new segment `times` times, and wait until the last one is archived."""
    segment = ""
    for i in range(times):
        run_sql(db1, "SELECT pg_logical_emit_message(false, 'assurance', %s)", [str(i)], actor=dba)
        segment = sql1(db1, "SELECT pg_walfile_name(pg_switch_wal())", actor=dba)
    wait_for(f"{segment} archived", lambda: sql1(
        db1, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver", actor=dba
    ) >= segment)  # fmt: skip
    return segment


@pytest.fixture
def probe_cleanup(db1, dba):
    yield
    run_sql(db1, sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(TABLE)), actor=dba)


def _policy(db1, catalog, scratch: Path, check_query: str, dba) -> TestRestorePolicy:
    policy = TestRestorePolicy(cluster=db1.cluster, catalog=catalog, node=db1,
                               data_directory=str(scratch), port=SCRATCH_PORT,
                               schedule="30 3 * * *", check_query=check_query)  # fmt: skip
    return assurance.save_test_restore_policy(policy, actor=dba)


def _scratch_is_down(db1, dba) -> bool:
    policy = TestRestorePolicy(node=db1, port=SCRATCH_PORT,
                               catalog=BackupCatalog(cluster=db1.cluster))  # fmt: skip
    target = restored_target(assurance.scratch_plan(policy, None))
    try:
        run_sql(target, "SELECT 1", actor=dba)
    except ExecutorError:
        return True
    return False


@pytest.mark.django_db(transaction=True)
def test_a_scheduled_test_restore_records_its_check_and_duration_and_leaves_nothing_running(
    db1, catalog, site, dba, probe_cleanup, assert_no_secret_stored
):
    parent, _repo, _instance, _original = site
    full = backup_now(catalog, "full", dba)
    _make_rows(db1, dba, 7)  # after the backup: only WAL replay brings them back
    _switch_and_wait(db1, dba)
    scratch = parent / "scratch"
    policy = _policy(db1, catalog, scratch, "SELECT count(*) FROM assurance_probe", dba)

    # Its beat entry: the cron fields, the task, the policy's id.
    task = PeriodicTask.objects.get(name=policy.periodic_task_name)
    assert (task.task, json.loads(task.args), task.enabled) == (
        "backups.scheduled_test_restore", [policy.pk], True)  # fmt: skip
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "3", "*")
    assert assurance.next_run(policy).strftime("%M") == "30"

    # What beat does when the time comes: queue the job; then a worker runs it.
    assurance_tasks.scheduled_test_restore(policy.pk)
    job = Job.objects.get(kind="backups.test_restore")
    assert (job.source, job.params) == ("schedule", {"policy": policy.pk})
    with pytest.raises(assurance.ExpectedFailure, match="already queued or running"):
        assurance.start_test_restore(policy, actor=dba)
    assert jobs.run_job(job.pk, assurance_tasks.test_restore.body) == "succeeded", (
        Job.objects.get(pk=job.pk).error)  # fmt: skip
    assert jobs.run_job(job.pk, assurance_tasks.test_restore.body) == "skipped"  # redelivered

    restore = RestoreRun.objects.get(test_restore=True)
    assert (restore.status, restore.check_result, restore.check_ok) == ("succeeded", "7", True)
    assert restore.backup == full and restore.target_kind == "latest" and restore.job_id == job.pk
    assert timedelta(seconds=1) < restore.duration < timedelta(minutes=5)  # the RTO figure
    assert restore.message == f"restored backup {full.backup_id}"
    assert Job.objects.get(pk=job.pk).result["check_result"] == "7"
    # The scratch instance is gone: no directory, nothing listening on its port.
    assert not scratch.exists()
    assert _scratch_is_down(db1, dba)
    assert sql1(db1, "SELECT pg_is_in_recovery()", actor=dba) is False  # db1 itself untouched

    outcome = AuditEntry.objects.get(action=audit.BACKUP_TEST_RESTORE)
    assert (outcome.status, outcome.target) == ("succeeded", f"restore_run:{restore.pk}")
    queued = AuditEntry.objects.get(action=audit.BACKUP_TEST_RESTORE_START)
    assert (queued.source, queued.job_id) == ("schedule", job.pk)
    assert AuditEntry.objects.filter(action=audit.BACKUP_COMMAND, command__contains="--set="
                                     f"{full.backup_id}").exists()  # fmt: skip
    assert_no_secret_stored(
        os.environ["LAB_PG_PASSWORD"], Path(os.environ["LAB_SSH_KEY"]).read_text()
    )


@pytest.mark.django_db(transaction=True)
def test_a_test_restore_whose_check_fails_is_recorded_failed_with_the_servers_words(
    db1, catalog, site, dba
):
    parent, _repo, _instance, _original = site
    backup_now(catalog, "full", dba)
    scratch = parent / "scratch"
    policy = _policy(db1, catalog, scratch, "SELECT count(*) FROM no_such_table", dba)
    # A test restore whose worker died (its job ended by the reaper) does not block the node.
    dead = Job.objects.create(kind="backups.test_restore", title="dead", status="errored")
    stale = RestoreRun.objects.create(cluster=db1.cluster, catalog=catalog, target_node=db1,
                                      test_restore=True, status="running", job=dead,
                                      started=timezone.now())  # fmt: skip

    job = assurance.start_test_restore(policy, actor=dba)
    assert jobs.run_job(job.pk, assurance_tasks.test_restore.body) == "failed"
    stale.refresh_from_db()
    assert stale.status == "failed" and f"job #{dead.pk} ended" in stale.message
    restore = RestoreRun.objects.filter(test_restore=True).exclude(pk=stale.pk).get()
    assert restore.status == "failed" and restore.check_ok is None
    assert 'relation "no_such_table" does not exist' in restore.message
    assert restore.message.startswith("the check query failed: ")
    assert Job.objects.get(pk=job.pk).error == f"Test restore failed: {restore.message}"
    assert not scratch.exists() and _scratch_is_down(db1, dba)
    outcome = AuditEntry.objects.get(action=audit.BACKUP_TEST_RESTORE)
    assert outcome.status == "failed" and "no_such_table" in outcome.error

    # A check that answers false fails too, with what it returned.
    policy.check_query = "SELECT count(*) > 1000 FROM pg_database"
    assurance.save_test_restore_policy(policy, actor=dba)
    job = assurance.start_test_restore(policy, actor=dba)
    assert jobs.run_job(job.pk, assurance_tasks.test_restore.body) == "failed"
    restore = RestoreRun.objects.filter(test_restore=True).first()
    assert (restore.status, restore.check_result, restore.check_ok) == ("failed", "False", False)
    assert restore.message.endswith("but the check query returned 'False'")
    assert not scratch.exists()

    # A directory that is already there is never touched: the run fails saying so.
    scratch.mkdir()
    (scratch / "keep").write_text("a person's file")
    job = assurance.start_test_restore(policy, actor=dba)
    assert jobs.run_job(job.pk, assurance_tasks.test_restore.body) == "failed"
    restore = RestoreRun.objects.filter(test_restore=True).first()
    assert restore.status == "failed" and "already exists on db1" in restore.message
    assert (scratch / "keep").read_text() == "a person's file"

    # A server answering on the port (db1's own, as if started there since): the wizard's
    # pre-check refuses before anything is restored.
    shutil.rmtree(scratch)
    TestRestorePolicy.objects.filter(pk=policy.pk).update(port=5432)
    job = assurance.start_test_restore(policy, actor=dba)
    assert jobs.run_job(job.pk, assurance_tasks.test_restore.body) == "failed"
    restore = RestoreRun.objects.filter(test_restore=True).first()
    assert restore.message.startswith(
        f"pre-check port: a server already answers on {db1.address}:5432"
    )
    assert not scratch.exists() and sql1(db1, "SELECT pg_is_in_recovery()", actor=dba) is False

    # A server that does not start (port 80: postgres may not bind it; the form refuses ports
    # under 1024, this one is forced): the job says why, from the scratch server's own log.
    TestRestorePolicy.objects.filter(pk=policy.pk).update(port=80)
    job = assurance.start_test_restore(policy, actor=dba)
    assert jobs.run_job(job.pk, assurance_tasks.test_restore.body) == "failed"
    restore = RestoreRun.objects.filter(test_restore=True).first()
    assert "pg_ctl" in restore.message and "Server log: " in restore.message
    assert "Permission denied" in restore.message, restore.message
    assert not scratch.exists()


@pytest.mark.django_db(transaction=True)
def test_archive_continuity_is_continuous_then_a_gap_in_a_copy_limits_the_restorable_point(
    db1, catalog, site, dba
):
    parent, repo, _instance, _original = site
    full = backup_now(catalog, "full", dba)
    last = _switch_and_wait(db1, dba, times=4)

    check = assurance_archive.check_archive(db1.cluster, actor=dba)
    assert check.continuous is True and check.first_gap == "" and check.missing == 0
    assert check.backup == full and check.catalog == catalog
    assert check.first_segment == sql1(
        db1, "SELECT pg_walfile_name(%s::pg_lsn)", [full.start_lsn], actor=dba)  # fmt: skip
    assert check.last_segment >= last and check.segments >= 5
    assert check.last_restorable_segment == check.last_segment
    assert full.ended <= check.restorable_to <= timezone.now()
    assert timedelta(0) <= check.rpo() < timedelta(minutes=5)
    entry = AuditEntry.objects.get(action=audit.BACKUP_ARCHIVE_CHECK)
    assert entry.status == "succeeded" and "continuous" in entry.output

    # A copy of the repository with one segment after the backup removed.
    copy = parent / "repo-gap"
    run_command(db1, ["cp", "-a", repo.path, str(copy)], actor=dba, sudo_user="postgres")
    damaged = BackupCatalog.objects.create(cluster=db1.cluster, name="copy", engine="pgbackrest",
                                           path=str(copy), stanza=STANZA)  # fmt: skip
    damaged.nodes.add(db1)
    from backups import actions

    actions.read_repository(damaged, actor=dba)
    segments = sorted((copy / "archive" / STANZA).glob("*/*/*-*"))
    names = [p.name[:24] for p in segments]
    gone_index = names.index(check.last_segment) - 2  # after the backup's own WAL
    assert names[gone_index] > check.first_segment
    segments[gone_index].unlink()

    gap = assurance_archive.check_archive(db1.cluster, actor=dba, catalog=damaged)
    assert (gap.continuous, gap.first_gap, gap.missing) == (False, names[gone_index], 1)
    assert gap.last_restorable_segment == names[gone_index - 1]
    assert gap.last_segment == check.last_segment
    # Earlier in the chain; pgBackRest gives push times in whole seconds, and segments switched
    # one after the other may share one.
    now = timezone.now()
    assert gap.restorable_to <= check.restorable_to and gap.rpo(now) >= check.rpo(now)
    assert f"1 segment(s) missing from {names[gone_index]} on" in gap.message
    failed = AuditEntry.objects.filter(action=audit.BACKUP_ARCHIVE_CHECK, status="failed")
    assert failed.count() == 1 and names[gone_index] in failed.get().output

    # The backup's own first segment gone: that backup restores nothing.
    first = next(p for p in segments if p.name.startswith(check.first_segment))
    first.unlink()
    lost = assurance_archive.check_archive(db1.cluster, actor=dba, catalog=damaged)
    assert (lost.continuous, lost.first_gap, lost.restorable_to) == (
        False, check.first_segment, None)  # fmt: skip
    assert "cannot be restored" in lost.message and lost.rpo() is None

    # The shared repository itself was never touched: still continuous.
    again = assurance_archive.check_archive(db1.cluster, actor=dba, catalog=catalog)
    assert again.continuous is True and again.last_segment == check.last_segment
    newest = assurance_archive.newest_archive_checks()
    assert newest[db1.cluster_id] == again
    shutil.rmtree(copy, ignore_errors=True)


@pytest.mark.django_db(transaction=True)
def test_the_archive_check_job_records_every_cluster_and_a_cluster_without_backups(db1, dba):
    job = assurance_archive.start_archive_check(None, actor=dba)
    assert assurance_archive.start_archive_check(None, actor=dba) is None  # one at a time
    assert jobs.run_job(job.pk, assurance_tasks.check_archives.body) == "succeeded"
    assert not ArchiveCheck.objects.exists()  # no cluster has a catalog yet
    job = assurance_archive.start_archive_check(db1.cluster, actor=dba)
    assert jobs.run_job(job.pk, assurance_tasks.check_archives.body) == "succeeded"
    check = ArchiveCheck.objects.get()
    assert (check.continuous, check.restorable_to, check.rpo()) == (False, None, None)
    assert check.message == "No usable (verified) backup: nothing can be restored."


@pytest.mark.django_db(transaction=True)
def test_a_pg_rman_arclog_directory_is_walked_from_the_backups_first_segment(db1, dba, lab_env):
    """pg_rman is not installed in the lab, so its catalog and backup record are written here
    by hand (the start LSN read from db1 itself); the arclog listing is real: the lab's own
    archive directory, where db1's archive_command copies every segment (only read)."""
    start_lsn = sql1(db1, "SELECT pg_current_wal_lsn()::text", actor=dba)
    timeline = sql1(db1, "SELECT timeline_id FROM pg_control_checkpoint()", actor=dba)
    catalog = BackupCatalog.objects.create(
        cluster=db1.cluster, name="rman", engine="pg_rman",
        path=f"{lab_env['LAB_DIR']}/pg_rman-catalog", arclog_path=f"{lab_env['LAB_DIR']}/archive",
    )  # fmt: skip
    catalog.nodes.add(db1)
    now = timezone.now()
    BackupRun.objects.create(
        catalog=catalog, cluster=db1.cluster, mode="full", status="ok", started=now, ended=now,
        backup_id="2026-11-26 02:00:00", start_lsn=start_lsn, stop_lsn=start_lsn, timeline=timeline,
    )  # fmt: skip
    last = _switch_and_wait(db1, dba, times=2)

    check = assurance_archive.check_archive(db1.cluster, actor=dba, catalog=catalog)
    assert check.continuous is True, check.message
    assert check.first_segment == sql1(
        # + 1: pg_walfile_name names the previous segment for an LSN on a segment boundary
        # (where a pg_switch_wal leaves the current LSN); the record there is in the next one.
        db1, "SELECT pg_walfile_name(%s::pg_lsn + 1)", [start_lsn], actor=dba)  # fmt: skip
    assert check.last_segment >= last and check.segments >= 2  # the first and the switched one
    assert now <= check.restorable_to <= timezone.now()
    listing = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND, command__contains=" find ")
    assert listing.filter(command__contains=f"--chdir={lab_env['LAB_DIR']}/archive").exists()
