"""Celery entry points of the backups app: each takes a job id and calls one action."""

from backups import actions
from backups.models import BackupRun
from console.jobs import JobContext, job_task


@job_task("backups.run_backup")
def run_backup(ctx: JobContext) -> dict:
    """Take the backup queued by actions.start_backup; the run record holds the outcome."""
    run = BackupRun.objects.select_related("catalog", "policy").get(pk=ctx.job.params["run"])
    run = actions.run_backup(run, actor=ctx.user, job=ctx.job, log=ctx.log)
    return {"run": run.pk, "backup_id": run.backup_id, "status": run.status}
