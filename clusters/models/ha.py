"""High availability of a PostgreSQL cluster: pgpool-II in front of it and fenced nodes.

`HaSetup` is what the console deployed on a cluster's pgpool-II node (clusters.ha.deploy): the
directory of its files, its backends in pgpool's node order, the PCP and replication accounts
(console.Credential, encrypted), and the health-check figures that bound how fast pgpool-II
fails over. `FencedNode` records a former primary that must never accept a write again: the
console keeps it stopped with standby.signal in its data directory (clusters.ha.fence) until a
rebuild makes it a standby of the new primary.
"""

from django.db import models
from django.utils import timezone

from clusters.models.inventory import Cluster, Node
from console.models import Credential


class HaSetup(models.Model):
    """pgpool-II as the console deployed it in front of `cluster` (one per cluster).

    `backends` lists pgpool's backends in node-id order: {"node": Node pk, "name",
    "address", "port", "weight", "data_directory", "application_name"}. `pool_users` names the
    credentials whose users get an AES entry in pool_passwd (each SCRAM user connecting
    through pgpool-II needs one)."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="ha")
    pgpool = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    directory = models.CharField(max_length=255)  # pgpool.conf, keys, scripts, pid, log
    pcp_port = models.PositiveIntegerField(default=9898)
    pcp_credential = models.ForeignKey(
        Credential, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    replication_credential = models.ForeignKey(
        Credential, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    backends = models.JSONField(default=list)
    pool_users = models.JSONField(default=list)  # credential names
    client_networks = models.JSONField(default=list)  # pool_hba.conf: who may connect
    health_check_period = models.PositiveIntegerField(default=1)
    health_check_timeout = models.PositiveIntegerField(default=2)
    health_check_max_retries = models.PositiveIntegerField(default=1)
    delay_threshold = models.PositiveBigIntegerField(default=1024 * 1024)  # bytes
    synchronous_commit = models.CharField(max_length=16, default="remote_apply")
    pg_bin = models.CharField(max_length=255, default="/usr/lib/postgresql/15/bin")
    deployed = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "HA setup"

    def __str__(self) -> str:
        return f"pgpool-II on {self.pgpool.name} for {self.cluster.name}"

    def backend_of(self, node: Node) -> dict | None:
        return next((b for b in self.backends if b["node"] == node.pk), None)

    def backend_id(self, node: Node) -> int:
        for number, backend in enumerate(self.backends):
            if backend["node"] == node.pk:
                return number
        raise KeyError(f"{node.name} is not a backend of pgpool-II on {self.pgpool.name}")


class FencedNode(models.Model):
    """A former primary that must never accept a write again (after a failover).

    While `cleared` is empty the console keeps the server stopped, with standby.signal in its
    data directory so that any start brings it up read-only (clusters.ha.fence.enforce_fences,
    each time the node can be reached), and never re-attaches it in pgpool-II. A rebuild as a
    standby of the new primary clears it."""

    class State(models.TextChoices):
        PENDING = "pending", "fenced, not reached yet"
        ENFORCED = "enforced", "stopped, standby.signal in place"
        CLEARED = "cleared", "rebuilt as a standby"

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="fences")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="fences")
    reason = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created = models.DateTimeField(default=timezone.now)
    checked = models.DateTimeField(null=True, blank=True)
    enforced = models.DateTimeField(null=True, blank=True)
    cleared = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)  # what the last enforcement found

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["node"],
                condition=models.Q(cleared__isnull=True),
                name="clusters_one_open_fence_per_node",
            )
        ]

    def __str__(self) -> str:
        return f"{self.node.name} fenced ({self.state})"
