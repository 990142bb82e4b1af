"""Backup assurance: what proves a cluster's backups can be restored, and to what point.

- **Test restores** (`TestRestorePolicy`): each policy has a django-celery-beat PeriodicTask
  (named after the policy, task `backups.scheduled_test_restore`, the policy's cron fields in
  settings.TIME_ZONE), kept in step by the policy actions below in the same transaction as the
  policy and its audit entry. A firing (or "Test restore now") queues the job
  `backups.test_restore`, whose body `run_test_restore` restores the latest usable backup into
  a new scratch directory on the policy's host, starts it on its own port, waits for recovery
  to end, runs the check query, records a RestoreRun (`test_restore`, its duration: the RTO
  figure) and stops and removes the scratch instance.
- **WAL continuity** (`check_archive`): from the latest usable backup's start segment to the
  newest archived one, is every segment in the repository (pgBackRest `repo-ls`) or the arclog
  directory (pg_rman)? Recorded as an ArchiveCheck with the first gap and `restorable_to`, the
  last point the cluster can be restored to; the RPO is the time since then.

Every remote step goes through console.executor (audited there); each console change writes
its own audit entry in the same transaction.
"""

import json
import logging
import time
import zoneinfo
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from backups.actions import repository, run_pgbackrest
from backups.drivers import pgbackrest
from backups.drivers.base import Command
from backups.models import (
    BackupCatalog,
    BackupRun,
    RecoveryTargetKind,
    RestoreRun,
    RestoreStatus,
    RunStatus,
    TestRestorePolicy,
)
from backups.restore_checks import (
    PG_BIN,
    check_disk,
    check_port,
    check_repository,
    run_as_postgres,
)
from backups.restore_plan import RecoveryTarget, RestorePlan
from backups.restore_server import (
    SCRATCH_START_TIMEOUT,
    check_listen_address,
    restored_target,
    start_server,
    wait_for_recovery,
)
from console import audit, jobs
from console.errors import ExpectedFailure
from console.executor import ExecutorError, run_sql
from console.models import AuditEntry, Job

logger = logging.getLogger(__name__)

SCHEDULE_TASK = "backups.scheduled_test_restore"
TEST_RESTORE_RULE = "backup_test_restore_failed"
ARCHIVE_RULE = "backup_archive_gap"
TEST_RESTORE_JOB = "backups.test_restore"
ARCHIVE_JOB = "backups.check_archives"
POLICY_FIELDS = ("catalog", "node", "data_directory", "port", "schedule", "check_query", "enabled")
_RECOVERY_TIMEOUT = 600.0
_ACTIVE_JOB = (Job.Status.PENDING, Job.Status.RUNNING)


def _zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _source(job) -> str:
    return AuditEntry.Source.JOB if job is not None else AuditEntry.Source.UI


# --- test restore policies and their PeriodicTask --------------------------------------------


def next_run(policy: TestRestorePolicy, now: datetime | None = None) -> datetime | None:
    """When beat fires this policy next (None when disabled)."""
    if not policy.enabled:
        return None
    minute, hour, day_of_month, month, day_of_week = policy.schedule.split()
    schedule = CrontabSchedule(minute=minute, hour=hour, day_of_month=day_of_month,
                               month_of_year=month, day_of_week=day_of_week,
                               timezone=_zone()).schedule  # fmt: skip
    last, delta, _now = schedule.remaining_delta((now or timezone.now()).astimezone(_zone()))
    return last + delta


def describe(policy: TestRestorePolicy) -> str:
    return (f"test restore of {policy.catalog} into {policy.node.name}:{policy.data_directory} "
            f"port {policy.port} at '{policy.schedule}', "
            f"{'enabled' if policy.enabled else 'disabled'}")  # fmt: skip


def sync_schedule(policy: TestRestorePolicy, *, restart: bool = False) -> PeriodicTask:
    """Create or update the policy's PeriodicTask (crontab, enabled, args). With `restart` beat
    counts from now (no catch-up firing for a time before the change). Call inside the
    action's transaction."""
    minute, hour, day_of_month, month, day_of_week = policy.schedule.split()
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month,
        day_of_week=day_of_week, timezone=_zone(),
    )  # fmt: skip
    task = PeriodicTask.objects.filter(name=policy.periodic_task_name).first()
    old = task.crontab_id if task else None
    task = task or PeriodicTask(name=policy.periodic_task_name)
    task.task, task.args, task.kwargs = SCHEDULE_TASK, json.dumps([policy.pk]), "{}"
    task.crontab, task.interval, task.solar, task.clocked = schedule, None, None, None
    task.enabled = policy.enabled
    task.description = f"Backups: {describe(policy)}"
    if restart:
        task.last_run_at = timezone.now()
    task.save()
    if old and old != schedule.pk:
        CrontabSchedule.objects.filter(pk=old, periodictask__isnull=True).delete()
    return task


def ensure_alert_rules() -> None:
    """The alert rules of backup assurance, created once (clusters.alerts evaluates them with
    test_restore_alert_check and archive_alert_check after each collection cycle)."""
    from clusters.models import AlertRule

    AlertRule.objects.get_or_create(key=TEST_RESTORE_RULE, defaults={
        "title": "Test restore failed",
        "description": "The newest test restore of the cluster failed (backups.assurance): "
                       "its latest usable backup did not restore or did not pass its check "
                       "query. Critical; clears when a test restore succeeds.",
        "for_seconds": 0,
    })  # fmt: skip
    AlertRule.objects.get_or_create(key=ARCHIVE_RULE, defaults={
        "title": "WAL archive not restorable",
        "description": "The newest WAL archive check found a gap after the latest usable "
                       "backup (warning: restorable only up to the gap) or nothing restorable "
                       "(critical). Clears when a check finds the archive continuous.",
        "for_seconds": 0,
    })  # fmt: skip


def save_test_restore_policy(
    policy: TestRestorePolicy, *, actor, source: str = AuditEntry.Source.UI
) -> TestRestorePolicy:
    """Create or change a test restore policy and its PeriodicTask, audited
    (backup.test_restore_policy) in one transaction. Validated here (ValidationError naming
    the field, nothing saved). Saving an unchanged policy writes nothing."""
    policy.full_clean()
    ensure_alert_rules()
    names = [f"{n}_id" if n in ("catalog", "node") else n for n in POLICY_FIELDS]
    before = None
    if policy.pk is not None:
        before = TestRestorePolicy.objects.filter(pk=policy.pk).values(*names).first()
    now_values = {name: getattr(policy, name) for name in names}
    if before is not None and before == now_values:
        return policy
    changed = [k for k, v in now_values.items() if before is None or before[k] != v]
    with transaction.atomic():
        policy.save()
        sync_schedule(policy, restart=before is None or "schedule" in changed
                      or "enabled" in changed)  # fmt: skip
        what = "created" if before is None else f"changed ({', '.join(changed)})"
        audit.append(audit.BACKUP_TEST_RESTORE_POLICY, actor=actor, source=source,
                     target=f"test_restore_policy:{policy.pk}",
                     output=f"{what}: {describe(policy)}")  # fmt: skip
    return policy


def delete_test_restore_policy(
    policy: TestRestorePolicy, *, actor, source: str = AuditEntry.Source.UI
) -> bool:
    """Delete a policy and its PeriodicTask, audited, in one transaction. Its test restores
    (RestoreRuns) stay. False when it was already gone (safe to retry)."""
    with transaction.atomic():
        locked = TestRestorePolicy.objects.select_for_update().filter(pk=policy.pk).first()
        if locked is None:
            return False
        output = f"deleted: {describe(policy)}"
        tasks = PeriodicTask.objects.filter(name=policy.periodic_task_name)
        crontabs = list(tasks.values_list("crontab_id", flat=True))
        tasks.delete()
        CrontabSchedule.objects.filter(pk__in=crontabs, periodictask__isnull=True).delete()
        pk = policy.pk
        locked.delete()
        audit.append(audit.BACKUP_TEST_RESTORE_POLICY, actor=actor, source=source,
                     target=f"test_restore_policy:{pk}", output=output)  # fmt: skip
    return True


# --- starting a test restore -----------------------------------------------------------------


def _active_test_restore(policy: TestRestorePolicy) -> Job | None:
    return Job.objects.filter(kind=TEST_RESTORE_JOB, params__policy=policy.pk,
                              status__in=_ACTIVE_JOB).first()  # fmt: skip


def start_test_restore(
    policy: TestRestorePolicy, *, actor, source: str = AuditEntry.Source.UI
) -> Job:
    """Queue the job backups.test_restore for `policy`, audited (backup.test_restore_start) in
    the same transaction. One at a time per policy: while one is queued or running a second is
    refused (ExpectedFailure) and nothing changes."""
    with transaction.atomic():
        TestRestorePolicy.objects.select_for_update().filter(pk=policy.pk).first()
        running = _active_test_restore(policy)
        if running is not None:
            raise ExpectedFailure(f"A test restore of {policy.catalog} on {policy.node.name} is "
                                  f"already queued or running (job {running.pk}).")  # fmt: skip
        job = jobs.enqueue(TEST_RESTORE_JOB, f"test restore of {policy.catalog} on "
                           f"{policy.node.name}", user=actor, source=source,
                           params={"policy": policy.pk}, target=policy)  # fmt: skip
        audit.append(audit.BACKUP_TEST_RESTORE_START, actor=actor, source=source,
                     target=f"test_restore_policy:{policy.pk}", job_id=job.pk,
                     output=f"queued: {describe(policy)}")  # fmt: skip
    return job


def fire_test_restore(policy_id: int) -> Job | None:
    """What beat's task does: queue the policy's test restore (source "schedule"). A policy
    gone or disabled does nothing; one still running is skipped, audited as a failure."""
    policy = TestRestorePolicy.objects.select_related("catalog__cluster", "node").filter(
        pk=policy_id).first()  # fmt: skip
    if policy is None or not policy.enabled:
        logger.info("test restore policy %s is gone or disabled; nothing queued", policy_id)
        return None
    try:
        return start_test_restore(policy, actor=None, source=AuditEntry.Source.SCHEDULE)
    except ExpectedFailure as exc:
        audit.append(audit.BACKUP_TEST_RESTORE_START, source=AuditEntry.Source.SCHEDULE,
                     status=AuditEntry.Status.FAILED, target=f"test_restore_policy:{policy_id}",
                     error=f"scheduled test restore not started: {exc}")  # fmt: skip
        return None


# --- the test restore itself (the job's body) ------------------------------------------------


def latest_usable(catalog: BackupCatalog) -> BackupRun | None:
    return (BackupRun.objects.filter(catalog=catalog, status=RunStatus.OK).exclude(backup_id="")
            .select_related("catalog").order_by("-started", "-id").first())  # fmt: skip


def scratch_plan(policy: TestRestorePolicy, backup: BackupRun | None) -> RestorePlan:
    """The policy's scratch instance as the restore wizard plans a restore onto another host
    (its directory and port, the latest point, promoted): what the wizard's pre-checks and
    backups.restore_server (start, reach, wait for recovery) take. `command` is not used."""
    return RestorePlan(
        cluster=policy.catalog.cluster, catalog=policy.catalog, node=policy.node,
        data_directory=policy.data_directory.rstrip("/"), port=policy.port, in_place=False,
        target=RecoveryTarget(), backup=backup, wal_first="", wal_until="",
        command=Command(["true"]), check_query=policy.check_query,
    )  # fmt: skip


def run_test_restore(
    policy: TestRestorePolicy, *, actor, job=None, log=None,
    recovery_timeout: float = _RECOVERY_TIMEOUT,
) -> RestoreRun:  # fmt: skip
    """Restore the latest usable backup of the policy's catalog (`--set`, to the end of the
    archived WAL) into a new scratch directory on the policy's host, start it on the policy's
    port (archiving off, no synchronous standby, listening on the host's address), wait with a
    deadline until recovery ended, run the check query, then stop and remove it. Recorded as a
    RestoreRun (test_restore): status, the backup used, the check's result, `duration` from the
    start of the restore until the check answered (the RTO figure), and on failure the
    engine's or PostgreSQL's own message; audited (backup.restore at the start,
    backup.test_restore with the outcome). A directory that already exists is never touched:
    the run fails saying so. Raises ExpectedFailure after recording a failure."""
    from backups.restore import release_abandoned  # the restore wizard's (a dead worker's run)

    log = log or (lambda message: None)
    catalog, node, directory = policy.catalog, policy.node, policy.data_directory.rstrip("/")
    release_abandoned(node, actor=actor)
    backup = latest_usable(catalog)
    restore = RestoreRun(
        cluster_id=catalog.cluster_id, catalog=catalog, target_node=node,
        target_data_directory=directory, target_kind=RecoveryTargetKind.LATEST,
        target_action="promote", test_restore=True, check_query=policy.check_query,
        backup=backup, job=job, user=actor if getattr(actor, "is_authenticated", False) else None,
        status=RestoreStatus.RUNNING, started=timezone.now(),
    )  # fmt: skip
    try:
        with transaction.atomic():
            restore.save()
            audit.append(audit.BACKUP_RESTORE, actor=actor, source=_source(job), node=node.name,
                         target=f"restore_run:{restore.pk}", job_id=job.pk if job else None,
                         output=f"test restore of {catalog} (backup "
                                f"{backup.backup_id if backup else '-'}) into {directory} "
                                f"port {policy.port}")  # fmt: skip
    except IntegrityError:
        raise ExpectedFailure(f"A restore onto {node.name} is already running.") from None
    t0 = time.monotonic()
    created = False
    try:
        if backup is None:
            raise ExpectedFailure(f"No usable (verified) backup in {catalog}: nothing to restore.")
        plan = scratch_plan(policy, backup)
        if _exists(plan, directory, actor=actor, job=job):
            raise ExpectedFailure(f"{directory} already exists on {node.name}; a test restore "
                                  f"goes into a new directory and never touches an existing one "
                                  f"(remove it if it is a leftover).")  # fmt: skip
        check_listen_address(node)
        _prechecks(plan, actor=actor, job=job, log=log)
        command = pgbackrest.restore(repository(catalog), directory, label=backup.backup_id)
        log(f"restoring backup {backup.backup_id} into {node.name}:{directory}")
        created = True
        run_pgbackrest(node, command, actor=actor, job=job, timeout=6 * 3600)
        log(f"starting the scratch instance on {node.name}:{policy.port}")
        start_server(plan, actor=actor, job=job, timeout=SCRATCH_START_TIMEOUT, log_kept=False)
        target = restored_target(plan)
        wait_for_recovery(plan, target, recovery_timeout, actor=actor, job=job, log_kept=False)
        log(f"recovery ended; check query: {policy.check_query}")
        result, ok = _check(target, policy.check_query, actor=actor, job=job)
        duration = timedelta(seconds=time.monotonic() - t0)
    except ExpectedFailure as exc:
        message = str(exc)
        if created:
            message += _cleanup(plan, actor=actor, job=job)
        _end(restore, RestoreStatus.FAILED, message, job=job, actor=actor,
             duration=timedelta(seconds=time.monotonic() - t0))  # fmt: skip
        raise ExpectedFailure(f"Test restore failed: {message}") from None
    except BaseException:
        if created:  # a bug or an interruption: still never leave a server running
            _cleanup(plan, actor=actor, job=job)
        _end(restore, RestoreStatus.FAILED, "internal error; see the job", job=job, actor=actor)
        raise
    leftover = _cleanup(plan, actor=actor, job=job)
    log(leftover.strip() or "scratch instance stopped and its directory removed")
    if ok:
        status, message = RestoreStatus.SUCCEEDED, f"restored backup {backup.backup_id}"
    else:
        status = RestoreStatus.FAILED
        message = f"restored backup {backup.backup_id}, but the check query returned {result!r}"
    _end(restore, status, message + leftover, job=job, actor=actor, duration=duration,
         check_result=result, check_ok=ok)  # fmt: skip
    log(f"test restore {status}: {message}{leftover}; took {duration.total_seconds():.1f} s")
    if status != RestoreStatus.SUCCEEDED:
        raise ExpectedFailure(f"Test restore failed: {message}{leftover}")
    return restore


def _prechecks(plan: RestorePlan, *, actor, job, log) -> None:
    """The restore wizard's read-only pre-checks that apply to a scratch instance (enough
    disk for the backup's database, the host reads the repository and it lists the backup,
    nothing answers on the port): the first that fails stops the run, nothing touched."""
    for check in (
        check_disk(plan, False, actor=actor, job=job),
        check_repository(plan, actor=actor, job=job)[0],
        check_port(plan, actor=actor, job=job),
    ):
        if not check.ok:
            raise ExpectedFailure(f"pre-check {check.name}: {check.detail}")
        log(f"pre-check {check.name}: {check.detail}")


def _check(target, query: str, *, actor, job) -> tuple[str, bool]:
    """The first value of the check query's first row, as text; ok unless it is false or
    NULL or there is no row. A query PostgreSQL refuses fails the test restore."""
    try:
        rows = run_sql(target, query, actor=actor, job=job, action=audit.BACKUP_COMMAND).rows
    except ExecutorError as exc:
        raise ExpectedFailure(f"the check query failed: {exc}") from None
    value = rows[0][0] if rows and rows[0] else None
    return ("" if value is None else str(value)), value not in (None, False)


def _cleanup(plan: RestorePlan, *, actor, job) -> str:
    """Stop the scratch instance (if it runs) and remove its directory; "" when it is gone,
    else a sentence for the record saying what is left."""
    directory = plan.data_directory
    if _exists(plan, f"{directory}/postmaster.pid", actor=actor, job=job):
        run_as_postgres(plan, [f"{PG_BIN}/pg_ctl", "-D", directory, "-m", "fast", "-w", "-t",
                               "60", "stop"], actor=actor, job=job, timeout=90)  # fmt: skip
    run_as_postgres(plan, ["rm", "-rf", "--one-file-system", "--", directory], actor=actor,
                    job=job)  # fmt: skip
    if _exists(plan, directory, actor=actor, job=job):
        return f" The scratch directory {directory} on {plan.node.name} could not be removed."
    return ""


def _exists(plan: RestorePlan, path: str, *, actor, job) -> bool:
    """Whether `path` exists on the host: a probe, audited (exit 1, absent, as an answer,
    not a failure) but kept out of the job log."""
    return run_as_postgres(plan, ["test", "-e", path], actor=actor, job=job,
                           job_log=False, ok_exits=(0, 1)).exit_code == 0  # fmt: skip


def _end(restore: RestoreRun, status: str, message: str, *, job, actor, **fields) -> None:
    now = timezone.now()
    fields.update(status=status, ended=now, message=message)
    fields.setdefault("duration", now - restore.started)
    with transaction.atomic():
        for name, value in fields.items():
            setattr(restore, name, value)
        restore.save(update_fields=list(fields))
        failed = status != RestoreStatus.SUCCEEDED
        seconds = restore.duration.total_seconds()
        audit.append(audit.BACKUP_TEST_RESTORE, actor=actor, source=_source(job),
                     node=restore.target_node.name, target=f"restore_run:{restore.pk}",
                     job_id=job.pk if job else None,
                     status=AuditEntry.Status.FAILED if failed else AuditEntry.Status.SUCCEEDED,
                     output=f"{status} in {seconds:.1f} s; check: {restore.check_result!r}",
                     error=message if failed else "")  # fmt: skip


# --- alerts ------------------------------------------------------------------------------------


def _newest_finished_tests() -> dict[int, RestoreRun]:
    rows = (RestoreRun.objects.filter(test_restore=True, ended__isnull=False)
            .select_related("target_node").order_by("cluster_id", "-ended", "-id"))  # fmt: skip
    if connection.vendor == "postgresql":
        return {r.cluster_id: r for r in rows.distinct("cluster_id")}
    found: dict[int, RestoreRun] = {}
    for run in rows:
        found.setdefault(run.cluster_id, run)
    return found


def test_restore_alert_check(view, rule) -> Iterator:
    """clusters.alerts check `backup_test_restore_failed`: critical while the cluster's newest
    finished test restore failed. Read once per evaluation (kept on the shared rule object)."""
    from clusters.alerts import Finding
    from clusters.models import Severity

    if not hasattr(rule, "_newest_tests"):
        rule._newest_tests = _newest_finished_tests()
    run = rule._newest_tests.get(view.cluster.pk)
    if run is not None and run.status == RestoreStatus.FAILED:
        text = (f"test restore on {run.target_node.name} at {run.started:%Y-%m-%d %H:%M} UTC "
                f"failed: {run.message}")  # fmt: skip
        yield Finding(rule.key, view.cluster.pk, "cluster", Severity.CRITICAL, text[:500])
