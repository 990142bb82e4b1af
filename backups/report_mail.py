"""The weekly backup report by mail: the PDF of the whole fleet's report attached, a short
per-environment summary in the body, to BACKUP_REPORT_RECIPIENTS, through Django's email
settings (the ones alert mails use). Celery beat runs `backups.mail_report_scheduled` on
BACKUP_REPORT_SCHEDULE (cron, Mondays 07:00 by default), which queues one job
`backups.mail_report`; the job calls `mail_report`. Every sending, delivered or refused by
the mail server, leaves a `backup.report_mailed` audit entry."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from backups import report, report_export
from console import audit, jobs
from console.errors import ExpectedFailure
from console.jobs import JobContext
from console.models import AuditEntry, Job

KIND = "backups.mail_report"


class ReportMailFailed(ExpectedFailure):
    """The mail server refused or could not be reached; the audit entry says why."""


def body_text(built: report.Report) -> str:
    lines = [
        f"Backup report of {len(built.clusters)} clusters, the last {built.period}.",
        "",
    ]
    for s in built.summaries:
        rate = s.rates[7]
        lines.append(
            f"{s.name}: {s.clusters} clusters, {s.with_usable} with a usable backup "
            f"({s.without_usable} without), {s.fresh} backed up in the last day; success "
            f"over 7 days {report.percent(rate)} ({rate.ok} of {rate.finished}); retention "
            f"not met on {s.retention_not_met}; test restored in 30 days: {s.tested}."
        )
    lines += ["", "The full report is attached (PDF)."]
    return "\n".join(line for line in lines)


def mail_report(recipients: list[str], *, actor=None, job: Job | None = None,
                source: str = AuditEntry.Source.SCHEDULE) -> report.Report:  # fmt: skip
    """Build the fleet's report and mail its PDF to `recipients`. Audited (backup.report_mailed,
    succeeded or failed with the mail server's error); a failure raises ReportMailFailed."""
    built = report.build(None)
    stamp = timezone.localtime(built.generated_at)
    pdf = report_export.as_pdf(built, generated_by="the weekly schedule" if actor is None
                                else actor.get_username())  # fmt: skip
    without = sum(1 for row in built.clusters if row.last_usable is None)
    message = EmailMessage(
        subject=f"Backup report {stamp:%Y-%m-%d}: {len(built.clusters)} clusters, "
        f"{without} without a usable backup",
        body=body_text(built),
        to=recipients,
    )
    message.attach(f"backup-report-{stamp:%Y%m%d-%H%M}.pdf", pdf, "application/pdf")
    error = ""
    try:
        message.send()
    except Exception as exc:  # smtplib's and socket's errors alike: the server said no
        error = f"{type(exc).__name__}: {exc}"
    audit.append(
        audit.BACKUP_REPORT_MAILED, actor=actor, source=source,
        status=AuditEntry.Status.FAILED if error else AuditEntry.Status.SUCCEEDED,
        target="backup-report", output=f"report of {len(built.clusters)} clusters "
        f"({len(pdf)} bytes of PDF) to {', '.join(recipients)}",
        error=error, job_id=job.pk if job else None,
    )  # fmt: skip
    if error:
        raise ReportMailFailed(f"The backup report could not be mailed: {error}")
    return built


@jobs.job_task(KIND)
def mail_report_job(ctx: JobContext) -> dict:
    """Mail the report to the recipients the job was queued with."""
    recipients = ctx.job.params["recipients"]
    built = mail_report(recipients, actor=ctx.user, job=ctx.job, source=ctx.job.source)
    ctx.log(f"report of {len(built.clusters)} clusters mailed to {', '.join(recipients)}")
    return {"clusters": len(built.clusters), "recipients": recipients}


@shared_task(name="backups.mail_report_scheduled", ignore_result=True)
def mail_report_scheduled() -> Job | None:
    """Celery beat (BACKUP_REPORT_SCHEDULE): queue the mail job unless nobody is to receive
    it or one is still pending or running."""
    recipients = list(settings.BACKUP_REPORT_RECIPIENTS)
    if not recipients:
        return None
    active = (Job.Status.PENDING, Job.Status.RUNNING)
    if Job.objects.filter(kind=KIND, status__in=active).exists():
        return None
    return jobs.enqueue(KIND, "Weekly backup report by mail", user=None,
                        source=AuditEntry.Source.SCHEDULE,
                        params={"recipients": recipients})  # fmt: skip
