"""What the collector (clusters.collect) stores: raw samples, hourly rollups, the latest status.

`Sample` rows are the time series (one value of one metric of one node at one time); they are
kept `CLUSTERS_SAMPLE_RAW_DAYS` days, then rolled up into `SampleRollup` hours kept
`CLUSTERS_SAMPLE_ROLLUP_DAYS` days (clusters.collect_store.rollup_and_prune). `NodeStatus` is one
row per node, overwritten each cycle: the view clusters.health reads in one query. `ClusterStatus`
is one row per cluster, its health summarised from those rows after each cycle
(clusters.status.refresh_cluster_status): what the fleet dashboard reads, filters and sorts in SQL.
"""

from django.db import models

from clusters.models.inventory import Cluster, Node


class Sample(models.Model):
    """One value of one metric of a node at one time. Metric names are short dotted slugs:
    "up", "replication.replay_lag_bytes", "connections.active", "disk.used_percent",
    "archive.failed_count", "log.fatal"…"""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="samples")
    metric = models.CharField(max_length=64)
    ts = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        indexes = [
            models.Index(fields=["node", "metric", "-ts"], name="clusters_sample_series"),
            models.Index(fields=["ts"], name="clusters_sample_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.node_id} {self.metric}={self.value:g} at {self.ts:%Y-%m-%d %H:%M:%S}"


class SampleRollup(models.Model):
    """The samples of one metric of a node during one hour, summarised."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="rollups")
    metric = models.CharField(max_length=64)
    hour = models.DateTimeField()
    min = models.FloatField()
    max = models.FloatField()
    avg = models.FloatField()
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["node", "metric", "hour"], name="clusters_rollup_one_per_hour"
            )
        ]
        indexes = [models.Index(fields=["hour"], name="clusters_rollup_hour")]

    def __str__(self) -> str:
        return f"{self.node_id} {self.metric} {self.hour:%Y-%m-%d %H}h avg {self.avg:g}"


class NodeStatus(models.Model):
    """The latest collection of one node. `state` is up when the node answered its first check
    (SELECT 1, or SHOW POOL_NODES for pgpool), down when it did not (`error` says why), unknown
    before the first collection. Replication fields of a standby come from its primary's
    pg_stat_replication in the same cycle (blank when the primary did not answer or does not
    list it). Log counters add up what classify found since the cursor was first placed."""

    class State(models.TextChoices):
        UP = "up"
        DOWN = "down"
        UNKNOWN = "unknown"

    node = models.OneToOneField(
        Node, on_delete=models.CASCADE, primary_key=True, related_name="status"
    )
    polled = models.DateTimeField(null=True, blank=True)
    poll_ms = models.PositiveIntegerField(null=True, blank=True)
    reachable = models.BooleanField(default=False)
    state = models.CharField(max_length=8, choices=State.choices, default=State.UNKNOWN)
    error = models.TextField(blank=True)
    role_seen = models.CharField(max_length=16, blank=True)
    in_recovery = models.BooleanField(null=True, blank=True)
    replication_state = models.CharField(max_length=16, blank=True)
    sync_state = models.CharField(max_length=16, blank=True)
    replay_lag_bytes = models.BigIntegerField(null=True, blank=True)
    disk_used_percent = models.FloatField(null=True, blank=True)
    log_path = models.CharField(max_length=255, blank=True)
    log_inode = models.BigIntegerField(null=True, blank=True)
    log_offset = models.BigIntegerField(default=0)
    log_errors = models.PositiveBigIntegerField(default=0)
    log_fatals = models.PositiveBigIntegerField(default=0)
    log_panics = models.PositiveBigIntegerField(default=0)
    log_auth_failures = models.PositiveBigIntegerField(default=0)
    log_error = models.TextField(blank=True)  # why the log could not be read this cycle
    details = models.JSONField(default=dict, blank=True)  # pgpool backends, archiver, standbys

    class Meta:
        verbose_name_plural = "node statuses"

    def __str__(self) -> str:
        return f"{self.node_id}: {self.state}"


class ClusterStatus(models.Model):
    """A cluster's health as of the latest collection cycle (clusters.health.cluster_health of
    its NodeStatus rows) plus its firing alerts, rewritten by clusters.status after each cycle
    and each alert evaluation. A cluster without one was not summarised yet: "unknown".

    `state_rank` orders states worst first (down, degraded, unknown, healthy) so the dashboard
    sorts by it in SQL; `reasons` is the health's reasons joined with "; ". The pgpool-II
    figures are those of the worst pgpool-II node that answered (backends up / total), with
    how many pgpool-II nodes there are and answered, and one "name: n/m backends up" (or
    "name: down") each in `pgpool_detail`."""

    class State(models.TextChoices):
        HEALTHY = "healthy"
        DEGRADED = "degraded"
        DOWN = "down"
        UNKNOWN = "unknown"

    RANKS = {"down": 0, "degraded": 1, "unknown": 2, "healthy": 3}

    cluster = models.OneToOneField(
        Cluster, on_delete=models.CASCADE, primary_key=True, related_name="status"
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.UNKNOWN)
    state_rank = models.PositiveSmallIntegerField(default=2)
    reasons = models.TextField(blank=True)
    primary = models.ForeignKey(
        Node, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    standbys = models.PositiveSmallIntegerField(default=0)
    standbys_in_sync = models.PositiveSmallIntegerField(default=0)
    worst_lag_bytes = models.BigIntegerField(null=True, blank=True)
    pgpool_up = models.PositiveSmallIntegerField(default=0)
    pgpool_total = models.PositiveSmallIntegerField(default=0)
    pgpool_nodes = models.PositiveSmallIntegerField(default=0)
    pgpool_nodes_up = models.PositiveSmallIntegerField(default=0)
    pgpool_detail = models.TextField(blank=True)
    alerts_critical = models.PositiveIntegerField(default=0)
    alerts_warning = models.PositiveIntegerField(default=0)
    collected = models.DateTimeField(null=True, blank=True)  # its nodes' oldest latest poll
    updated = models.DateTimeField()

    class Meta:
        verbose_name_plural = "cluster statuses"
        indexes = [
            models.Index(fields=["state_rank", "-alerts_critical", "-alerts_warning"],
                         name="clusters_cstatus_state"),
            models.Index(fields=["-worst_lag_bytes"], name="clusters_cstatus_lag"),
            models.Index(fields=["-alerts_critical", "-alerts_warning", "state_rank"],
                         name="clusters_cstatus_alerts"),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.cluster_id}: {self.state}"
