"""The weekly backup report by mail, through a real SMTP server (aiosmtpd on loopback, as the
alert mail tests): the beat task queues one job for the configured recipients, the job mails
the PDF (parsed back) with a per-environment summary, audited; a mail server that refuses
fails the job, audited with its error; no recipients, no job."""

import email
import io
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from pypdf import PdfReader

from backups import report_mail
from console import audit, jobs
from console.models import AuditEntry, Job
from tests._smtp import free_port
from tests.backups.test_report import make_catalog, make_cluster, run

pytestmark = pytest.mark.django_db(transaction=True)
RECIPIENTS = ["managers@example.org", "dba-team@example.org"]


def _smtp(port: int) -> dict:
    return {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port,
            "DEFAULT_FROM_EMAIL": "dbconsole@example.org"}  # fmt: skip


@pytest.fixture
def fleet():
    now = timezone.now()
    good = make_catalog(make_cluster("pg-mailed", "production"))
    run(good, now - timedelta(hours=3))
    run(good, now - timedelta(days=2), status="failed")
    make_cluster("pg-nothing", "staging")


def test_the_scheduled_job_mails_the_pdf_to_the_recipients(fleet, smtp_server):
    controller, inbox = smtp_server
    with override_settings(BACKUP_REPORT_RECIPIENTS=RECIPIENTS, **_smtp(controller.port)):
        job = report_mail.mail_report_scheduled()
        assert report_mail.mail_report_scheduled() is None  # one at a time: still pending
        assert (job.kind, job.source, job.params) == (
            "backups.mail_report", "schedule", {"recipients": RECIPIENTS})  # fmt: skip
        assert jobs.run_job(job.pk, report_mail.mail_report_job.body) == "succeeded"
        assert jobs.run_job(job.pk, report_mail.mail_report_job.body) == "skipped"
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "dbconsole@example.org" and envelope.rcpt_tos == RECIPIENTS
    message = email.message_from_bytes(envelope.content)
    assert message["Subject"].startswith("Backup report ")
    assert message["Subject"].endswith(": 2 clusters, 1 without a usable backup")
    body, attachment = [p for p in message.walk() if not p.is_multipart()]
    text = body.get_payload(decode=True).decode()
    assert "production: 1 clusters, 1 with a usable backup (0 without)" in text
    assert "success over 7 days 50 % (1 of 2)" in text
    assert "staging: 1 clusters, 0 with a usable backup (1 without)" in text
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename().startswith("backup-report-")
    reader = PdfReader(io.BytesIO(attachment.get_payload(decode=True)))
    pages = "\n".join(page.extract_text() for page in reader.pages)
    assert "Backup report" in pages and "by the weekly schedule" in pages
    assert "pg-mailed" in pages and "pg-nothing" in pages
    entry = AuditEntry.objects.get(action=audit.BACKUP_REPORT_MAILED)
    assert (entry.status, entry.source, entry.job_id) == ("succeeded", "schedule", job.pk)
    assert entry.output.startswith("report of 2 clusters (") and RECIPIENTS[1] in entry.output
    assert Job.objects.get(pk=job.pk).result == {"clusters": 2, "recipients": RECIPIENTS}


def test_a_mail_server_that_refuses_fails_the_job_and_is_audited(fleet):
    with override_settings(BACKUP_REPORT_RECIPIENTS=RECIPIENTS, **_smtp(free_port())):
        job = report_mail.mail_report_scheduled()
        assert jobs.run_job(job.pk, report_mail.mail_report_job.body) == "failed"
    job.refresh_from_db()
    assert job.error.startswith("The backup report could not be mailed: ConnectionRefusedError")
    entry = AuditEntry.objects.get(action=audit.BACKUP_REPORT_MAILED)
    assert entry.status == "failed" and "Connection refused" in entry.error


def test_without_recipients_nothing_is_queued(fleet):
    with override_settings(BACKUP_REPORT_RECIPIENTS=[]):
        assert report_mail.mail_report_scheduled() is None
    assert not Job.objects.filter(kind=report_mail.KIND).exists()


def test_the_beat_schedule_runs_weekly_by_default():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["backups.mail_report_scheduled"]
    assert entry["task"] == "backups.mail_report_scheduled"
    schedule = entry["schedule"]
    assert (schedule.minute, schedule.hour, schedule.day_of_week) == ({0}, {7}, {1})
    # What beat's DatabaseScheduler does with the entry at start-up: a crontab in the database.
    from celery import current_app
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    ModelEntry.from_entry("backups.mail_report_scheduled", app=current_app, **entry)
    task = PeriodicTask.objects.get(name="backups.mail_report_scheduled")
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year,
            crontab.day_of_week) == ("0", "7", "*", "*", "1")  # fmt: skip
