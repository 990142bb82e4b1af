"""The follow-ups of a restore, started by a DBA from the restore's page once it succeeded.

- `remove_recovery_settings` (queued as the job backups.restore_cleanup by `queue_cleanup`):
  the engine's recovery settings, as pg_rman's documentation asks after a restore;
  `recovery_cleanup_commands` are pg_rman's.
- `queue_full_backup`: a new full backup of the cluster (backups.actions.start_backup).

Standbys are rebuilt from the primary by the HA pages; the restore page links there. Apart
from backups/restore.py (queueing and running the restore itself) because they act on a
finished restore, each on its own request.
"""

from django.db import transaction
from django.utils import timezone
from psycopg import sql

from backups.actions import start_backup
from backups.drivers import pg_rman
from backups.models import BackupRun, Engine, RestoreDetail, RestoreRun, RestoreStatus
from backups.restore import RestoreRefused, _source, plan_of
from backups.restore_checks import OS_USER
from backups.restore_server import restored_target
from console import audit, jobs
from console.executor import run_command, run_sql
from console.jobs import JobContext, job_task


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
