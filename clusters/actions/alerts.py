"""Actions on alerts, alert rules and maintenance windows. Each writes its audit entry in the
transaction of its change and returns early when there is nothing to do, so a retry is safe.

Raising and clearing run from the evaluation after each collection cycle (clusters.alerts,
source "schedule"); rules and maintenance windows are changed by a DBA (source "ui" or "api").
"""

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from clusters.models import Alert, AlertRule, Cluster, MaintenanceWindow
from console import audit
from console.models import AuditEntry

# Rules whose warning and critical are thresholds ("above": value > threshold). The others
# have fixed levels (clusters.alerts says which) and keep both empty.
LEVELLED_RULES = ("replication_lag", "wal_ready", "disk_used")
RULE_FIELDS = ("warning", "critical", "for_seconds", "enabled", "notify", "email_to")


def split_addresses(text: str) -> list[str]:
    return [a.strip() for a in text.replace(";", ",").replace("\n", ",").split(",") if a.strip()]


def recipients(rule: AlertRule) -> list[str]:
    """Who a rule's mails go to: its own addresses, then ALERT_EMAIL_TO, each once."""
    found: list[str] = []
    for address in [*split_addresses(rule.email_to), *settings.ALERT_EMAIL_TO]:
        if address.lower() not in (a.lower() for a in found):
            found.append(address)
    return found


def wants_mail(rule: AlertRule) -> bool:
    return rule.notify and bool(recipients(rule))


def _where(alert: Alert) -> dict:
    node = alert.node.name if alert.node else ""
    return {"target": f"cluster:{alert.cluster.name}", "node": node}


def fire_alert(
    alert: Alert, *, now: datetime, window: MaintenanceWindow | None = None, job=None
) -> bool:
    """Make `alert` firing: a pending one (conditional UPDATE, so two evaluations cannot both
    raise it) or a new one (inserted firing; the partial unique constraint refuses a second
    open alert for the same rule and subject, IntegrityError to the caller). Audited in the
    same transaction. Owes a mail unless the cluster is in `window` (then it is `silenced`)
    or the rule does not notify. Returns False when another evaluation got there first."""
    alert.state, alert.raised, alert.last_seen = Alert.State.FIRING, now, now
    alert.silenced = window is not None
    alert.notify_due = Alert.Notify.FIRING if window is None and wants_mail(alert.rule) else ""
    with transaction.atomic():
        if alert.pk is None:
            alert.save()
        else:
            changed = Alert.objects.filter(pk=alert.pk, state=Alert.State.PENDING).update(
                state=alert.state, raised=now, last_seen=now, silenced=alert.silenced,
                notify_due=alert.notify_due, severity=alert.severity, value=alert.value,
                message=alert.message,
            )  # fmt: skip
            if not changed:
                return False
        silenced = f" (silenced: maintenance: {window.reason})" if window else ""
        audit.append(
            audit.ALERT_RAISED, source=AuditEntry.Source.SCHEDULE, **_where(alert),
            output=f"{alert.rule.key} {alert.severity}: {alert.message}{silenced}",
            job_id=job.pk if job else None,
        )  # fmt: skip
    return True


def clear_alert(
    alert: Alert, *, now: datetime, why: str = "", window: MaintenanceWindow | None = None,
    job=None,
) -> bool:  # fmt: skip
    """Close an open alert (conditional UPDATE: False when it was closed already). A firing
    alert's clearing is audited and, when its raising was mailed and the cluster is not in a
    maintenance window, owes a mail. A pending one just closes (it was never raised)."""
    was_firing = alert.state == Alert.State.FIRING
    owed = ""
    if was_firing and alert.notified and window is None and wants_mail(alert.rule):
        owed = Alert.Notify.CLEARED
    with transaction.atomic():
        changed = Alert.objects.filter(pk=alert.pk, cleared__isnull=True).update(
            state=Alert.State.CLEARED, cleared=now, notify_due=owed
        )
        if not changed:
            return False
        alert.state, alert.cleared, alert.notify_due = Alert.State.CLEARED, now, owed
        if was_firing:
            audit.append(
                audit.ALERT_CLEARED, source=AuditEntry.Source.SCHEDULE, **_where(alert),
                output=f"{alert.rule.key}: {why or 'condition gone'}: {alert.message}",
                job_id=job.pk if job else None,
            )  # fmt: skip
    return True


# --- rules ------------------------------------------------------------------------------------


def check_rule_values(rule: AlertRule, values: dict) -> None:
    """Refuse bad thresholds and addresses: ValidationError naming each field."""
    errors: dict[str, str] = {}
    warning, critical = values.get("warning"), values.get("critical")
    if rule.key not in LEVELLED_RULES:
        for name in ("warning", "critical"):
            if values.get(name) is not None:
                errors[name] = "This rule has fixed levels; leave it empty."
    else:
        for name in ("warning", "critical"):
            if values.get(name) is not None and values[name] < 0:
                errors[name] = "Must not be negative."
        if warning is None and critical is None:
            errors["warning"] = "Give a warning or a critical threshold (or disable the rule)."
        elif warning is not None and critical is not None and warning > critical and not errors:
            errors["warning"] = "The warning threshold must not be above the critical one."
    if values.get("for_seconds") is not None and values["for_seconds"] < 0:
        errors["for_seconds"] = "Must not be negative."
    for address in split_addresses(values.get("email_to") or ""):
        try:
            validate_email(address)
        except ValidationError:
            errors["email_to"] = f"Not an email address: {address}"
            break
    if errors:
        raise ValidationError(errors)


def update_rule(rule: AlertRule, *, actor, source: str = AuditEntry.Source.UI, **fields) -> bool:
    """Change a rule's thresholds, duration, switches or addresses (RULE_FIELDS only).
    Validated (ValidationError, nothing changed); audited with each change; returns False
    and writes nothing when nothing changes."""
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ValueError(f"not a rule setting: {', '.join(sorted(unknown))}")
    values = {name: getattr(rule, name) for name in RULE_FIELDS} | fields
    values["email_to"] = ", ".join(split_addresses(values["email_to"] or ""))
    check_rule_values(rule, values)
    changes = [
        f"{name}: {getattr(rule, name)!r} -> {values[name]!r}"
        for name in RULE_FIELDS
        if getattr(rule, name) != values[name]
    ]
    if not changes:
        return False
    with transaction.atomic():
        for name in RULE_FIELDS:
            setattr(rule, name, values[name])
        rule.updated = timezone.now()
        rule.save()
        audit.append(
            audit.ALERT_RULE_CHANGED, actor=actor, source=source,
            target=f"alert-rule:{rule.key}", output="; ".join(changes),
        )  # fmt: skip
    return True


# --- maintenance windows ----------------------------------------------------------------------


def check_window(starts: datetime, ends: datetime, reason: str, *, now: datetime) -> None:
    """Refuse a window without a reason, ending before it starts, or already over."""
    errors: dict[str, str] = {}
    if not (reason or "").strip():
        errors["reason"] = "Say why the cluster is in maintenance."
    if starts and ends and ends <= starts:
        errors["ends"] = "The window must end after it starts."
    elif ends and ends <= now:
        errors["ends"] = "The window must end in the future."
    if errors:
        raise ValidationError(errors)


def create_maintenance(
    cluster: Cluster, *, starts: datetime, ends: datetime, reason: str, actor,
    source: str = AuditEntry.Source.UI,
) -> MaintenanceWindow:  # fmt: skip
    """Silence `cluster` from `starts` to `ends`. Validated (ValidationError); audited. Safe
    to retry: the same window (cluster, times, reason) not ended yet is returned as it is."""
    reason = (reason or "").strip()
    check_window(starts, ends, reason, now=timezone.now())
    same = MaintenanceWindow.objects.filter(
        cluster=cluster, starts=starts, ends=ends, reason=reason, ended__isnull=True
    ).first()
    if same is not None:
        return same
    name = actor.get_username() if actor is not None else ""
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(
            cluster=cluster, starts=starts, ends=ends, reason=reason,
            created_by=actor, created_by_name=name,
        )  # fmt: skip
        audit.append(
            audit.MAINTENANCE_CREATED, actor=actor, source=source,
            target=f"cluster:{cluster.name}",
            output=f"window #{window.pk} {starts.isoformat()} - {ends.isoformat()}: {reason}",
        )  # fmt: skip
    return window


def end_maintenance(
    window: MaintenanceWindow, *, actor, source: str = AuditEntry.Source.UI
) -> bool:
    """End a window now (a window not started yet is called off). Audited. Returns False and
    writes nothing when it is over already."""
    now = timezone.now()
    name = actor.get_username() if actor is not None else ""
    with transaction.atomic():
        changed = MaintenanceWindow.objects.filter(
            pk=window.pk, ended__isnull=True, ends__gt=now
        ).update(ended=now, ended_by_name=name)
        if not changed:
            return False
        window.ended, window.ended_by_name = now, name
        audit.append(
            audit.MAINTENANCE_ENDED, actor=actor, source=source,
            target=f"cluster:{window.cluster.name}",
            output=f"window #{window.pk} ended early: {window.reason}",
        )  # fmt: skip
    return True
