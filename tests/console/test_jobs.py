"""Jobs: enqueue after commit, the claim, outcomes, the reaper, and a real Celery worker."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from console import audit, audit_chain, jobs
from console.models import AuditEntry, Job, JobLogLine
from tests.console import jobtasks
from tests.console.conftest import REPO


def _job(kind: str = "tests.echo", **params) -> Job:
    return Job.objects.create(kind=kind, title=kind, params=params)


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.mark.django_db
def test_enqueue_sends_the_task_only_after_commit(django_capture_on_commit_callbacks):
    user = User.objects.create_user("dba1")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = jobs.enqueue("tests.echo", "Echo", user=user, params={"text": "hi"})
    assert job.status == Job.Status.PENDING
    assert job.user_name == "dba1"
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_a_redelivered_message_runs_nothing():
    job = _job(text="once")
    assert jobs.run_job(job.pk, jobtasks.echo.body) == Job.Status.SUCCEEDED
    assert jobs.run_job(job.pk, jobtasks.echo.body) == "skipped"
    assert JobLogLine.objects.filter(job=job, message="echo once").count() == 1
    job.refresh_from_db()
    assert job.result == {"text": "once"}
    assert job.progress == 100


@pytest.mark.django_db
def test_an_expected_failure_ends_the_job_failed_with_its_message():
    job = _job("tests.refuse")
    assert jobs.run_job(job.pk, jobtasks.refuse.body) == Job.Status.FAILED
    job.refresh_from_db()
    assert job.error == "the target refused: nothing was changed"
    assert job.finished is not None


@pytest.mark.django_db
def test_a_bug_ends_the_job_errored_with_its_traceback():
    job = _job("tests.crash")
    assert jobs.run_job(job.pk, jobtasks.crash.body) == Job.Status.ERRORED
    job.refresh_from_db()
    assert "Traceback" in job.error and "ZeroDivisionError" in job.error
    assert JobLogLine.objects.filter(job=job, level="error").exists()


@pytest.mark.django_db
def test_reaper_ends_a_job_whose_heartbeat_stopped_and_audits_it():
    stale = timezone.now() - timedelta(hours=1)
    job = Job.objects.create(
        kind="tests.echo",
        title="x",
        status=Job.Status.RUNNING,
        started=stale,
        heartbeat=stale,
        worker="w1",
    )
    fresh = Job.objects.create(
        kind="tests.echo",
        title="y",
        status=Job.Status.RUNNING,
        started=timezone.now(),
        heartbeat=timezone.now(),
    )
    assert jobs.reap_stale_jobs() == 1
    assert jobs.reap_stale_jobs() == 0
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.status == Job.Status.ERRORED and "w1" in job.error
    assert fresh.status == Job.Status.RUNNING
    assert AuditEntry.objects.filter(action=audit.JOB_REAPED, job_id=job.pk).count() == 1


@pytest.mark.django_db
def test_reaper_closes_the_open_audit_intents_of_a_dead_job():
    stale = timezone.now() - timedelta(hours=1)
    job = Job.objects.create(
        kind="tests.echo", title="x", status=Job.Status.RUNNING, started=stale, heartbeat=stale
    )
    intent = audit.append(
        audit.REMOTE_COMMAND,
        source="job",
        status="started",
        node="db1",
        command="pg_ctl promote",
        job_id=job.pk,
    )
    done = audit.append(
        audit.REMOTE_COMMAND,
        source="job",
        status="started",
        node="db1",
        command="true",
        job_id=job.pk,
    )
    audit.append(
        audit.REMOTE_COMMAND,
        source="job",
        status="succeeded",
        node="db1",
        command="true",
        job_id=job.pk,
        intent_id=done.pk,
    )
    jobs.reap_stale_jobs()
    outcomes = AuditEntry.objects.filter(status=AuditEntry.Status.ABANDONED)
    assert list(outcomes.values_list("intent_id", flat=True)) == [intent.pk]
    assert audit_chain.verify().intact


@pytest.fixture
def worker(console_env, tmp_path):
    """Starts real Celery workers on the lab's Redis; stops them at the end of the test."""
    if not console_env.get("CELERY_BROKER_URL", "").startswith("redis://"):
        pytest.fail("CELERY_BROKER_URL must point to the lab's Redis (run under `make test`)")
    env = dict(console_env, JOB_HEARTBEAT_SECONDS="1")
    procs = []

    def start():
        n = len(procs)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "console",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--include=tests.console.jobtasks",
                f"--hostname=test-{n}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
            env=env,
            cwd=REPO,
            stdout=(tmp_path / f"worker{n}.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


def test_a_job_runs_in_a_real_worker_and_is_claimed_once(worker):
    worker()
    job = jobs.enqueue("tests.echo", "Echo", user=None, params={"text": "from a worker"})
    _wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, 60, "the worker to run the job")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.worker.startswith("test-0@")
    assert job.result == {"text": "from a worker"}


def test_verify_audit_job_checks_the_chain_in_a_worker(worker):
    worker()
    for i in range(30):
        audit.append("test.event", source="cli", target=str(i))
    job = jobs.enqueue("console.verify_audit", "Verify", user=None)
    _wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, 60, "the verify job")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["checked"] >= 30
    assert AuditEntry.objects.filter(action=audit.AUDIT_VERIFY, job_id=job.pk).exists()


def test_a_job_whose_worker_was_killed_is_reaped(worker, tmp_path, settings):
    settings.JOB_STALE_SECONDS = 3
    proc = worker()
    job = jobs.enqueue(
        "tests.wait_for_file", "Wait", user=None, params={"path": str(tmp_path / "never")}
    )
    _wait_for(
        lambda: Job.objects.get(pk=job.pk).status == Job.Status.RUNNING,
        60,
        "the worker to claim the job",
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=20)
    reaped = _wait_for(jobs.reap_stale_jobs, 30, "the heartbeat to go stale")
    assert reaped == 1
    job.refresh_from_db()
    assert job.status == Job.Status.ERRORED
    assert "stopped answering" in job.error
