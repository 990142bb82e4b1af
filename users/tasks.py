"""Celery entry points of the users app: thin, they take a job id and call actions."""

from celery import shared_task
from django.urls import reverse

from clusters.models import Cluster
from console import jobs
from console.jobs import JobContext, JobFailed
from console.models import AuditEntry, Job
from users import actions
from users.models import AccountImport, DirectorySync

_ACTIVE = (Job.Status.PENDING, Job.Status.RUNNING)


@jobs.job_task("users.sync_directory")
def sync_directory(ctx: JobContext) -> dict:
    """One directory sync; a held run ends the job failed, with the reason."""
    run = actions.sync_directory(actor=ctx.user, source=ctx.job.source, job=ctx.job)
    summary = {"sync": run.pk, "status": run.status, "seen": run.seen, "created": run.created,
               "updated": run.updated, "left": run.left, "returned": run.returned}  # fmt: skip
    if run.status == DirectorySync.Status.HELD:
        raise JobFailed(f"the directory sync is held: {run.reason}")
    ctx.log(f"{run.seen} entries read; {run.created} created, {run.updated} updated, "
            f"{run.left} left, {run.returned} active again")  # fmt: skip
    return summary


@shared_task(name="users.sync_directory_scheduled", ignore_result=True)
def sync_directory_scheduled() -> None:
    """Celery beat: enqueue a directory sync unless one is still pending or running."""
    if Job.objects.filter(kind="users.sync_directory", status__in=_ACTIVE).exists():
        return
    jobs.enqueue("users.sync_directory", "Sync people from the directory", user=None,
                 source=AuditEntry.Source.SCHEDULE)  # fmt: skip


@jobs.job_task("users.import_accounts")
def import_accounts(ctx: JobContext) -> dict:
    """Import the accounts of the clusters in params["clusters"] (every cluster when absent),
    several at once."""
    wanted = ctx.job.params.get("clusters")
    clusters = Cluster.objects.all() if wanted is None else Cluster.objects.filter(pk__in=wanted)
    clusters = list(clusters)
    finished = []

    def done(record: AccountImport) -> None:
        finished.append(record)
        if record.status == AccountImport.Status.FAILED:
            ctx.log(f"{record.cluster.name}: {record.error}", "error")
        else:
            ctx.log(
                f"{record.cluster.name}: {record.seen} logins from {record.node.name}, "
                f"{record.added} new, {record.changed} changed, {record.gone} gone, "
                f"{record.linked} linked"
            )
        ctx.progress(100 * len(finished) // len(clusters))

    records = actions.import_clusters(
        clusters, actor=ctx.user, job=ctx.job, source=ctx.job.source, done=done
    )
    failed = [r.cluster.name for r in records if r.status == AccountImport.Status.FAILED]
    if failed:
        raise JobFailed(f"could not import the accounts of {', '.join(failed)}")
    return {r.cluster.name: r.status for r in records}


@shared_task(name="users.import_accounts_all", ignore_result=True)
def import_accounts_all() -> None:
    """Celery beat: enqueue an import of every cluster's accounts, not piling them up."""
    if Job.objects.filter(kind="users.import_accounts", status__in=_ACTIVE).exists():
        return
    jobs.enqueue("users.import_accounts", "Import database accounts", user=None,
                 source=AuditEntry.Source.SCHEDULE)  # fmt: skip


@jobs.job_task("users.offboard_person")
def offboard_person(ctx: JobContext) -> dict:
    """One attempt at an offboarding run (params["run"]): every cluster at once. An incomplete
    run ends the job failed with the reason; the beat task below queues it again."""
    from users.actions.offboarding import run_offboarding
    from users.models import OffboardingRun

    run = OffboardingRun.objects.get(pk=ctx.job.params["run"])
    run = run_offboarding(run, job=ctx.job, log=ctx.log)
    summary = {"run": run.pk, "state": run.state, "attempts": run.attempts}
    if run.state == OffboardingRun.State.INCOMPLETE:
        raise JobFailed(f"{run.person.uid} is not offboarded yet (retried at "
                        f"{run.next_retry_at:%H:%M:%S} UTC): {run.reason}")  # fmt: skip
    return summary


@shared_task(name="users.retry_offboardings", ignore_result=True)
def retry_offboardings() -> None:
    """Celery beat: queue again the incomplete offboardings whose retry time has come."""
    from users.actions.offboarding import retry_offboardings as retry

    retry()


# --- Account lifecycle (issue 6 part 3): one job per action, the logic in users.actions.lifecycle


def _account_job(ctx: JobContext, action: str) -> dict:
    from users.actions import lifecycle

    done, result = lifecycle.run_account_action(ctx.job, action)
    if done is not None:
        ctx.log(done.message)
    else:
        ctx.log(f"new password set for {result['login']}; it is shown once to the requester at "
                + reverse("users:account_password", args=[ctx.job.pk]))  # fmt: skip
    return result


@jobs.job_task("users.create_account")
def create_account(ctx: JobContext) -> dict:
    from users.actions import lifecycle

    account, result = lifecycle.run_create(ctx.job)
    ctx.log(
        f"created {account.login}; its password is shown once to the requester at "
        + reverse("users:account_password", args=[ctx.job.pk])
    )
    return result


@jobs.job_task("users.lock_account")
def lock_account(ctx: JobContext) -> dict:
    return _account_job(ctx, "lock_account")


@jobs.job_task("users.unlock_account")
def unlock_account(ctx: JobContext) -> dict:
    return _account_job(ctx, "unlock_account")


@jobs.job_task("users.grant_role")
def grant_role(ctx: JobContext) -> dict:
    return _account_job(ctx, "grant_role")


@jobs.job_task("users.revoke_role")
def revoke_role(ctx: JobContext) -> dict:
    return _account_job(ctx, "revoke_role")


@jobs.job_task("users.grant_privileges")
def grant_privileges(ctx: JobContext) -> dict:
    return _account_job(ctx, "grant_privileges")


@jobs.job_task("users.revoke_privileges")
def revoke_privileges(ctx: JobContext) -> dict:
    return _account_job(ctx, "revoke_privileges")


@jobs.job_task("users.set_password_expiry")
def set_password_expiry(ctx: JobContext) -> dict:
    return _account_job(ctx, "set_password_expiry")


@jobs.job_task("users.rotate_password")
def rotate_password(ctx: JobContext) -> dict:
    return _account_job(ctx, "rotate_password")


@jobs.job_task("users.drop_account")
def drop_account(ctx: JobContext) -> dict:
    return _account_job(ctx, "drop_account")
