"""Backup schedules: each BackupPolicy has one django-celery-beat PeriodicTask (kept in step by
backups.schedule), and a firing that did not happen is recorded as a MissedBackup.

A MissedBackup is one cron time of a policy that passed, plus the grace
(BACKUPS_MISSED_GRACE_SECONDS), without a run of that policy starting. Rows are written by
backups.schedule.detect_missed (a beat task) with an audit entry; the report counts them per
period. The policy may be deleted later: the row keeps its cluster and the policy's name.
"""

from django.db import models
from django.utils import timezone

from backups.models.core import BackupPolicy
from clusters.models import Cluster

__all__ = ["MissedBackup", "PolicySchedule"]


class PolicySchedule(models.Model):
    """Since when a policy's current schedule applies (set when the policy is created, its
    cron text changed or it is enabled again): cron times before it are never "missed". Its
    PeriodicTask is found by name (backups.schedule.task_name)."""

    policy = models.OneToOneField(BackupPolicy, on_delete=models.CASCADE, related_name="beat")
    since = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"schedule of policy {self.policy_id} since {self.since:%Y-%m-%d %H:%M}"


class MissedBackup(models.Model):
    """A scheduled backup that did not start: `due_at` is the cron time, `detected_at` when the
    console noticed (at least the grace later). One row per policy and cron time."""

    policy = models.ForeignKey(
        BackupPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="missed"
    )
    policy_name = models.CharField(max_length=64, blank=True)  # kept when the policy goes
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="missed_backups")
    due_at = models.DateTimeField()
    detected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-due_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "due_at"], name="backups_missed_once"),
        ]
        indexes = [models.Index(fields=["cluster", "due_at"], name="backups_missed_cluster")]

    def __str__(self) -> str:
        return f"{self.policy_name or self.policy_id} missed at {self.due_at:%Y-%m-%d %H:%M}"
