"""The one wrapper every background job runs through.

A view or action calls `enqueue()`, which creates a pending Job and sends its id to Celery after
the transaction commits. The Celery task, declared with `@job_task("app.name")`, claims the row
with a conditional UPDATE (a redelivered message finds it claimed and does nothing), keeps a
heartbeat while it runs, and ends it as succeeded, failed (an ExpectedFailure, message shown) or
errored (anything else, traceback kept). `reap_stale_jobs` ends jobs whose worker died.
"""

import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from datetime import timedelta

from celery import current_app, shared_task
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from console import audit
from console.errors import ExpectedFailure
from console.executor.redact import redact
from console.models import AuditEntry, Job, JobLogLine

logger = logging.getLogger(__name__)


class JobFailed(ExpectedFailure):
    """Raised by a job body to end it as failed with a message for the operator."""


class JobContext:
    """What a job body gets: the job row, a logger into its live log, and progress."""

    def __init__(self, job: Job):
        self.job = job

    @property
    def user(self):
        return self.job.user

    def log(self, message: str, level: str = JobLogLine.Level.INFO) -> None:
        JobLogLine.objects.create(job_id=self.job.pk, level=level, message=redact(message))

    def progress(self, percent: int) -> None:
        percent = max(0, min(100, int(percent)))
        Job.objects.filter(pk=self.job.pk).update(progress=percent, heartbeat=timezone.now())
        self.job.progress = percent


def enqueue(
    kind: str,
    title: str,
    *,
    user,
    source: str = AuditEntry.Source.UI,
    params: dict | None = None,
    target=None,
) -> Job:
    """Create a pending job and send it to its Celery task once the transaction commits.

    `params` is small JSON without secrets; the task reads everything else from the database.
    """
    if kind not in current_app.tasks:
        current_app.loader.import_default_modules()  # runs the apps' tasks.py autodiscovery
    task = current_app.tasks[kind]  # NotRegistered for an unknown kind: a bug, not user input
    task_id = str(uuid.uuid4())
    job = Job.objects.create(
        kind=kind,
        title=title,
        user=user if getattr(user, "is_authenticated", False) else None,
        user_name=user.get_username() if getattr(user, "is_authenticated", False) else "",
        source=source,
        params=params or {},
        celery_task_id=task_id,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_name=str(target)[:255] if target is not None else "",
    )
    transaction.on_commit(lambda: task.apply_async(args=[job.pk], task_id=task_id))
    return job


def rerun(job: Job, *, user, source: str = AuditEntry.Source.UI) -> Job:
    """Enqueue a new job with the kind, title, params and target of a failed step job.

    Only for jobs made of steps (`clusters.provision.steps.run_steps`): their steps check what is
    already done, so the new job skips the finished steps and resumes at the failed one. Refused
    (ExpectedFailure) for a job without steps or one that has not ended in failure."""
    if job.status not in (Job.Status.FAILED, Job.Status.ERRORED):
        raise ExpectedFailure(f"job #{job.pk} is {job.status}; only a failed job is re-run")
    if not job.steps.exists():
        raise ExpectedFailure(f"job #{job.pk} has no steps, so a re-run could not resume it")
    params = {**job.params, "rerun_of": job.pk}
    with transaction.atomic():  # the task is sent on commit, after the target is copied
        new = enqueue(job.kind, job.title, user=user, source=source, params=params)
        new.target_type, new.target_id = job.target_type, job.target_id
        new.target_name = job.target_name
        new.save(update_fields=["target_type", "target_id", "target_name"])
    return new


def job_task(name: str) -> Callable:
    """Declare a job body `func(ctx: JobContext) -> dict | None` as the Celery task `name`."""

    def decorator(func: Callable[[JobContext], dict | None]):
        @shared_task(name=name, bind=True, acks_late=True, ignore_result=True)
        def task(self, job_id: int) -> None:
            run_job(job_id, func, worker=self.request.hostname or "")

        task.body = func
        return task

    return decorator


def _heartbeat(job_id: int, stop: threading.Event) -> None:
    try:
        while not stop.wait(settings.JOB_HEARTBEAT_SECONDS):
            Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
                heartbeat=timezone.now()
            )
    finally:
        connection.close()


def run_job(job_id: int, func: Callable[[JobContext], dict | None], *, worker: str = "") -> str:
    """Claim, run and end one job; returns its final status (or "skipped" when not claimed)."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.PENDING).update(
        status=Job.Status.RUNNING, started=now, heartbeat=now, worker=worker[:200]
    )
    if not claimed:
        logger.info("job %s is not pending; message ignored", job_id)
        return "skipped"
    job = Job.objects.select_related("user").get(pk=job_id)
    ctx = JobContext(job)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(job_id, stop), daemon=True)
    beat.start()
    result: dict | None = None
    error = ""
    try:
        result = func(ctx)
        status = Job.Status.SUCCEEDED
    except ExpectedFailure as e:
        status, error = Job.Status.FAILED, redact(str(e))
        ctx.log(error, JobLogLine.Level.ERROR)
    except Exception as e:
        logger.exception("job %s errored", job_id)
        status, error = Job.Status.ERRORED, redact(traceback.format_exc())
        ctx.log(f"internal error: {type(e).__name__}: {redact(str(e))}", JobLogLine.Level.ERROR)
    finally:
        stop.set()
        beat.join()
    update = {"status": status, "finished": timezone.now(), "error": error, "result": result or {}}
    if status == Job.Status.SUCCEEDED:
        update["progress"] = 100
    # Conditional: the reaper may have ended the job meanwhile; its verdict stands.
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(**update)
    return status


def reap_stale_jobs() -> int:
    """End running jobs whose worker stopped sending heartbeats; audit each. Idempotent."""
    deadline = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS)
    stale = Job.objects.filter(status=Job.Status.RUNNING).filter(
        Q(heartbeat__lt=deadline) | Q(heartbeat__isnull=True, started__lt=deadline)
    )
    reaped = 0
    for job in stale:
        with transaction.atomic():
            message = f"worker {job.worker or '?'} stopped answering; job ended by the reaper"
            ended = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
                status=Job.Status.ERRORED, finished=timezone.now(), error=message
            )
            if not ended:
                continue
            JobLogLine.objects.create(job=job, level=JobLogLine.Level.ERROR, message=message)
            audit.append(
                audit.JOB_REAPED,
                source=AuditEntry.Source.SCHEDULE,
                target=f"job:{job.pk}",
                status=AuditEntry.Status.FAILED,
                error=message,
                job_id=job.pk,
            )
            _abandon_open_intents(job.pk)
        reaped += 1
    return reaped


def _abandon_open_intents(job_id: int) -> None:
    """Close the `started` audit entries of a dead job that never got their outcome."""
    closed = AuditEntry.objects.filter(job_id=job_id, intent_id__isnull=False).values("intent_id")
    for intent in AuditEntry.objects.filter(
        job_id=job_id, status=AuditEntry.Status.STARTED
    ).exclude(id__in=closed):
        audit.append(
            intent.action,
            actor_name=intent.actor_name,
            source=intent.source,
            status=AuditEntry.Status.ABANDONED,
            target=intent.target,
            node=intent.node,
            command=intent.command,
            error="the worker died before the outcome was recorded",
            job_id=job_id,
            intent_id=intent.pk,
        )
