"""Celery entry points of the console app."""

from celery import shared_task

from console import audit, audit_chain
from console.jobs import JobContext, JobFailed, job_task, reap_stale_jobs
from console.models import AuditEntry


@shared_task(name="console.reap_jobs", ignore_result=True)
def reap_jobs() -> int:
    return reap_stale_jobs()


@job_task("console.verify_audit")
def verify_audit(ctx: JobContext) -> dict:
    """Verify the audit chain as a job, with progress; the verdict is itself audited."""
    total = AuditEntry.objects.count() or 1
    ctx.log(f"verifying the audit chain ({total} entries)")

    def progress(checked: int) -> None:
        ctx.progress(min(99, checked * 100 // total))
        ctx.log(f"{checked} entries checked")

    result = audit_chain.verify(progress=progress)
    status = AuditEntry.Status.SUCCEEDED if result.intact else AuditEntry.Status.FAILED
    audit.append(
        audit.AUDIT_VERIFY,
        actor=ctx.user,
        source=AuditEntry.Source.JOB,
        status=status,
        target="audit-chain",
        output=f"{result.checked} entries checked",
        error=result.reason and f"entry #{result.broken_id}: {result.reason}",
        job_id=ctx.job.pk,
    )
    if not result.intact:
        raise JobFailed(
            f"the chain is broken at entry #{result.broken_id}: {result.reason} "
            f"({result.checked} entries before it are intact)"
        )
    ctx.log(f"chain intact: {result.checked} entries, head {result.head_hash}")
    return {"checked": result.checked, "head_hash": result.head_hash}
