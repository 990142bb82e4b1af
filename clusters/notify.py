"""Alert mails through Django's email settings (django.core.mail, EMAIL_* in console/settings).

An alert owes a mail when its `notify_due` is "firing" or "cleared" (set by the raising or
clearing action, never during a maintenance window). `send_due` claims each owed mail with a
conditional UPDATE (so two evaluations never send it twice), sends it over one connection,
then records the outcome on the alert (`notified`, or `notify_error`) with an `alert.notified`
audit entry. A mail that cannot be sent is logged and recorded, and not tried again: mail is
sent at most once, and the alert pages show what failed. Nothing here raises.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.core import mail
from django.db import transaction
from django.utils import timezone

from clusters.actions.alerts import recipients
from clusters.models import Alert
from console import audit
from console.models import AuditEntry

logger = logging.getLogger(__name__)


def message_for(alert: Alert, kind: str) -> tuple[str, str]:
    """The subject and plain-text body of the mail for `alert` firing or cleared."""
    where = f" on {alert.node.name}" if alert.node else ""
    state = "FIRING" if kind == Alert.Notify.FIRING else "CLEARED"
    subject = f"[{alert.cluster.name}] {state} {alert.severity}: {alert.rule.title}{where}"
    lines = [
        alert.message,
        "",
        f"Cluster:    {alert.cluster.name}",
        f"Node:       {alert.node.name if alert.node else '(the cluster)'}",
        f"Rule:       {alert.rule.title} ({alert.rule.key})",
        f"Severity:   {alert.severity}",
    ]
    if alert.value is not None:
        lines.append(f"Value:      {alert.value:g} {alert.rule.unit}".rstrip())
    lines.append(f"First seen: {alert.first_seen:%Y-%m-%d %H:%M:%S %Z}")
    if alert.raised:
        lines.append(f"Raised:     {alert.raised:%Y-%m-%d %H:%M:%S %Z}")
    if alert.cleared:
        lines.append(f"Cleared:    {alert.cleared:%Y-%m-%d %H:%M:%S %Z}")
    lines += ["", "Sent by the database console (Alerts). A maintenance window mutes a cluster."]
    return subject, "\n".join(lines) + "\n"


def send_due(*, now: datetime | None = None, job=None) -> dict:
    """Send every mail owed; return {"mailed": n, "mail_failed": n}."""
    counts = {"mailed": 0, "mail_failed": 0}
    due = list(Alert.objects.exclude(notify_due="").select_related("rule", "cluster", "node"))
    if not due:
        return counts
    connection = mail.get_connection(fail_silently=False)
    try:
        connection.open()
        opened, broken = True, ""
    except Exception as e:  # the server does not answer: every mail of this round fails alike
        opened, broken = False, _reason(e)
    try:
        for alert in due:
            kind = alert.notify_due
            claimed = Alert.objects.filter(pk=alert.pk, notify_due=kind).update(notify_due="")
            if not claimed:
                continue  # another evaluation sends it
            error = broken or _send(connection, alert, kind)
            _record(alert, kind, error, now or timezone.now(), job)
            counts["mail_failed" if error else "mailed"] += 1
    finally:
        if opened:
            try:
                connection.close()
            except Exception:  # closing a broken connection must not hide what was recorded
                logger.warning("alert mail: closing the connection failed", exc_info=True)
    return counts


def _reason(e: Exception) -> str:
    return f"{type(e).__name__}: {e}"[:500]


def _send(connection, alert: Alert, kind: str) -> str:
    """Send one mail; return "" or why it failed."""
    subject, body = message_for(alert, kind)
    to = recipients(alert.rule)
    if not to:
        return "no recipients (set ALERT_EMAIL_TO or the rule's addresses)"
    message = mail.EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, to,
                                connection=connection)  # fmt: skip
    try:
        message.send()
    except Exception as e:  # SMTP refusals, socket errors, timeouts: recorded, never raised
        return _reason(e)
    return ""


def _record(alert: Alert, kind: str, error: str, now: datetime, job) -> None:
    to = ", ".join(recipients(alert.rule))
    if error:
        logger.warning("alert mail for alert %s (%s) failed: %s", alert.pk, kind, error)
    with transaction.atomic():
        if error:
            Alert.objects.filter(pk=alert.pk).update(notify_error=error)
        else:
            Alert.objects.filter(pk=alert.pk).update(notified=now, notify_error="")
        audit.append(
            audit.ALERT_NOTIFIED, source=AuditEntry.Source.SCHEDULE,
            status=AuditEntry.Status.FAILED if error else AuditEntry.Status.SUCCEEDED,
            target=f"cluster:{alert.cluster.name}", node=alert.node.name if alert.node else "",
            output=f"{kind} mail for alert #{alert.pk} ({alert.rule.key}) to {to}",
            error=error, job_id=job.pk if job else None,
        )  # fmt: skip
