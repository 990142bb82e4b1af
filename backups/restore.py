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
- Follow-ups: `remove_recovery_settings` (the engine's recovery settings, as pg_rman's
  documentation asks after a restore), `queue_full_backup` (backups.actions.start_backup).
  Standbys are rebuilt from the primary by the HA pages; the restore page links there.
"""

import time
from dataclasses import replace

from django.db import IntegrityError, transaction
from django.utils import timezone
from psycopg import sql

from backups.actions import (
    PgBackRestFailed,
    PgRmanFailed,
    run_pg_rman,
    run_pgbackrest,
    start_backup,
)
from backups.drivers import pg_rman
from backups.models import (
    BackupRun,
    Engine,
    RestoreDetail,
    RestoreRun,
    RestoreStatus,
)
from backups.restore_checks import OS_USER, PG_BIN, CheckReport, run_prechecks
from backups.restore_plan import PlanError, RestorePlan, make_plan, parse_target, restore_command
from clusters.models import Node
from console import audit, jobs
from console.errors import ExpectedFailure
from console.executor import ExecutorError, PgTarget, run_command, run_sql
from console.jobs import JobContext, job_task
from console.models import AuditEntry, Job

RECOVERY_TIMEOUT = 1800.0  # seconds a restored server may take to reach its target
START_TIMEOUT = 300  # pg_ctl start -t
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


def restored_target(plan: RestorePlan) -> PgTarget:
    """How the console reaches the restored server: the node's address and the plan's port,
    with the cluster primary's credential (the restored server has the cluster's roles)."""
    primary = plan.cluster.nodes.filter(role=Node.Role.PRIMARY).exclude(db_credential=None).first()
    base = (primary or plan.node).pg_target()
    name = plan.node.name if plan.in_place else f"{plan.node.name}:{plan.port}"
    return replace(base, name=name, host=plan.node.address, port=plan.port)


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
    _start(plan, actor=actor, job=job)
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
        _keep_clone_settings(plan, target, actor=actor, job=job)
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


def _start_options(plan: RestorePlan) -> str:
    """pg_ctl -o for a server on another host: its own port, address and socket directory,
    no archiving into the cluster's repository, no synchronous standby to wait for."""
    return (
        f"-c port={plan.port} -c listen_addresses='{plan.node.address}' "
        f"-c unix_socket_directories='{plan.data_directory}' -c archive_mode=off "
        f"-c synchronous_standby_names=''"
    )


def _start(plan: RestorePlan, *, actor, job) -> None:
    argv = [
        f"{PG_BIN}/pg_ctl",
        "-D",
        plan.data_directory,
        "-l",
        f"{plan.data_directory}/restore.log",
    ]
    if not plan.in_place:
        argv += ["-o", _start_options(plan)]
    # A server told to shut down at the target may be gone before pg_ctl sees it ready.
    waits = plan.target.action != "shutdown" or plan.target.kind in ("latest", "timeline")
    started = run_command(
        plan.node,
        argv + ["-w", "-t", str(START_TIMEOUT), "start"],
        actor=actor,
        job=job,
        action=audit.BACKUP_COMMAND,
        sudo_user=OS_USER,
        timeout=START_TIMEOUT + 30,
        check=False,
    )
    if waits and started.exit_code != 0:
        raise ExpectedFailure(
            f"PostgreSQL did not start on {plan.node.name}: "
            f"{_why_it_stopped(plan, actor=actor, job=job)} (its log: "
            f"{plan.data_directory}/restore.log)."
        )


def _server_stopped(plan: RestorePlan, *, actor, job) -> bool:
    status = run_command(
        plan.node,
        [f"{PG_BIN}/pg_ctl", "status", "-D", plan.data_directory],
        actor=actor,
        job=job,
        action=audit.BACKUP_COMMAND,
        sudo_user=OS_USER,
        check=False,
        job_log=False,
    )
    return status.exit_code == 3


def _why_it_stopped(plan: RestorePlan, *, actor, job) -> str:
    """PostgreSQL's own FATAL/PANIC lines from the start log (pg_ctl -l)."""
    tail = run_command(
        plan.node,
        ["tail", "-n", "20", "--", f"{plan.data_directory}/restore.log"],
        actor=actor,
        job=job,
        action=audit.BACKUP_COMMAND,
        sudo_user=OS_USER,
        check=False,
    )
    fatal = [
        line.split(":  ", 1)[-1]
        for line in tail.stdout.splitlines()
        if "FATAL:" in line or "PANIC:" in line
    ]
    return "; ".join(fatal) or "see restore.log"


def wait_for_recovery(plan: RestorePlan, target: PgTarget, timeout: float, *, actor, job) -> str:
    """Poll the restored server (with a deadline) until recovery reached the target and the
    server did what was asked: `promoted` (out of recovery), `paused`, or `shut down`. A
    server that stops on its own while asked to promote or pause failed its recovery (for
    example, the archived WAL ends before the target time): its FATAL line is the message."""
    deadline = time.monotonic() + timeout
    wanted = plan.target.action if plan.target.kind in ("time", "xid") else "promote"
    while True:
        if wanted == "shutdown":
            if _server_stopped(plan, actor=actor, job=job):
                return "shut down"
        else:
            try:
                in_recovery, pause = run_sql(
                    target,
                    "backups:restore-state",
                    actor=actor,
                    job=job,
                    action=audit.BACKUP_COMMAND,
                    job_log=False,
                ).rows[0]
            except ExecutorError:
                if _server_stopped(plan, actor=actor, job=job):
                    raise ExpectedFailure(
                        f"PostgreSQL stopped during recovery on {plan.node.name}: "
                        f"{_why_it_stopped(plan, actor=actor, job=job)} (its log: "
                        f"{plan.data_directory}/restore.log)."
                    ) from None
                in_recovery, pause = True, ""  # still starting up: try again until the deadline
            if wanted == "promote" and in_recovery is False:
                return "promoted"
            if wanted == "pause" and pause == "paused":
                return "paused"
        if time.monotonic() > deadline:
            raise ExpectedFailure(
                f"Recovery did not reach its target within {timeout:.0f} s; "
                f"see {plan.data_directory}/restore.log on {plan.node.name}."
            )
        time.sleep(0.5)  # polling interval; the deadline decides


def _keep_clone_settings(plan: RestorePlan, target: PgTarget, *, actor, job) -> None:
    """A clone keeps its own port, address and socket, archives nothing into the cluster's
    repository and waits for no standby after a restart too (ALTER SYSTEM on the clone)."""
    values = {
        "port": str(plan.port),
        "listen_addresses": plan.node.address,
        "unix_socket_directories": plan.data_directory,
        "archive_mode": "off",
        "synchronous_standby_names": "",
    }
    for name, value in values.items():
        statement = sql.SQL("ALTER SYSTEM SET {} = {}").format(
            sql.Identifier(name), sql.Literal(value)
        )
        run_sql(target, statement, actor=actor, job=job, action=audit.BACKUP_COMMAND)


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


# --- follow-ups ---------------------------------------------------------------------------


def recovery_cleanup_commands(restore: RestoreRun) -> list[list[str]]:
    """pg_rman: remove the include line it appended to postgresql.conf, then the
    pg_rman_recovery.conf it included (in that order: an include of a missing file stops the
    server). recovery.signal is removed by PostgreSQL itself when recovery ends."""
    data = restore.target_data_directory
    pg_rman.check_path("target_data_directory", data)
    return [
        ["sed", "-i", "-e", r"/^include = 'pg_rman_recovery\.conf'/d", f"{data}/postgresql.conf"],
        ["rm", "-f", "--", f"{data}/pg_rman_recovery.conf"],
    ]


# What pgBackRest writes into postgresql.auto.conf for a restore (PostgreSQL 12 and later).
PGBACKREST_RECOVERY_SETTINGS = (
    "restore_command",
    "recovery_target_time",
    "recovery_target_xid",
    "recovery_target_timeline",
    "recovery_target_action",
    "recovery_target_inclusive",
)


def remove_recovery_settings(restore: RestoreRun, *, actor, job=None) -> RestoreRun:
    """Remove the recovery settings the engine left once recovery is over (pg_rman: its
    include and pg_rman_recovery.conf; pgBackRest: ALTER SYSTEM RESET of what it wrote into
    postgresql.auto.conf), so a later restart does not carry them. Refused while the restore
    has not succeeded. Idempotent; audited (each remote step by the executor, the change with
    audit.BACKUP_RESTORE)."""
    if restore.status != RestoreStatus.SUCCEEDED:
        raise RestoreRefused("Only after a successful restore: recovery must be over.")
    detail = restore.detail
    if detail.recovery_settings_removed is not None:
        return restore
    node = restore.target_node
    if restore.catalog.engine == Engine.PG_RMAN:
        for argv in recovery_cleanup_commands(restore):
            run_command(
                node, argv, actor=actor, job=job, action=audit.BACKUP_COMMAND, sudo_user=OS_USER
            )
    else:
        target = restored_target(plan_of(restore))
        for name in PGBACKREST_RECOVERY_SETTINGS:
            statement = sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name))
            run_sql(target, statement, actor=actor, job=job, action=audit.BACKUP_COMMAND)
    with transaction.atomic():
        RestoreDetail.objects.filter(pk=detail.pk).update(recovery_settings_removed=timezone.now())
        audit.append(
            audit.BACKUP_RESTORE,
            actor=actor,
            source=_source(job),
            node=node.name,
            target=f"restore_run:{restore.pk}",
            job_id=job.pk if job else None,
            output="recovery settings removed after the restore",
        )
    restore.detail.refresh_from_db()
    return restore


def queue_cleanup(restore: RestoreRun, *, actor) -> "jobs.Job":
    """Queue remove_recovery_settings as the job backups.restore_cleanup."""
    if restore.status != RestoreStatus.SUCCEEDED:
        raise RestoreRefused("Only after a successful restore: recovery must be over.")
    return jobs.enqueue(
        "backups.restore_cleanup",
        f"Remove recovery settings after restore #{restore.pk}",
        user=actor,
        params={"restore": restore.pk},
        target=restore,
    )


@job_task("backups.restore_cleanup")
def restore_cleanup_task(ctx: JobContext) -> dict:
    restore = RestoreRun.objects.select_related("catalog", "cluster", "target_node", "detail").get(
        pk=ctx.job.params["restore"]
    )
    remove_recovery_settings(restore, actor=ctx.user, job=ctx.job)
    return {"restore": restore.pk}


def queue_full_backup(restore: RestoreRun, *, actor) -> BackupRun:
    """The follow-up pg_rman's documentation asks for: a new full backup of the cluster
    (after an in-place restore its timeline changed). Queued by backups.actions.start_backup
    (one backup at a time per cluster: refused with its message otherwise)."""
    run = start_backup(restore.catalog, "full", actor=actor)
    RestoreDetail.objects.filter(restore=restore).update(full_backup=run)
    return run


__all__ = [
    "PgBackRestFailed",
    "PgRmanFailed",
    "RestoreRefused",
    "start_restore",
    "run_restore",
    "remove_recovery_settings",
    "queue_full_backup",
    "queue_cleanup",
    "plan_of",
]
