"""The history of server setting changes made through the console (clusters.actions.settings).

One `SettingChange` row per node a change was tried on: a change to a whole cluster leaves one
row per database node, sharing `request_id`. Rows are written once the node's outcome is known
and never edited: applied (the server runs the new value), restart_needed (written and
reloaded, the server needs a restart to run it), or failed (the server was left, or put back,
as it was; `error` says why). Values are stored as shown on pages (credentials masked).
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from clusters.models.inventory import Cluster, Node


class SettingChange(models.Model):
    class Scope(models.TextChoices):
        NODE = "node", "node"
        CLUSTER = "cluster", "cluster"

    class Operation(models.TextChoices):
        SET = "set", "set"
        RESET = "reset", "reset to default"

    class Status(models.TextChoices):
        APPLIED = "applied", "applied"
        RESTART_NEEDED = "restart_needed", "restart needed"
        FAILED = "failed", "failed"

    request_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.NODE)
    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="setting_changes"
    )
    node = models.ForeignKey(
        Node, null=True, blank=True, on_delete=models.SET_NULL, related_name="setting_changes"
    )
    node_name = models.CharField(max_length=64)  # kept when the node is removed
    engine = models.CharField(max_length=16)  # Node.Service: postgresql or mariadb
    name = models.CharField(max_length=128)
    operation = models.CharField(max_length=8, choices=Operation.choices, default=Operation.SET)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    unit = models.CharField(max_length=16, blank=True)
    context = models.CharField(max_length=32, blank=True)  # pg_settings.context, or dynamic/static
    config_file = models.CharField(max_length=255, blank=True)  # MariaDB: the file edited
    backup_file = models.CharField(max_length=255, blank=True)  # MariaDB: its copy before
    status = models.CharField(max_length=16, choices=Status.choices)
    error = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    job = models.ForeignKey(
        "console.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [
            models.Index(fields=["node", "name", "-created"], name="clusters_setting_node_name"),
            models.Index(fields=["cluster", "-created"], name="clusters_setting_cluster"),
        ]

    def __str__(self) -> str:
        what = "reset" if self.operation == self.Operation.RESET else f"= {self.new_value}"
        return f"{self.node_name}: {self.name} {what} ({self.get_status_display()})"
