"""Alerting: the rules, the alerts they raise, and maintenance windows that silence a cluster.

`AlertRule` is one row per kind of check the console knows (`key`, e.g. "replication_lag"),
with the thresholds a DBA may tune: warning and critical (None where the rule has no level,
like "node_down"), the time the condition must hold before an alert is raised (`for_seconds`),
whether it notifies by email and to whom. clusters.alerts evaluates the rules after every
collection cycle.

`Alert` is one raised condition on one subject of a cluster (the cluster itself or one node):
open while `cleared` is null; at most one open alert per rule and subject (`subject` is
"cluster" or "node:<id>"), enforced by a partial unique constraint. A condition seen for less
than `for_seconds` is `pending` (not shown as raised, not notified). Rows are never deleted:
cleared alerts are the alert history.

`MaintenanceWindow` silences a cluster between two times, with a reason: alerts are still
recorded (marked `silenced`) but nobody is notified. A DBA may end one early (`ended`).

Notifications: an alert owes a mail when `notify_due` is "firing" or "cleared"; the sender
claims it (a conditional UPDATE back to ""), sends once, and records `notified` (the time of the
last mail sent) or `notify_error` (why the last one failed).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from clusters.models.inventory import Cluster, Node


class Severity(models.TextChoices):
    WARNING = "warning"
    CRITICAL = "critical"


class AlertRule(models.Model):
    """A check and its thresholds. The check itself is code (clusters.alerts); `key` names it."""

    key = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=128)
    description = models.TextField(blank=True)
    unit = models.CharField(max_length=16, blank=True)  # "bytes", "%", "files", "lines"
    warning = models.FloatField(null=True, blank=True)
    critical = models.FloatField(null=True, blank=True)
    for_seconds = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    notify = models.BooleanField(default=True)
    email_to = models.CharField(max_length=512, blank=True)  # extra addresses, comma-separated
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.title


class Alert(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"  # seen, not yet for for_seconds
        FIRING = "firing"
        CLEARED = "cleared"

    class Notify(models.TextChoices):
        NONE = "", "nothing owed"
        FIRING = "firing"
        CLEARED = "cleared"

    rule = models.ForeignKey(AlertRule, on_delete=models.PROTECT, related_name="alerts")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="alerts")
    node = models.ForeignKey(
        Node, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    subject = models.CharField(max_length=32)  # "cluster" or "node:<id>"
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    value = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=512)
    first_seen = models.DateTimeField()  # when the condition was first seen
    last_seen = models.DateTimeField()
    raised = models.DateTimeField(null=True, blank=True)  # when it became firing
    cleared = models.DateTimeField(null=True, blank=True)
    silenced = models.BooleanField(default=False)  # raised during a maintenance window
    notified = models.DateTimeField(null=True, blank=True)  # last mail sent
    notify_due = models.CharField(max_length=8, choices=Notify.choices, blank=True, default="")
    notify_error = models.CharField(max_length=512, blank=True)  # why the last mail failed

    class Meta:
        ordering = ["-first_seen", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "cluster", "subject"],
                condition=Q(cleared__isnull=True),
                name="clusters_alert_one_open",
            )
        ]
        indexes = [
            models.Index(fields=["cluster", "state"], name="clusters_alert_cluster_state"),
            models.Index(fields=["state", "-first_seen"], name="clusters_alert_state_seen"),
            models.Index(
                fields=["notify_due"],
                condition=~Q(notify_due=""),
                name="clusters_alert_notify_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cluster}: {self.message} ({self.severity}, {self.state})"


class MaintenanceWindow(models.Model):
    """While `starts <= now < ends` (and not `ended` early), the cluster's alerts are recorded
    silenced, not notified. `ends` stays as planned; ending early sets `ended`."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="maintenance")
    starts = models.DateTimeField()
    ends = models.DateTimeField()
    reason = models.CharField(max_length=255)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_name = models.CharField(max_length=150, blank=True)
    created = models.DateTimeField(default=timezone.now)
    ended = models.DateTimeField(null=True, blank=True)  # ended early by a DBA
    ended_by_name = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-starts"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends__gt=models.F("starts")), name="clusters_maintenance_ends_after"
            )
        ]
        indexes = [models.Index(fields=["cluster", "ends"], name="clusters_maint_cluster_ends")]

    def __str__(self) -> str:
        return f"{self.cluster}: {self.reason} ({self.starts:%Y-%m-%d %H:%M} – {self.ends:%H:%M})"

    @property
    def effective_end(self):
        """When the window stops silencing: its planned end, or when it was ended early."""
        return min(self.ends, self.ended) if self.ended else self.ends

    def active_at(self, when) -> bool:
        return self.starts <= when < self.effective_end
