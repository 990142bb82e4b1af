# ruff: noqa: F811 (the lab fixtures db1 and site come from test_pgbackrest)
"""Backup policies drive Celery beat: each policy keeps exactly one PeriodicTask on a
CrontabSchedule (django-celery-beat's DatabaseScheduler reads them), changed only by the policy
actions, audited in the same transaction. A firing refused because a backup of the cluster is
running is audited once, not raised. A cron time passed without a run is recorded as a
MissedBackup and raises the `backup_missed` alert, which clears once a run starts."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from backups import actions, schedule, tasks
from backups.drivers import pg_rman
from backups.models import BackupCatalog, BackupPolicy, BackupRun, MissedBackup, PolicySchedule
from clusters import alerts
from clusters.models import Alert, Node
from console import audit, jobs
from console.models import AuditEntry, Job
from tests import factories
from tests.backups.pg_rman_captures import capture


@pytest.fixture
def catalog(db):
    cluster = factories.make_monitored_cluster("bk-sched")
    return BackupCatalog.objects.create(cluster=cluster, name="repo", engine="pgbackrest",
                                        path="/srv/repo", stanza="main")  # fmt: skip


def new_policy(catalog, dba, **fields) -> BackupPolicy:
    values = {"name": "weekly", "schedule": "0 2 * * 0", "mode": "full", **fields}
    return schedule.create_policy(BackupPolicy(catalog=catalog, **values), actor=dba)


def entries(action: str):
    return AuditEntry.objects.filter(action=action)


def test_a_new_policy_gets_one_periodic_task_on_its_cron_schedule(catalog, dba):
    policy = new_policy(catalog, dba, retention_full=2)
    task = PeriodicTask.objects.get(name=schedule.task_name(policy))
    assert (task.task, json.loads(task.args), task.enabled) == (
        "backups.scheduled_backup", [policy.pk], True)  # fmt: skip
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "0", "2", "*", "*", "0")  # fmt: skip
    assert task.task in tasks.scheduled_backup.name  # the task beat sends exists
    assert PolicySchedule.objects.get(policy=policy).since <= task.last_run_at
    (entry,) = entries(audit.BACKUP_POLICY_CREATED)
    assert entry.target == f"backup_policy:{policy.pk}" and entry.actor == dba
    assert "full at '0 2 * * 0'" in entry.output and "retention_full=2" in entry.output
    # Sunday 02:00 in the console's time zone (UTC here), after a Thursday.
    assert schedule.next_run(policy, datetime(2026, 11, 26, 1, 0, tzinfo=UTC)) == datetime(
        2026, 11, 29, 2, 0, tzinfo=UTC)  # fmt: skip


def test_beats_database_scheduler_reads_the_policys_task_and_is_not_due_before_its_time(
    catalog, dba
):
    from celery import current_app
    from django.conf import settings
    from django_celery_beat.schedulers import DatabaseScheduler

    policy = new_policy(catalog, dba, schedule="*/5 * * * *", mode="incr")
    entries = DatabaseScheduler(app=current_app, lazy=True).all_as_schedule()
    entry = entries[schedule.task_name(policy)]
    assert (entry.task, list(entry.args)) == ("backups.scheduled_backup", [policy.pk])
    assert entry.schedule.minute == set(range(0, 60, 5)) and entry.schedule.hour == set(range(24))
    due, wait = entry.is_due()  # counted from the policy's creation: no catch-up run
    assert not due and 0 < wait <= 300
    assert "backups.scheduled_backup" in current_app.tasks
    assert settings.CELERY_BEAT_SCHEDULE["backups.detect_missed"]["task"] in current_app.tasks
    schedule.set_policy_enabled(policy, False, actor=dba)
    entries = DatabaseScheduler(app=current_app, lazy=True).all_as_schedule()
    assert schedule.task_name(policy) not in entries  # beat loads enabled tasks only


def test_an_invalid_cron_is_refused_naming_the_schedule_and_nothing_is_saved(catalog, dba):
    for bad in ("0 25 * * *", "every day", "* * * *", "61 * * * *"):
        with pytest.raises(ValidationError) as caught:
            new_policy(catalog, dba, schedule=bad)
        assert list(caught.value.message_dict) == ["schedule"], bad
    assert not BackupPolicy.objects.exists() and not PeriodicTask.objects.filter(
        task=schedule.TASK).exists()  # fmt: skip
    assert not entries(audit.BACKUP_POLICY_CREATED).exists()


def test_changing_the_schedule_moves_the_task_and_drops_the_unused_crontab(catalog, dba):
    policy = new_policy(catalog, dba)
    old = PeriodicTask.objects.get(name=schedule.task_name(policy)).crontab_id
    assert schedule.update_policy(policy, {"schedule": "30 1 * * *", "mode": "full"},
                                  actor=dba) == ["schedule"]  # fmt: skip
    task = PeriodicTask.objects.get(name=schedule.task_name(policy))
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "1", "*")
    assert not CrontabSchedule.objects.filter(pk=old).exists()
    (entry,) = entries(audit.BACKUP_POLICY_CHANGED)
    assert "schedule: 0 2 * * 0 -> 30 1 * * *" in entry.output
    # The same values again: nothing written, no entry.
    assert schedule.update_policy(policy, {"schedule": "30 1 * * *"}, actor=dba) == []
    assert entries(audit.BACKUP_POLICY_CHANGED).count() == 1
    # A wrong mode for the engine is refused on its field and the policy keeps its mode.
    with pytest.raises(ValidationError) as caught:
        schedule.update_policy(policy, {"mode": "incremental"}, actor=dba)
    assert "mode" in caught.value.message_dict
    policy.refresh_from_db()
    assert policy.mode == "full" and entries(audit.BACKUP_POLICY_CHANGED).count() == 1


def test_disable_enable_and_delete_keep_the_task_in_step_and_are_safe_to_repeat(catalog, dba):
    policy = new_policy(catalog, dba)
    name = schedule.task_name(policy)
    assert schedule.set_policy_enabled(policy, False, actor=dba)
    assert not PeriodicTask.objects.get(name=name).enabled
    assert not schedule.set_policy_enabled(policy, False, actor=dba)  # already: nothing
    assert schedule.next_run(policy) is None
    assert schedule.set_policy_enabled(policy, True, actor=dba)
    assert PeriodicTask.objects.get(name=name).enabled
    assert entries(audit.BACKUP_POLICY_DISABLED).count() == 1
    assert entries(audit.BACKUP_POLICY_ENABLED).count() == 1
    crontab = PeriodicTask.objects.get(name=name).crontab_id
    assert schedule.delete_policy(policy, actor=dba)
    assert not PeriodicTask.objects.filter(name=name).exists()
    assert not CrontabSchedule.objects.filter(pk=crontab).exists()
    assert not BackupPolicy.objects.exists()
    assert not schedule.delete_policy(policy, actor=dba)  # already gone
    (entry,) = entries(audit.BACKUP_POLICY_DELETED)
    assert entry.target == f"backup_policy:{policy.pk}" and "weekly" in entry.output


def test_a_firing_while_a_backup_runs_is_refused_and_audited_once(catalog, dba):
    policy = new_policy(catalog, dba, mode="incr", schedule="0 * * * *")
    BackupRun.objects.create(catalog=catalog, cluster=catalog.cluster, mode="full",
                             status="running")  # fmt: skip
    tasks.scheduled_backup(policy.pk)  # what the worker runs when beat sends the task
    (skipped,) = entries(audit.BACKUP_SCHEDULE_SKIPPED)
    assert skipped.source == "schedule" and skipped.status == "failed"
    assert "already queued or running; one at a time" in skipped.error
    assert BackupRun.objects.count() == 1 and not Job.objects.exists()
    # Disabled (or deleted) meanwhile: the firing does nothing at all.
    schedule.set_policy_enabled(policy, False, actor=dba)
    assert schedule.fire_policy(policy.pk) is None
    assert schedule.fire_policy(policy.pk + 1000) is None
    assert entries(audit.BACKUP_SCHEDULE_SKIPPED).count() == 1


def test_a_firing_queues_the_policys_backup_as_a_job_from_the_schedule(catalog, dba):
    policy = new_policy(catalog, dba, mode="full", compress=True)
    run = schedule.fire_policy(policy.pk)
    assert (run.policy, run.mode, run.status, run.compressed) == (policy, "full", "pending", True)
    job = Job.objects.get(pk=run.job_id)
    assert (job.kind, job.source, job.user, job.params) == (
        "backups.run_backup", "schedule", None, {"run": run.pk})  # fmt: skip
    assert entries(audit.BACKUP_START).get().source == "schedule"


def test_a_missed_cron_time_is_recorded_once_alerts_and_clears_when_a_run_starts(catalog, dba):
    policy = new_policy(catalog, dba, mode="incr", schedule="0 * * * *")
    start = datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
    PolicySchedule.objects.filter(policy=policy).update(since=start)
    grace = timedelta(minutes=15)
    # 01:10: the 01:00 firing is still within its grace.
    assert schedule.detect_missed(start + timedelta(minutes=40), grace) == []
    missed = schedule.detect_missed(start + timedelta(hours=2, minutes=20), grace)
    assert [m.due_at for m in missed] == [datetime(2026, 11, 20, h, 0, tzinfo=UTC) for h in (1, 2)]
    assert {(m.cluster, m.policy, m.policy_name) for m in missed} == {
        (catalog.cluster, policy, "weekly")}  # fmt: skip
    assert schedule.detect_missed(start + timedelta(hours=2, minutes=20), grace) == []  # once
    assert MissedBackup.objects.count() == 2
    assert entries(audit.BACKUP_MISSED).count() == 2
    assert "due at 2026-11-20 01:00 UTC did not start within 900 s" in (
        entries(audit.BACKUP_MISSED).order_by("id").first().error)  # fmt: skip

    alerts.evaluate()
    alert = Alert.objects.get(rule__key="backup_missed", cleared__isnull=True)
    assert (alert.state, alert.severity, alert.cluster, alert.subject) == (
        "firing", "critical", catalog.cluster, f"policy:{policy.pk}")  # fmt: skip
    assert "did not start at 2026-11-20 02:00 UTC (2 times missed)" in alert.message

    schedule.fire_policy(policy.pk)  # a run starts: the condition is gone
    alerts.evaluate()
    alert.refresh_from_db()
    assert alert.state == "cleared"


def test_a_disabled_policy_misses_nothing_and_enabling_it_again_restarts_its_schedule(catalog, dba):
    policy = new_policy(catalog, dba, schedule="*/5 * * * *")
    schedule.set_policy_enabled(policy, False, actor=dba)
    later = PolicySchedule.objects.get(policy=policy).since + timedelta(hours=1)
    assert schedule.detect_missed(later, timedelta(0)) == []
    schedule.set_policy_enabled(policy, True, actor=dba)
    assert schedule.detect_missed(None, timedelta(minutes=10)) == []  # since is now


# --- against the lab: beat's firing, through a real Celery worker ------------------------------

from tests.backups.test_pgbackrest import STANZA, db1, site  # noqa: E402, F401

WORKER_REDIS_DB = 12  # a Redis database of the lab's own Redis that only this worker reads


def _wait(what: str, probe, timeout: float = 180.0, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)  # polling interval; the deadline decides


def _send_to(app, url: str | None) -> None:
    """Send this process's Celery messages to `url` (None: the configured broker)."""
    from kombu import pools

    app.conf.broker_write_url = url
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()


@pytest.fixture
def celery_worker(lab_env):
    """A real `celery worker` (solo pool) on the test database and a Redis database of its
    own; this process sends its messages there too. Stopped (TERM, then KILL) afterwards."""
    import redis
    from celery import current_app
    from django.db import connection

    broker = re.sub(r"/\d*$", "", os.environ["CELERY_BROKER_URL"]) + f"/{WORKER_REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    database = re.sub(r"/[^/]*$", f"/{connection.settings_dict['NAME']}",
                      os.environ["DATABASE_URL"])  # fmt: skip
    env = {**os.environ, "DATABASE_URL": database, "CELERY_BROKER_URL": broker}
    log = open(Path(lab_env["LAB_DIR"]) / "backups-worker.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "console", "worker", "--pool=solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n",
         "backups-test@%h", "--loglevel=INFO"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    previous = current_app.conf.broker_write_url
    _send_to(current_app, broker)
    try:
        yield worker
    finally:
        _send_to(current_app, previous)
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=30)
        log.close()
        redis.Redis.from_url(broker).flushdb()


@pytest.fixture
def lab_catalog(db1, site):
    """The test's pgBackRest repository (test_pgbackrest's `site`), seen by db1."""
    _parent, repo, _instance, _original = site
    catalog = BackupCatalog.objects.create(cluster=db1.cluster, name="lab", engine="pgbackrest",
                                           path=repo.path, stanza=STANZA)  # fmt: skip
    catalog.nodes.add(db1)
    return catalog


def fire_as_beat(policy: BackupPolicy) -> None:
    """What beat does at the policy's cron time: send its PeriodicTask's task with its args."""
    from celery import current_app

    periodic = PeriodicTask.objects.get(name=schedule.task_name(policy))
    current_app.send_task(periodic.task, args=json.loads(periodic.args))


@pytest.mark.django_db(transaction=True)
def test_beat_fires_a_scheduled_full_then_incremental_backup_and_both_are_usable(
    lab_catalog,
    dba,
    celery_worker,
):
    full_policy = new_policy(lab_catalog, dba, name="weekly-full", mode="full",
                             schedule="0 3 * * 0", compress=False, retention_full=2)  # fmt: skip
    incr_policy = new_policy(lab_catalog, dba, name="daily-incr", mode="incr",
                             schedule="0 3 * * 1-6", compress=False)  # fmt: skip

    fire_as_beat(full_policy)
    full = _wait("the scheduled full backup to end", lambda: BackupRun.objects.filter(
        policy=full_policy, status__in=("ok", "failed", "done", "corrupt")).first())  # fmt: skip
    fire_as_beat(incr_policy)
    incr = _wait("the scheduled incremental backup to end", lambda: BackupRun.objects.filter(
        policy=incr_policy, status__in=("ok", "failed", "done", "corrupt")).first())  # fmt: skip

    for run, mode in ((full, "full"), (incr, "incr")):
        job = Job.objects.get(pk=run.job_id)
        assert (run.status, run.usable, run.validated, run.mode) == ("ok", True, True, mode), (
            run.message or job.error)  # fmt: skip
        assert (job.status, job.source, job.progress, job.worker.startswith("backups-test@")) == (
            "succeeded", "schedule", 100, True)  # fmt: skip
        assert run.started <= run.ended and run.duration.total_seconds() > 0
        assert run.timeline >= 1 and run.data_bytes > 0 and run.written_bytes > 0
        log = "\n".join(job.log_lines.values_list("message", flat=True))
        assert f"{mode} backup on db1: pgbackrest" in log
        assert "pgBackRest INFO: backup start archive" in log
        assert f"backup {run.backup_id}: OK (validated, usable)" in log
        assert "DETAIL" not in log  # per-file lines only move the progress

        finished = AuditEntry.objects.get(action=audit.BACKUP_FINISHED,
                                          target=f"backup_run:{run.pk}")  # fmt: skip
        assert (
            finished.status == "succeeded" and f"{mode} backup {run.backup_id}" in finished.output
        )
    assert incr.backup_id.startswith(f"{full.backup_id}_") and incr.data_bytes < full.data_bytes
    commands = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND)
    # pgBackRest's file log was followed while it ran (reads audited without their content).
    assert commands.filter(command__contains="tail -c +", status="succeeded").exists()
    assert commands.filter(command__contains="--log-level-file=detail --log-path=/tmp/").exists()
    assert commands.filter(command__contains="backup --type=full").filter(
        command__contains="--repo1-retention-full=2").exists()  # fmt: skip
    assert set(AuditEntry.objects.filter(action=audit.BACKUP_START).values_list(
        "source", flat=True)) == {"schedule"}  # fmt: skip


# --- pg_rman runs: the commands a run executes and how its outputs are read -------------------


def _pg_rman_run(dba, cluster_name: str = "bk-rman", **policy_fields) -> BackupRun:
    cluster = factories.make_monitored_cluster(cluster_name)
    catalog = BackupCatalog.objects.create(cluster=cluster, name="rman", engine="pg_rman",
                                           path="/srv/pgr/backup", arclog_path="/srv/pgr/arclog",
                                           srvlog_path="")  # fmt: skip
    policy = schedule.create_policy(
        BackupPolicy(catalog=catalog, name="nightly", schedule="0 1 * * *", **policy_fields),
        actor=dba,
    )
    return actions.start_backup(policy, policy.mode, actor=dba)


def _captured_argv(name: str) -> list[str]:
    """A capture's argv, written as the builder writes it (-b MODE for --backup-mode=MODE)."""
    argv = []
    for arg in capture(name).argv:
        argv += ["-b", arg.split("=", 1)[1]] if arg.startswith("--backup-mode=") else [arg]
    return argv


def test_a_pg_rman_run_backs_up_validates_then_reads_the_catalog_as_captured(db, dba):
    run = _pg_rman_run(dba, mode="full", compress=True, with_serverlog=True)
    local = pg_rman.Connection(host="/srv/pgr", port=55432)
    backup, validate, show, inis = actions.pg_rman_commands(run, "/srv/pgr/data", local)
    assert backup.argv == _captured_argv("backup-full-compress-serverlog.txt")
    assert validate.argv == capture("validate.txt").argv
    assert show.argv == capture("show-detail-after-failed-backup.txt").argv  # show detail -a
    assert inis.argv == pg_rman.read_backup_inis("/srv/pgr/backup").argv
    assert {c.os_user for c in (backup, validate, show, inis)} == {"postgres"}


def test_a_pg_rman_policys_retention_goes_on_its_backup_command(db, dba):
    run = _pg_rman_run(dba, mode="full", with_serverlog=True, keep_srvlog_files=2,
                       keep_arclog_files=4, keep_data_days=1)  # fmt: skip
    local = pg_rman.Connection(host="/srv/pgr", port=55432)
    backup = actions.pg_rman_commands(run, "/srv/pgr/data", local)[0]
    expected = _captured_argv("backup-full-serverlog-keep-srvlog-arclog-files-data-days.txt")
    assert sorted(backup.argv) == sorted([*expected, "--progress"])  # same options
    incremental = _pg_rman_run(dba, "bk-rman-2", mode="incremental")
    assert actions.pg_rman_commands(incremental, "/srv/pgr/data", local)[0].argv == [
        *capture("backup-incremental.txt").argv, "--progress"]  # fmt: skip


def test_a_pg_rman_backup_from_a_standby_runs_there_connected_to_the_primary(db, dba):
    run = _pg_rman_run(dba, mode="archive")
    primary = pg_rman.Connection(host="192.0.2.1", port=5432)
    backup = actions.pg_rman_commands(run, "/srv/standby/data", primary, ("/srv/standby", 5433))[0]
    assert backup.argv == [
        "pg_rman", "backup", "-B", "/srv/pgr/backup", "-D", "/srv/standby/data", "-h",
        "192.0.2.1", "-p", "5432", "-b", "archive", "--progress",
        "--standby-host=/srv/standby", "--standby-port=5433",
    ]  # fmt: skip


def test_a_pg_rman_runs_outputs_give_its_progress_validation_and_a_usable_record(db, dba):
    run = _pg_rman_run(dba, mode="full", compress=True, with_serverlog=True)
    catalog = run.catalog
    listing = capture("show-detail.txt").stdout
    rows = pg_rman.parse_show(listing)
    # The catalog knew the three older backups; this run started just before the newest.
    actions.store_catalog_listing(catalog, [r for r in rows if r.backup_id != rows[0].backup_id],
                                  actor=dba)  # fmt: skip
    BackupRun.objects.filter(pk=run.pk).update(
        status="running", started=datetime(2026, 11, 25, 20, 23, 54, tzinfo=UTC))  # fmt: skip
    backup = capture("backup-full-compress-serverlog.txt")
    phases = {p.phase: (p.processed, p.total) for p in pg_rman.parse_progress(backup.stderr)}
    assert phases == {"database files": (999, 999), "archived WAL files": (10, 10),
                      "server log files": (1, 1)}  # fmt: skip
    assert pg_rman.parse_validate(capture("validate-full-compress-serverlog.txt").stderr) == {
        "2026-11-25 20:23:55": "ok"}  # fmt: skip
    read = actions.store_catalog_listing(catalog, rows, actor=dba)
    assert read.matched == ["2026-11-25 20:23:55"] and read.created == []
    run.refresh_from_db()
    assert (run.backup_id, run.status, run.usable, run.validated, run.compressed) == (
        "2026-11-25 20:23:55", "ok", True, True, True)  # fmt: skip
    assert run.duration == timedelta(seconds=2) and run.timeline == 1
    assert run.srvlog_bytes == 1481 and run.data_bytes >= 23_000_000


@pytest.mark.django_db(transaction=True)
def test_a_pg_rman_run_on_a_host_without_pg_rman_fails_saying_so(db1, dba, lab_env):
    if shutil.which("pg_rman"):
        pytest.skip("pg_rman is installed here: tests/backups/test_pg_rman_e2e.py runs it")
    catalog = BackupCatalog.objects.create(
        cluster=db1.cluster, name="rman", engine="pg_rman", arclog_path=f"{lab_env['LAB_DIR']}/a",
        path=f"{lab_env['LAB_DIR']}/pg_rman-missing",
    )  # fmt: skip
    catalog.nodes.add(db1)
    run = actions.start_backup(catalog, "full", actor=dba)
    assert jobs.run_job(run.job_id, tasks.run_backup.body) == "failed"
    run.refresh_from_db()
    assert (run.status, run.usable) == ("failed", False)
    assert run.message.startswith("pg_rman is not installed on this host (command not found)")
    assert Job.objects.get(pk=run.job_id).error == run.message
    failed = AuditEntry.objects.get(action=audit.BACKUP_COMMAND, status="failed")
    assert "pg_rman backup -B" in failed.command and "--progress" in failed.command
    assert AuditEntry.objects.get(action=audit.BACKUP_FINISHED).status == "failed"


@pytest.mark.django_db(transaction=True)
def test_a_pg_rman_policy_with_a_standby_source_runs_on_the_standby_against_the_primary(
    db1, dba, lab, lab_env
):
    if shutil.which("pg_rman"):
        pytest.skip("pg_rman is installed here: the run would really back up db2")
    db2 = Node.objects.get(name="db2")
    catalog = BackupCatalog.objects.create(
        cluster=db1.cluster, name="rman", engine="pg_rman", arclog_path=f"{lab_env['LAB_DIR']}/a",
        path=f"{lab_env['LAB_DIR']}/pg_rman-missing",
    )  # fmt: skip
    policy = new_policy(catalog, dba, mode="archive", source_node=db2)
    run = schedule.fire_policy(policy.pk)
    assert jobs.run_job(run.job_id, tasks.run_backup.body) == "failed"
    failed = AuditEntry.objects.get(action=audit.BACKUP_COMMAND, status="failed")
    standby = lab.parts["standby"]
    assert failed.node == "db2"
    assert (f"pg_rman backup -B {catalog.path} -D {standby.data} -h {db1.address} -p 5432 -b "
            f"archive --progress --standby-host={standby.socket_dir} --standby-port=5432"
            ) in failed.command  # fmt: skip


@pytest.mark.skipif(
    not shutil.which("pg_rman"),
    reason=(
        "pg_rman is not installed on this machine (Debian does not package it): the pg_rman run "
        "end to end needs its binary; its commands and outputs are tested with the captures above"
    ),
)
@pytest.mark.django_db(transaction=True)
def test_a_scheduled_pg_rman_full_backup_is_validated_into_a_usable_run(db1, dba, lab, lab_env):
    parent = Path(lab_env["LAB_DIR"]) / "pg_rman-schedule"
    shutil.rmtree(parent, ignore_errors=True)
    parent.mkdir(mode=0o700)
    shutil.chown(parent, "postgres", "postgres")
    try:
        catalog = BackupCatalog.objects.create(
            cluster=db1.cluster, name="rman", engine="pg_rman", path=str(parent / "catalog"),
            arclog_path=str(Path(lab_env["LAB_DIR"]) / "archive"),
        )  # fmt: skip
        catalog.nodes.add(db1)
        init = pg_rman.init(catalog.path, str(lab.parts["primary"].data),
                            arclog_path=catalog.arclog_path)  # fmt: skip
        actions.run_pg_rman(db1, init, actor=dba)
        policy = new_policy(catalog, dba, mode="full", compress=True, keep_data_generations=2)
        run = schedule.fire_policy(policy.pk)
        assert jobs.run_job(run.job_id, tasks.run_backup.body) == "succeeded"
        run.refresh_from_db()
        assert (run.status, run.usable, run.validated, run.mode) == ("ok", True, True, "full")
        log = "\n".join(Job.objects.get(pk=run.job_id).log_lines.values_list("message", flat=True))
        assert "pg_rman copied database files" in log and ": valid" in log
    finally:
        shutil.rmtree(parent, ignore_errors=True)
