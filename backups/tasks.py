"""Celery entry points of the backups app: each takes a job id (or, for beat, a policy id) and
calls one action."""

from celery import shared_task

from backups import actions, schedule
from backups.models import BackupRun
from console.jobs import JobContext, job_task


@job_task("backups.run_backup")
def run_backup(ctx: JobContext) -> dict:
    """Take the backup queued by actions.start_backup; the run record holds the outcome."""
    run = BackupRun.objects.select_related("catalog", "policy").get(pk=ctx.job.params["run"])
    run = actions.run_backup(run, actor=ctx.user, job=ctx.job, log=ctx.log, progress=ctx.progress)
    return {"run": run.pk, "backup_id": run.backup_id, "status": run.status}


@shared_task(name=schedule.TASK, ignore_result=True)
def scheduled_backup(policy_id: int) -> None:
    """Celery beat, one PeriodicTask per policy: queue the policy's backup (a refusal is
    audited, not raised)."""
    schedule.fire_policy(policy_id)


@shared_task(name="backups.detect_missed", ignore_result=True)
def detect_missed() -> None:
    """Celery beat, every minute: record the policies' cron times that passed without a run."""
    schedule.detect_missed()


# Jobs living in their area's module: the restore wizard's (backups.restore,
# backups.restore_cleanup), backup assurance's (test restores, WAL archive checks) and the
# weekly report mail's (backups.mail_report_scheduled, backups.mail_report).
from backups import assurance_tasks, report_mail, restore, restore_followups  # noqa: E402, F401
