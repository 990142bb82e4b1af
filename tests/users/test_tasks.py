"""The users app's Celery entry points, called directly: the import job over every cluster, run
twice (the second changes nothing), a failing server failing the job with its name, and the beat
tasks that never pile up a second job while one is waiting."""

import pytest

from clusters.models import Node
from console import jobs
from console.models import Job
from tests.factories import make_job
from users import tasks
from users.models import AccountImport, DatabaseAccount

pytestmark = pytest.mark.django_db(transaction=True)


def _run(kind: str, body, **fields) -> Job:
    job = make_job(kind=kind, status="pending", **fields)
    jobs.run_job(job.pk, body)
    job.refresh_from_db()
    return job


def test_the_import_job_imports_every_cluster_and_a_second_run_changes_nothing(demo):
    first = _run("users.import_accounts", tasks.import_accounts.body)
    assert first.status == "succeeded", first.error
    assert first.result == {"lab-mariadb": "succeeded", "lab-pg": "succeeded"}
    count = DatabaseAccount.objects.count()
    assert count > 20
    second = _run("users.import_accounts", tasks.import_accounts.body)
    assert second.status == "succeeded" and DatabaseAccount.objects.count() == count
    latest = AccountImport.objects.filter(job=second)
    assert [(r.added, r.changed, r.gone) for r in latest] == [(0, 0, 0)] * 2


def test_the_import_job_fails_naming_the_cluster_it_could_not_read(demo):
    Node.objects.filter(name="my1").update(db_port=1)
    job = _run("users.import_accounts", tasks.import_accounts.body)
    assert job.status == "failed" and "lab-mariadb" in job.error
    assert AccountImport.objects.get(job=job, cluster__name="lab-pg").status == "succeeded"


def test_the_sync_job_applies_and_logs_what_it_did(lab):
    job = _run("users.sync_directory", tasks.sync_directory.body)
    assert job.status == "succeeded" and job.result["created"] == 13
    assert "13 entries read" in job.log_lines.get().message
    again = _run("users.sync_directory", tasks.sync_directory.body)
    assert again.result["created"] == 0 and again.result["updated"] == 0


def test_the_beat_tasks_do_not_pile_up_jobs(db, monkeypatch):
    sent = []
    monkeypatch.setattr(jobs, "enqueue", lambda kind, *a, **k: sent.append(kind))
    make_job(kind="users.sync_directory", status="running")
    make_job(kind="users.import_accounts", status="pending")
    tasks.sync_directory_scheduled()
    tasks.import_accounts_all()
    assert sent == []
    Job.objects.update(status="succeeded")
    tasks.sync_directory_scheduled()
    tasks.import_accounts_all()
    assert sent == ["users.sync_directory", "users.import_accounts"]
