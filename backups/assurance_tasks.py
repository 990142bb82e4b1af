"""Celery entry points of backup assurance (imported by backups/tasks.py).

Jobs (`@job_task`, a job id each): `backups.test_restore` runs one policy's test restore,
`backups.check_archives` checks WAL continuity. Beat tasks (plain tasks, no job of their own):
`backups.scheduled_test_restore` (one PeriodicTask per TestRestorePolicy, args [policy id])
queues the test restore job; `backups.scheduled_archive_checks` (CELERY_BEAT_SCHEDULE) queues
the archive check job of every cluster.
"""

from celery import shared_task

from backups import assurance, assurance_archive
from backups.models import TestRestorePolicy
from console.jobs import JobContext, job_task
from console.models import AuditEntry


@job_task(assurance.TEST_RESTORE_JOB)
def test_restore(ctx: JobContext) -> dict:
    """Run the test restore of the policy in the job's params (gone meanwhile: nothing)."""
    policy = (TestRestorePolicy.objects.select_related("catalog__cluster", "node")
              .filter(pk=ctx.job.params["policy"]).first())  # fmt: skip
    if policy is None:
        ctx.log("the test restore policy was deleted; nothing to do")
        return {"policy": ctx.job.params["policy"], "status": "gone"}
    restore = assurance.run_test_restore(policy, actor=ctx.user, job=ctx.job, log=ctx.log)
    return {"restore": restore.pk, "status": restore.status, "check_result": restore.check_result,
            "seconds": round(restore.duration.total_seconds(), 1)}  # fmt: skip


@job_task(assurance.ARCHIVE_JOB)
def check_archives(ctx: JobContext) -> dict:
    checks = assurance_archive.check_archives(ctx.job.params.get("cluster"), actor=ctx.user,
                                      job=ctx.job, log=ctx.log)  # fmt: skip
    return {"checks": [c.pk for c in checks],
            "gaps": [c.cluster.name for c in checks if c.continuous is False]}  # fmt: skip


@shared_task(name=assurance.SCHEDULE_TASK, ignore_result=True)
def scheduled_test_restore(policy_id: int) -> None:
    assurance.fire_test_restore(policy_id)


@shared_task(name="backups.scheduled_archive_checks", ignore_result=True)
def scheduled_archive_checks() -> None:
    assurance_archive.start_archive_check(None, actor=None, source=AuditEntry.Source.SCHEDULE)
