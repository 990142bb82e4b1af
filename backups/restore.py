"""Restore actions: queue a planned restore, run it as a job, and its follow-ups.

- `start_restore(plan, confirm=..., actor=...)`: the typed confirmation (the node's name in
  place, the cluster's name onto another host), the pre-checks on the target host
  (backups.restore_checks), then in one transaction the pending RestoreRun, its RestoreDetail
  (the plan shown), the job `backups.restore` and an audit entry. Refused with
  `RestoreRefused` (naming the field when there is one) and nothing queued otherwise.
- `run_restore(restore, ...)`, the job's body: claims the pending run (a redelivered job does
  nothing), runs the pre-checks again and refuses **before anything on disk is touched** when
  one fails (a server running there above all), then the engine's restore, `pg_ctl start`,
  waits with a deadline until recovery reached the target (promoted, paused or shut down as
  asked), runs the check query and records the outcome (timings, check result), audited.
  Starting the restored server and waiting for its recovery: backups.restore_server.

The follow-ups (remove the recovery settings, a new full backup; standbys are rebuilt by the
HA pages) are in backups.restore_followups.
"""

from dataclasses import replace

from django.db import IntegrityError, transaction
from django.utils import timezone

from backups.actions import (
    PgBackRestFailed,
    PgRmanFailed,
    run_pg_rman,
    run_pgbackrest,
)
from backups.models import (
    Engine,
    RestoreDetail,
    RestoreRun,
    RestoreStatus,
)
from backups.restore_checks import CheckReport, run_prechecks
from backups.restore_plan import PlanError, RestorePlan, make_plan, parse_target, restore_command
from backups.restore_server import (
    keep_clone_settings,
    restored_target,
    start_server,
    wait_for_recovery,
)
from clusters.models import Node
from console import audit, jobs
from console.errors import ExpectedFailure
from console.executor import run_sql
from console.jobs import JobContext, job_task
from console.models import AuditEntry, Job

RECOVERY_TIMEOUT = 1800.0  # seconds a restored server may take to reach its target
DEFAULT_CHECK = "SELECT count(*) FROM pg_database"


class RestoreRefused(ExpectedFailure):
    """A restore was not queued or not run; nothing changed. `field` names the form field."""

    def __init__(
        self, message: str, *, field: str | None = None, report: CheckReport | None = None
    ):
        super().__init__(message)
        self.field = field
        self.report = report


def _source(job) -> str:
    return AuditEntry.Source.JOB if job is not None else AuditEntry.Source.UI


def refusal(report: CheckReport) -> str:
    return "Refused before anything on disk was touched: " + " ".join(
        c.detail for c in report.failed
    )


def start_restore(
    plan: RestorePlan, *, confirm: str, actor, source: str = AuditEntry.Source.UI
) -> RestoreRun:
    """Queue the restore `plan` as the job backups.restore. Refused (RestoreRefused, nothing
    queued) when the typed confirmation is not `plan.confirm_word`, when a pre-check fails, or
    when a restore onto that node is already queued or running. Audited (audit.BACKUP_RESTORE)
    in the same transaction as the run and its job."""
    if (confirm or "").strip() != plan.confirm_word:
        what = "the server's name" if plan.in_place else "the cluster's name"
        raise RestoreRefused(
            f"Nothing was queued: type {what}, {plan.confirm_word}, to confirm.", field="confirm"
        )
    report = run_prechecks(plan, actor=actor)
    if not report.ok:
        raise RestoreRefused(refusal(report), report=report)
    release_abandoned(plan.node, actor=actor)
    target = plan.target
    try:
        with transaction.atomic():
            restore = RestoreRun.objects.create(
                cluster=plan.cluster,
                catalog=plan.catalog,
                target_node=plan.node,
                target_data_directory=plan.data_directory,
                backup=plan.backup,
                user=actor if getattr(actor, "is_authenticated", False) else None,
                target_kind=target.kind,
                target_value=target.value,
                target_inclusive=target.inclusive,
                target_action="" if target.kind == "latest" else target.action,
                check_query=plan.check_query,
            )
            RestoreDetail.objects.create(
                restore=restore,
                port=plan.port,
                in_place=plan.in_place,
                delta=report.restore_over,
                wal_first=plan.wal_first,
                wal_until=_wal_until(plan, report),
                command=plan.command.display(),
                prechecks=report.as_list(),
            )
            where = "in place" if plan.in_place else f"into {plan.data_directory}:{plan.port}"
            job = jobs.enqueue(
                "backups.restore",
                f"Restore {plan.cluster.name} onto {plan.node.name} {where}",
                user=actor,
                source=source,
                params={"restore": restore.pk},
                target=restore,
            )
            RestoreRun.objects.filter(pk=restore.pk).update(job=job)
            restore.job = job
            audit.append(
                audit.BACKUP_RESTORE,
                actor=actor,
                source=source,
                target=f"restore_run:{restore.pk}",
                node=plan.node.name,
                job_id=job.pk,
                output=f"restore of {plan.catalog} from backup {plan.backup.backup_id} "
                f"to {target.describe()} onto {plan.node.name} {where} "
                f"queued",
            )
    except IntegrityError:
        raise RestoreRefused(
            f"A restore onto {plan.node.name} is already queued or running.", field="target_node"
        ) from None
    return restore


def release_abandoned(node: Node, *, actor) -> int:
    """End, as failed, the restores onto `node` still marked pending or running whose job has
    finished (a worker that died: the reaper ended its job). Without this a dead worker's
    restore would block every later one onto that node. Audited per restore."""
    stale = RestoreRun.objects.filter(
        target_node=node,
        status__in=(RestoreStatus.PENDING, RestoreStatus.RUNNING),
        job__status__in=Job.FINISHED,
    ).select_related("job", "target_node")
    for run in stale:
        _finish(
            run,
            RestoreStatus.FAILED,
            actor=actor,
            job=None,
            message=f"its job #{run.job.pk} ended ({run.job.status}) before the restore "
            f"finished; the data directory may hold a partial restore",
        )
    return len(stale)


def _wal_until(plan: RestorePlan, report: CheckReport) -> str:
    return (
        f"{plan.wal_until} (archived up to {report.wal_max})"
        if report.wal_max
        else (plan.wal_until)
    )


def plan_of(restore: RestoreRun, *, delta: bool | None = None) -> RestorePlan:
    """The plan a queued restore was confirmed with, rebuilt from its records: the same
    backup (refused if it is no longer usable), node, directory, port and target."""
    target = parse_target(
        restore.target_kind,
        restore.target_value,
        inclusive=restore.target_inclusive,
        action=restore.target_action or "promote",
    )
    detail = restore.detail
    return make_plan(
        restore.catalog,
        restore.target_node,
        target,
        data_directory="" if detail.in_place else restore.target_data_directory,
        port=detail.port,
        check_query=restore.check_query,
        backup=restore.backup,
        delta=delta,
    )


def run_restore(restore: RestoreRun, *, actor, job=None, log=None) -> RestoreRun:
    """The body of backups.restore (see the module's docstring). Safe to retry: a run that is
    not pending is left alone; a new run over a half-restored directory restores over it."""
    log = log or (lambda message: None)
    claimed = RestoreRun.objects.filter(pk=restore.pk, status=RestoreStatus.PENDING).update(
        status=RestoreStatus.RUNNING, started=timezone.now()
    )
    if not claimed:
        return restore
    restore.refresh_from_db()
    try:
        plan = plan_of(restore)
        log(f"pre-checks on {plan.node.name}")
        report = run_prechecks(plan, actor=actor, job=job)
        RestoreDetail.objects.filter(restore=restore).update(
            prechecks=report.as_list(), delta=report.restore_over
        )
        for check in report.checks:
            log(f"{'ok' if check.ok else 'FAILED'} {check.name}: {check.detail}")
        if not report.ok:
            raise RestoreRefused(refusal(report), report=report)
        plan = replace(plan, command=restore_command(plan, delta=report.restore_over))
        outcome = _restore_and_verify(plan, restore, actor=actor, job=job, log=log)
    except (ExpectedFailure, PlanError) as exc:
        message = exc.message if isinstance(exc, PlanError) else str(exc)
        _finish(restore, RestoreStatus.FAILED, actor=actor, job=job, message=message)
        raise ExpectedFailure(message) from None
    except Exception as exc:
        _finish(restore, RestoreStatus.FAILED, actor=actor, job=job, message=f"error: {exc}")
        raise
    check_result, check_ok, message = outcome
    status = RestoreStatus.SUCCEEDED if check_ok is not False else RestoreStatus.FAILED
    _finish(
        restore,
        status,
        actor=actor,
        job=job,
        check_result=check_result,
        check_ok=check_ok,
        message=message,
    )
    if status == RestoreStatus.FAILED:
        raise ExpectedFailure(
            f"The restored server answered the check query with {check_result!r}."
        )
    return restore


def _restore_and_verify(plan: RestorePlan, restore: RestoreRun, *, actor, job, log):
    log(f"restore: {plan.command.display()}")
    if plan.engine == Engine.PGBACKREST:
        run_pgbackrest(plan.node, plan.command, actor=actor, job=job, timeout=6 * 3600)
    else:
        run_pg_rman(plan.node, plan.command, actor=actor, job=job, timeout=6 * 3600)
    log(f"restored from backup {plan.backup.backup_id}; starting PostgreSQL")
    start_server(plan, actor=actor, job=job)
    target = restored_target(plan)
    state = wait_for_recovery(plan, target, RECOVERY_TIMEOUT, actor=actor, job=job)
    log(f"recovery finished: {state}")
    if state == "shut down":
        return (
            "",
            None,
            f"restored from backup {plan.backup.backup_id}; the server shut down "
            f"at the target as asked (no check query)",
        )
    if not plan.in_place and state == "promoted":
        keep_clone_settings(plan, target, actor=actor, job=job)
    query = plan.check_query or DEFAULT_CHECK
    rows = run_sql(target, query, actor=actor, job=job, action=audit.BACKUP_COMMAND).rows
    value = rows[0][0] if rows and rows[0] else None
    result = "" if value is None else str(value)
    log(f"check query: {result!r}")
    return (
        result,
        value not in (None, False),
        (f"restored from backup {plan.backup.backup_id}; recovery {state}"),
    )


def _finish(restore: RestoreRun, status: str, *, actor, job, **fields) -> None:
    now = timezone.now()
    started = restore.started or now
    fields.update(status=status, ended=now, duration=now - started)
    with transaction.atomic():
        RestoreRun.objects.filter(pk=restore.pk).update(**fields)
        audit.append(
            audit.BACKUP_RESTORE,
            actor=actor,
            source=_source(job),
            status=AuditEntry.Status.SUCCEEDED
            if status == RestoreStatus.SUCCEEDED
            else AuditEntry.Status.FAILED,
            target=f"restore_run:{restore.pk}",
            node=restore.target_node.name,
            job_id=job.pk if job is not None else None,
            output=f"restore {status}: {fields.get('message', '')} "
            f"(check: {fields.get('check_result', '-')!s})",
        )
    for name, value in fields.items():
        setattr(restore, name, value)


@job_task("backups.restore")
def restore_task(ctx: JobContext) -> dict:
    """Run the restore queued by start_restore; the RestoreRun holds the outcome."""
    restore = RestoreRun.objects.select_related(
        "catalog", "cluster", "target_node", "backup", "detail"
    ).get(pk=ctx.job.params["restore"])
    restore = run_restore(restore, actor=ctx.user, job=ctx.job, log=ctx.log)
    return {"restore": restore.pk, "status": restore.status, "check_result": restore.check_result}


__all__ = [
    "PgBackRestFailed",
    "PgRmanFailed",
    "RestoreRefused",
    "start_restore",
    "run_restore",
    "plan_of",
]
