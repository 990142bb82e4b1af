"""Backup policies and their schedules: Celery beat fires each enabled policy through
django-celery-beat's DatabaseScheduler (CELERY_BEAT_SCHEDULER).

Every policy has exactly one PeriodicTask (named `task_name(policy)`, task
`backups.scheduled_backup`, args `[policy id]`) on a CrontabSchedule holding the policy's five
cron fields in settings.TIME_ZONE. The policy actions below (create, change, enable, disable,
delete) change the policy, its PeriodicTask and its PolicySchedule (since when the schedule
applies) and write their audit entry, all in one transaction: beat never sees a policy and a
task that disagree. At each firing `fire_policy` calls `backups.actions.start_backup`; a refusal
("one at a time") is audited as `backup.schedule_skipped`, nothing else.

`detect_missed` (beat task `backups.detect_missed`) records each cron time that passed, plus
BACKUPS_MISSED_GRACE_SECONDS, without a run of the policy starting, as a MissedBackup; the
alert rule `backup_missed` (clusters.alerts) fires while a policy has one newer than its
latest run, and clears once a run starts.
"""

import json
import logging
import zoneinfo
from collections.abc import Iterator
from datetime import datetime, timedelta

from celery.schedules import crontab
from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from backups.models import BackupPolicy, BackupRun, MissedBackup, PolicySchedule
from console import audit
from console.models import AuditEntry

logger = logging.getLogger(__name__)

TASK = "backups.scheduled_backup"
ALERT_RULE = "backup_missed"
_MAX_MISSED_PER_CHECK = 100  # a policy silent for months is recorded up to this many times a check
POLICY_FIELDS = ("name", "schedule", "mode", "compress", "with_serverlog", "source_node",
                 *BackupPolicy.PG_RMAN_RETENTION, *BackupPolicy.PGBACKREST_RETENTION)  # fmt: skip


def task_name(policy: BackupPolicy) -> str:
    return f"backup policy {policy.pk}"


def _zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def cron(text: str) -> crontab:
    """Celery's crontab for five cron fields (minute hour day-of-month month day-of-week)."""
    minute, hour, day_of_month, month, day_of_week = text.split()
    return crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month,
                   day_of_week=day_of_week)  # fmt: skip


def next_fire(text: str, after: datetime) -> datetime:
    """The first cron time of `text` strictly after `after` (Celery's own arithmetic)."""
    last, delta, _now = cron(text).remaining_delta(after, tz=_zone())
    return last + delta


def next_run(policy: BackupPolicy, now: datetime | None = None) -> datetime | None:
    """When beat fires this policy next (None when disabled)."""
    if not policy.enabled:
        return None
    return next_fire(policy.schedule, now or timezone.now())


def describe(policy: BackupPolicy) -> str:
    retention = ", ".join(
        f"{name}={getattr(policy, name)}"
        for name in (*BackupPolicy.PG_RMAN_RETENTION, *BackupPolicy.PGBACKREST_RETENTION)
        if getattr(policy, name) is not None
    )
    return (f"policy {policy.name!r} of {policy.catalog}: {policy.mode} at '{policy.schedule}', "
            f"compress={policy.compress}, source={policy.source_node or 'primary'}, "
            f"retention: {retention or 'engine default'}, "
            f"{'enabled' if policy.enabled else 'disabled'}")  # fmt: skip


# --- the PeriodicTask of a policy --------------------------------------------------------------


def _crontab_for(text: str) -> CrontabSchedule:
    minute, hour, day_of_month, month, day_of_week = text.split()
    found, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month,
        day_of_week=day_of_week, timezone=_zone(),
    )  # fmt: skip
    return found


def _drop_unused_crontabs(ids) -> None:
    CrontabSchedule.objects.filter(pk__in=[i for i in ids if i]).filter(
        periodictask__isnull=True
    ).delete()


def sync_task(policy: BackupPolicy, *, restart: bool) -> PeriodicTask:
    """Create or update the policy's PeriodicTask (its crontab, enabled flag, args). With
    `restart` the task forgets when it last ran, so beat counts from now and never fires a
    catch-up run for a time before the change. Call inside the action's transaction."""
    task = PeriodicTask.objects.filter(name=task_name(policy)).first()
    old_crontab = task.crontab_id if task else None
    task = task or PeriodicTask(name=task_name(policy))
    task.task = TASK
    task.args = json.dumps([policy.pk])
    task.kwargs = "{}"
    task.crontab = _crontab_for(policy.schedule)
    task.interval = task.solar = task.clocked = None
    task.enabled = policy.enabled
    task.description = f"Backups: {policy.mode} backup of {policy.catalog} ({policy.name})"
    if restart:
        task.last_run_at = timezone.now()
    task.save()
    if old_crontab != task.crontab_id:
        _drop_unused_crontabs([old_crontab])
    return task


def _since(policy: BackupPolicy, now: datetime) -> None:
    PolicySchedule.objects.update_or_create(policy=policy, defaults={"since": now})


def _audit(action: str, policy: BackupPolicy, *, actor, source: str, output: str) -> None:
    audit.append(action, actor=actor, source=source, target=f"backup_policy:{policy.pk}",
                 output=output)  # fmt: skip


# --- policy actions ------------------------------------------------------------------------------


def create_policy(
    policy: BackupPolicy, *, actor, source: str = AuditEntry.Source.UI
) -> BackupPolicy:
    """Save a new policy (validated again here), its schedule and its PeriodicTask, audited
    (backup.policy_created), in one transaction. Raises ValidationError and saves nothing when
    a field is wrong."""
    policy.full_clean()
    now = timezone.now()
    with transaction.atomic():
        policy.save()
        _since(policy, now)
        sync_task(policy, restart=True)
        _audit(audit.BACKUP_POLICY_CREATED, policy, actor=actor, source=source,
               output=describe(policy))  # fmt: skip
    return policy


def update_policy(
    policy: BackupPolicy, values: dict, *, actor, source: str = AuditEntry.Source.UI
) -> list[str]:
    """Change a policy's fields (names in POLICY_FIELDS) and its PeriodicTask, audited
    (backup.policy_changed, old and new values) in one transaction. Returns the fields that
    changed; nothing changed: no write, no entry. A new cron text restarts the schedule (its
    times before now are not missed). ValidationError, nothing saved, for a wrong field."""
    unknown = set(values) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"not policy fields: {sorted(unknown)}")
    before = {name: getattr(policy, name) for name in values}
    changed = [name for name, value in values.items() if before[name] != value]
    if not changed:
        return []
    for name in changed:
        setattr(policy, name, values[name])
    try:
        policy.full_clean()
    except Exception:
        for name in changed:
            setattr(policy, name, before[name])
        raise
    now = timezone.now()
    with transaction.atomic():
        policy.save(update_fields=changed)
        restart = "schedule" in changed
        if restart:
            _since(policy, now)
        sync_task(policy, restart=restart)
        diff = "; ".join(f"{name}: {before[name]} -> {values[name]}" for name in changed)
        _audit(audit.BACKUP_POLICY_CHANGED, policy, actor=actor, source=source,
               output=f"policy {policy.name!r} of {policy.catalog}: {diff}")  # fmt: skip
    return changed


def set_policy_enabled(
    policy: BackupPolicy, enabled: bool, *, actor, source: str = AuditEntry.Source.UI
) -> bool:
    """Enable or disable a policy and its PeriodicTask, audited (backup.policy_enabled or
    backup.policy_disabled) in one transaction. Returns False, writing nothing, when it is
    already so. Enabling again restarts the schedule: times while it was off are not missed."""
    with transaction.atomic():
        changed = BackupPolicy.objects.filter(pk=policy.pk, enabled=not enabled).update(
            enabled=enabled
        )
        if not changed:
            return False
        policy.enabled = enabled
        if enabled:
            _since(policy, timezone.now())
        sync_task(policy, restart=enabled)
        action = audit.BACKUP_POLICY_ENABLED if enabled else audit.BACKUP_POLICY_DISABLED
        _audit(action, policy, actor=actor, source=source, output=describe(policy))
    return True


def delete_policy(policy: BackupPolicy, *, actor, source: str = AuditEntry.Source.UI) -> bool:
    """Delete a policy and its PeriodicTask (its crontab too when no other task uses it),
    audited (backup.policy_deleted, with what it was) in one transaction. Its runs and missed
    schedules stay, without the policy. Returns False when it was already gone (safe to retry)."""
    with transaction.atomic():
        locked = BackupPolicy.objects.select_for_update().filter(pk=policy.pk).first()
        if locked is None:
            return False
        output = describe(policy)
        MissedBackup.objects.filter(policy=policy).update(policy_name=policy.name)
        tasks = PeriodicTask.objects.filter(name=task_name(policy))
        crontabs = list(tasks.values_list("crontab_id", flat=True))
        tasks.delete()
        _drop_unused_crontabs(crontabs)
        pk = policy.pk
        locked.delete()
        audit.append(audit.BACKUP_POLICY_DELETED, actor=actor, source=source,
                     target=f"backup_policy:{pk}", output=output)  # fmt: skip
    return True


# --- firing, and what did not fire -----------------------------------------------------------


def fire_policy(policy_id: int) -> BackupRun | None:
    """What beat's task does: queue the policy's backup (start_backup, source "schedule").
    A refusal (a backup of the cluster already queued or running, or the engine refusing the
    mode) is audited once as backup.schedule_skipped and logged; it is not an error. A policy
    deleted or disabled meanwhile does nothing."""
    from backups.actions import BackupRefused, start_backup

    policy = BackupPolicy.objects.select_related("catalog__cluster").filter(pk=policy_id).first()
    if policy is None or not policy.enabled:
        logger.info("backup policy %s is gone or disabled; nothing queued", policy_id)
        return None
    try:
        return start_backup(policy, policy.mode, actor=None, source=AuditEntry.Source.SCHEDULE)
    except BackupRefused as exc:
        logger.info("scheduled backup of policy %s not started: %s", policy_id, exc)
        audit.append(audit.BACKUP_SCHEDULE_SKIPPED, source=AuditEntry.Source.SCHEDULE,
                     status=AuditEntry.Status.FAILED, target=f"backup_policy:{policy.pk}",
                     error=f"{policy.mode} backup of policy {policy.name!r} not started: "
                           f"{exc}")  # fmt: skip
        return None


def missed_times(text: str, anchor: datetime, now: datetime, grace: timedelta) -> list[datetime]:
    """The cron times after `anchor` whose grace ended by `now` (at most a hundred)."""
    found: list[datetime] = []
    due = next_fire(text, anchor)
    while due + grace <= now and len(found) < _MAX_MISSED_PER_CHECK:
        found.append(due)
        due = next_fire(text, due)
    return found


def detect_missed(
    now: datetime | None = None, grace: timedelta | None = None
) -> list[MissedBackup]:
    """Record, for every enabled policy, each cron time that passed (plus the grace) since the
    latest of: its schedule's start, its newest run's creation, its newest missed time,
    without a run starting. Idempotent (one row per policy and time); each new row audited
    (backup.missed, source "schedule") in the same transaction."""
    now = now or timezone.now()
    grace = grace if grace is not None else timedelta(seconds=settings.BACKUPS_MISSED_GRACE_SECONDS)
    newest_run = BackupRun.objects.filter(policy=OuterRef("pk")).order_by("-created")
    newest_missed = MissedBackup.objects.filter(policy=OuterRef("pk")).order_by("-due_at")
    policies = (
        BackupPolicy.objects.filter(enabled=True)
        .select_related("catalog__cluster", "beat")
        .annotate(
            last_run=Subquery(newest_run.values("created")[:1]),
            last_missed=Subquery(newest_missed.values("due_at")[:1]),
        )  # fmt: skip
    )
    recorded: list[MissedBackup] = []
    for policy in policies:
        since = policy.beat.since if hasattr(policy, "beat") else policy.created
        anchor = max(t for t in (since, policy.last_run, policy.last_missed) if t is not None)
        for due in missed_times(policy.schedule, anchor, now, grace):
            recorded.append(MissedBackup(policy=policy, policy_name=policy.name,
                                         cluster_id=policy.catalog.cluster_id, due_at=due,
                                         detected_at=now))  # fmt: skip
    if not recorded:
        return []
    ensure_alert_rule()
    with transaction.atomic():
        created = []
        for missed in recorded:
            row, new = MissedBackup.objects.get_or_create(
                policy=missed.policy, due_at=missed.due_at, defaults={
                    "policy_name": missed.policy_name, "cluster_id": missed.cluster_id,
                    "detected_at": now},
            )  # fmt: skip
            if not new:
                continue
            created.append(row)
            audit.append(audit.BACKUP_MISSED, source=AuditEntry.Source.SCHEDULE,
                         status=AuditEntry.Status.FAILED, target=f"backup_policy:{row.policy_id}",
                         error=f"{missed.policy.mode} backup of policy {missed.policy_name!r} "
                               f"({missed.policy.catalog}) due at {_local(missed.due_at)} did "
                               f"not start within {grace.total_seconds():.0f} s")  # fmt: skip
    return created


def _local(when: datetime) -> str:
    return f"{when.astimezone(_zone()):%Y-%m-%d %H:%M %Z}"


# --- the alert rule (clusters.alerts.CHECKS["backup_missed"]) ---------------------------------


def ensure_alert_rule():
    """The `backup_missed` alert rule row, created once (fixed levels: a warning for one
    missed time, critical from two)."""
    from clusters.models import AlertRule

    rule, _ = AlertRule.objects.get_or_create(key=ALERT_RULE, defaults={
        "title": "Scheduled backup missed",
        "description": "A backup policy's cron time passed (plus the grace) without a run "
                       "starting. Warning for one missed time, critical from two; clears when "
                       "a run of the policy starts.",
        "unit": "missed", "for_seconds": 0,
    })  # fmt: skip
    return rule


def open_missed() -> dict[int, list[dict]]:
    """Per cluster id: each enabled policy with missed times newer than its newest run (how
    many, the latest), in one query."""
    newest_run = BackupRun.objects.filter(policy=OuterRef("policy")).order_by("-created")
    rows = (
        MissedBackup.objects.filter(policy__enabled=True)
        .annotate(last_run=Subquery(newest_run.values("created")[:1]))
        .filter(Q(last_run__isnull=True) | Q(due_at__gt=F("last_run")))
        .values_list("cluster_id", "policy_id", "policy__name", "policy__mode", "due_at")
        .order_by("due_at")
    )
    policies: dict[tuple, dict] = {}
    for cluster_id, policy_id, name, mode, due in rows:
        entry = policies.setdefault((cluster_id, policy_id), {
            "policy_id": policy_id, "name": name, "mode": mode, "count": 0})  # fmt: skip
        entry["count"] += 1
        entry["latest"] = due
    by_cluster: dict[int, list[dict]] = {}
    for (cluster_id, _policy), entry in policies.items():
        by_cluster.setdefault(cluster_id, []).append(entry)
    return by_cluster


def missed_check(view, rule) -> Iterator:
    """clusters.alerts check `backup_missed`: one finding per policy of the cluster with a
    missed time newer than its newest run. The rows are read once per evaluation (kept on the
    rule object, which one evaluation shares between clusters)."""
    from clusters.alerts import Finding
    from clusters.models import Severity

    if not hasattr(rule, "_open_missed"):
        rule._open_missed = open_missed()
    for entry in rule._open_missed.get(view.cluster.pk, []):
        count = entry["count"]
        yield Finding(
            rule.key, view.cluster.pk, f"policy:{entry['policy_id']}",
            Severity.CRITICAL if count > 1 else Severity.WARNING,
            f"{entry['mode']} backup of policy {entry['name']!r} did not start at "
            f"{_local(entry['latest'])}" + (f" ({count} times missed)" if count > 1 else ""),
            float(count),
        )  # fmt: skip
