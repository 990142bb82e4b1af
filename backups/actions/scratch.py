"""A test restore of a pgBackRest repository into a scratch instance (`restore_to_scratch`)."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from backups.actions.catalogs import repository, run_pgbackrest
from backups.drivers import pgbackrest
from backups.models import (
    BackupCatalog,
    BackupRun,
    RecoveryTargetKind,
    RestoreRun,
    RestoreStatus,
)
from backups.restore_checks import PG_BIN
from backups.restore_plan import RecoveryTarget, RestorePlan
from backups.restore_server import (
    SCRATCH_START_TIMEOUT,
    check_listen_address,
    restored_target,
    start_server,
    wait_for_recovery,
)
from clusters.models import Node
from console import audit
from console.errors import ExpectedFailure
from console.executor import run_command, run_sql
from console.models import AuditEntry

# --- restore into a scratch instance (pgBackRest) --------------------------------------------

_RECOVERY_TIMEOUT = 600.0


def restore_to_scratch(
    catalog: BackupCatalog,
    node: Node,
    *,
    data_directory: str,
    port: int,
    target_kind: str = RecoveryTargetKind.LATEST,
    target_value: str = "",
    check_query: str = "",
    actor,
    job=None,
    recovery_timeout: float = _RECOVERY_TIMEOUT,
) -> RestoreRun:
    """Restore the repository into a new `data_directory` on `node` (a scratch instance, never
    a live server's directory), start it on `port` with archiving off and no synchronous
    standby, wait (with a deadline) until recovery reached the target and promoted, run
    `check_query`, then stop it and remove the directory. Recorded as a RestoreRun (test
    restore) with the backup set used, the result of the check and the measured duration (an
    RTO figure). Refused before anything is touched when the directory already exists or the
    target is invalid. Audited: audit.BACKUP_RESTORE with the run, every remote step by the
    executor. Raises the failure after recording it."""
    restore = RestoreRun(cluster_id=catalog.cluster_id, catalog=catalog, target_node=node,
                         target_data_directory=data_directory, target_kind=target_kind,
                         target_value=target_value, target_action="promote", test_restore=True,
                         check_query=check_query, user=actor if actor else None)  # fmt: skip
    restore.full_clean(exclude=["user", "job", "backup"])
    command = pgbackrest.restore(repository(catalog), data_directory,
                                 pgbackrest.RestoreTarget(target_kind, target_value))  # fmt: skip
    exists = run_command(
        node, ["test", "-e", data_directory], actor=actor, job=job,
        action=audit.BACKUP_COMMAND, sudo_user="postgres", check=False, ok_exits=(0, 1),
    )  # fmt: skip
    if exists.exit_code == 0:
        raise ExpectedFailure(f"{data_directory} already exists on {node.name}: a test restore "
                              f"goes into a new directory.")  # fmt: skip
    check_listen_address(node)
    try:
        with transaction.atomic():
            restore.status, restore.started, restore.job = (RestoreStatus.RUNNING,
                                                            timezone.now(), job)  # fmt: skip
            restore.save()
            audit.append(audit.BACKUP_RESTORE, actor=actor, source=_source(job), node=node.name,
                         target=f"restore_run:{restore.pk}", job_id=job.pk if job else None,
                         output=f"test restore of {catalog} to {restore.target_kind} "
                                f"{restore.target_value} into {data_directory}")  # fmt: skip
    except IntegrityError:
        raise ExpectedFailure(f"A restore onto {node.name} is already running.") from None
    started = False
    try:
        result = run_pgbackrest(node, command, actor=actor, job=job, timeout=6 * 3600)
        label = _restored_set(result.stdout)
        backup = BackupRun.objects.filter(catalog=catalog, backup_id=label).first()
        plan = RestorePlan(
            cluster=catalog.cluster, catalog=catalog, node=node, data_directory=data_directory,
            port=port, in_place=False, target=RecoveryTarget(target_kind, target_value),
            backup=backup, wal_first="", wal_until="", command=command, check_query=check_query,
        )  # fmt: skip
        start_server(plan, actor=actor, job=job, timeout=SCRATCH_START_TIMEOUT, log_kept=False)
        started = True
        scratch = restored_target(plan)
        wait_for_recovery(plan, scratch, recovery_timeout, actor=actor, job=job, log_kept=False)
        check_result, check_ok = _check(scratch, check_query, actor=actor, job=job)
    except ExpectedFailure as exc:
        _end_restore(restore, RestoreStatus.FAILED, message=str(exc))
        raise
    finally:
        _remove_scratch(node, data_directory, started, actor=actor, job=job)
    status = RestoreStatus.SUCCEEDED if check_ok is not False else RestoreStatus.FAILED
    _end_restore(restore, status, backup=backup, check_result=check_result, check_ok=check_ok,
                 message=f"restored from backup set {label}")  # fmt: skip
    return restore


def _source(job) -> str:
    return AuditEntry.Source.JOB if job is not None else AuditEntry.Source.UI


def _restored_set(stdout: str) -> str:
    for message in pgbackrest.parse_messages(stdout):
        if "restore backup set " in message.text:
            return message.text.split("restore backup set ", 1)[1].split(",", 1)[0]
    return ""


def _check(target, query: str, *, actor, job) -> tuple[str, bool | None]:
    """The check query's first column of its first row as text; ok unless it is false, NULL
    or there is no row. No query: nothing checked (None)."""
    if not query:
        return "", None
    rows = run_sql(target, query, actor=actor, job=job, action=audit.BACKUP_COMMAND).rows
    value = rows[0][0] if rows else None
    return ("" if value is None else str(value)), value not in (None, False)


def _remove_scratch(node: Node, data_directory: str, started: bool, *, actor, job) -> None:
    if started:
        run_command(node, [f"{PG_BIN}/pg_ctl", "-D", data_directory, "-m", "fast", "-w", "stop"],
                    actor=actor, job=job, action=audit.BACKUP_COMMAND, sudo_user="postgres",
                    check=False)  # fmt: skip
    run_command(
        node, ["rm", "-rf", "--one-file-system", "--", data_directory], actor=actor, job=job,
        action=audit.BACKUP_COMMAND, sudo_user="postgres", check=False,
    )  # fmt: skip


def _end_restore(restore: RestoreRun, status: str, **fields) -> None:
    now = timezone.now()
    fields.update(status=status, ended=now, duration=now - restore.started)
    for name, value in fields.items():
        setattr(restore, name, value)
    restore.save(update_fields=list(fields))
