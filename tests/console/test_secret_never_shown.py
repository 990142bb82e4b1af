"""After a full flow, no stored secret appears in any page, API answer, log or audit entry."""

import logging
from pathlib import Path

import pytest
from django.test import Client

from console import jobs, secrets
from console.models import AuditEntry, Credential, Job, JobLogLine
from tests.console import jobtasks


def _needles(*values: str) -> set[str]:
    """Each secret, and for multi-line ones (keys) each line long enough to identify it."""
    found = set()
    for value in values:
        found.add(value)
        found.update(line for line in value.splitlines() if len(line) >= 16 and "---" not in line)
    return found


@pytest.mark.django_db(transaction=True)
def test_no_secret_reaches_a_page_an_api_answer_a_log_or_the_audit_log(lab_env, dba, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    ssh_key = Path(lab_env["LAB_SSH_KEY"]).read_text()
    pg_password, my_password = lab_env["LAB_PG_PASSWORD"], lab_env["LAB_MYSQL_PASSWORD"]
    secrets.store_credential("ssh", "ssh-key", ssh_key, actor=dba, username="root")
    secrets.store_credential(
        "pg", "password", pg_password, actor=dba, username=lab_env["LAB_PG_USER"]
    )
    secrets.store_credential(
        "mysql", "password", my_password, actor=dba, username=lab_env["LAB_MYSQL_USER"]
    )

    job = jobs.enqueue(
        "tests.full_flow",
        "Full flow",
        user=dba,
        params={
            "credentials": ["ssh", "pg", "mysql"],
            "ssh_host": lab_env["LAB_SSH_HOST"],
            "ssh_port": int(lab_env["LAB_SSH_PORT"]),
            "known_hosts": Path(lab_env["LAB_SSH_KNOWN_HOSTS"]).read_text(),
            "pg_host": lab_env["LAB_PG_HOST"],
            "pg_port": int(lab_env["LAB_PG_PORT"]),
            "my_host": lab_env["LAB_MYSQL_HOST"],
            "my_port": int(lab_env["LAB_MYSQL_PORT"]),
        },
    )
    assert jobs.run_job(job.pk, jobtasks.full_flow.body) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.result["pg_user"] == lab_env["LAB_PG_USER"]
    assert job.result["ssh_user"] == "root"
    assert AuditEntry.objects.filter(job_id=job.pk, status="failed").count() >= 2

    dba.is_staff = dba.is_superuser = True  # to read the admin's pages too
    dba.save()
    client = Client()
    client.force_login(dba)
    token = client.post("/api/token/", {"username": "nobody", "password": pg_password})
    pages = [
        "/",
        "/audit/",
        "/audit/?action=remote.*",
        "/audit/export.csv",
        "/audit/export.jsonl",
        "/jobs/",
        f"/jobs/{job.pk}/",
        f"/jobs/{job.pk}/live/",
        "/api/jobs/",
        f"/api/jobs/{job.pk}/",
        "/api/audit/",
        "/api/schema/",
        "/admin/console/credential/",
        "/admin/console/auditentry/",
        "/admin/console/joblogline/",
        "/admin/console/job/",
        f"/admin/console/job/{job.pk}/change/",
        *(f"/admin/console/credential/{c.pk}/change/" for c in Credential.objects.all()),
    ]
    texts = {"api token answer": token.content.decode()}
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        texts[url] = body.decode()

    fields = [f.name for f in AuditEntry._meta.fields]
    texts["audit entries"] = "\n".join(
        str(v) for row in AuditEntry.objects.values_list(*fields) for v in row
    )
    texts["job log"] = "\n".join(JobLogLine.objects.values_list("message", flat=True))
    texts["job row"] = " ".join(
        str(v) for v in Job.objects.values_list("params", "result", "error")
    )
    texts["log records"] = "\n".join(r.getMessage() for r in caplog.records)
    out, err = capfd.readouterr()
    texts["stdout and stderr"] = out + err
    texts["stored tokens"] = " ".join(
        bytes(t).decode() for t in Credential.objects.values_list("secret_token", flat=True)
    )

    assert len(texts["audit entries"]) > 1000 and f"/jobs/{job.pk}/" in texts
    for needle in _needles(ssh_key, pg_password, my_password):
        for where, text in texts.items():
            if needle in text:  # not an assert: pytest would print the secret
                pytest.fail(f"a secret appears in {where}")
