"""What the collector saw, for Prometheus: a custom collector read from the database per scrape.

`render(accept)` builds a fresh `CollectorRegistry` holding one `FleetCollector` and encodes it
in the format the scraper asked for (prometheus_client.exposition.choose_encoder); nothing is
kept between scrapes and nothing is registered in prometheus_client's global registry. The
console does not poll anything here: it exposes only the latest values the collector stored
(clusters.collect), read in a constant number of queries whatever the fleet size:
1. the clusters with their environment;
2. the polled nodes with their cluster, environment and NodeStatus (one join);
3. the latest samples of the figures NodeStatus does not hold (connections by state,
   archiver, replication lags): the collector writes a cycle's samples with ts equal to
   NodeStatus.polled, so "latest" is `ts = polled`: the rows at the few distinct polled times,
   found through the ts index (`latest_samples`);
4. the firing alerts counted by cluster and severity;
5. the newest audit entry (by primary key).
Cluster states come from clusters.health on the rows of query 2.

Labels: `cluster`, `environment` on everything; node series add `node`, `service` and `role`
(the role as registered: stable across cycles, so a series does not change name when a node
stops answering; the role the node reported is on `dbconsole_node_info`).
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator

from django.db.models import Count
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from clusters import health
from clusters.models import Alert, Cluster, Node, NodeStatus, Sample, Severity
from console.models import AuditEntry

CLUSTER_LABELS = ["cluster", "environment"]
NODE_LABELS = [*CLUSTER_LABELS, "node", "service", "role"]
STATES = [health.HEALTHY, health.DEGRADED, health.DOWN, health.UNKNOWN]
# pg_stat_activity.state values, as the collector names them (spaces and brackets dropped).
PG_CONNECTION_STATES = [
    "active", "idle", "idle_in_transaction", "idle_in_transaction_aborted",
    "fastpath_function_call", "disabled", "unknown",
]  # fmt: skip
# The samples read for the latest cycle; each is one index seek per node.
SAMPLE_METRICS = [
    *(f"connections.{state}" for state in PG_CONNECTION_STATES),
    "connections.used_percent", "connections.threads_connected", "connections.threads_running",
    "archive.failed_count", "archive.ready_count", "archive.last_archived_age_s",
    "replication.replay_lag_bytes", "replication.write_lag_bytes",
    "replication.flush_lag_bytes", "replication.replay_lag_s",
    "replication.receive_replay_gap_bytes",
]  # fmt: skip
_SYNC = ("sync", "quorum")
_LOG_LEVELS = {"error": "log_errors", "fatal": "log_fatals", "panic": "log_panics"}


def render(accept: str | None) -> tuple[bytes, str]:
    """The fleet's metrics encoded as `accept` asks (OpenMetrics or the Prometheus text format),
    and the content type to answer with. Reads the database once per call."""
    encoder, content_type = choose_encoder(accept or "")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector())
    return encoder(registry), content_type


def _status_of(node: Node) -> NodeStatus | None:
    try:
        return node.status
    except NodeStatus.DoesNotExist:
        return None


class _Fleet:
    """The rows one scrape reads (the five queries of the module docstring)."""

    def __init__(self):
        self.clusters = list(Cluster.objects.select_related("environment").order_by("name"))
        self.nodes = list(
            Node.objects.exclude(service=Node.Service.NONE)
            .select_related("cluster__environment", "status")
            .order_by("name")
        )
        self.samples = self._latest_samples()
        firing = (
            Alert.objects.filter(state=Alert.State.FIRING)
            .values_list("cluster_id", "severity")
            .annotate(n=Count("id"))
        )
        self.firing = {(cluster_id, severity): n for cluster_id, severity, n in firing}
        self.audit_head = AuditEntry.objects.order_by("-id").values_list("id", "created").first()

    def _latest_samples(self) -> dict[int, dict[str, float]]:
        """{node id: {metric: value}} of each node's latest cycle. A cycle writes all its
        samples with ts = its start = NodeStatus.polled, so the few distinct `polled` times
        name the rows, found through the ts index (a join on ts = polled let the planner scan
        the whole table); a row of an older cycle of a node polled again since is skipped."""
        polled = {n.pk: s.polled for n in self.nodes if (s := _status_of(n)) and s.polled}
        latest: dict[int, dict[str, float]] = defaultdict(dict)
        if not polled:
            return latest
        for node_id, metric, ts, value in latest_samples(set(polled.values())):
            if polled.get(node_id) == ts:
                latest[node_id][metric] = value
        return latest

    def health(self) -> dict[int, health.ClusterHealth]:
        by_cluster: dict[int, list[NodeStatus]] = {c.pk: [] for c in self.clusters}
        for node in self.nodes:
            status = _status_of(node)
            if status is not None and node.cluster_id in by_cluster:
                by_cluster[node.cluster_id].append(status)
        return {c.pk: health.cluster_health(c.kind, by_cluster[c.pk]) for c in self.clusters}


def latest_samples(times: set):
    """(node id, metric, ts, value) of the samples /metrics reads that were taken at `times`."""
    rows = Sample.objects.filter(ts__in=times, metric__in=SAMPLE_METRICS)
    return rows.values_list("node_id", "metric", "ts", "value")


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"dbconsole_{name}", doc, labels=labels)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(f"dbconsole_{name}", doc, labels=labels)


class FleetCollector:
    """A prometheus_client custom collector: `collect()` reads the database and yields the
    metric families (documented in docs/metrics-api.md)."""

    def collect(self) -> Iterator[Metric]:
        fleet = _Fleet()
        yield from self._clusters(fleet)
        yield from self._nodes(fleet)
        yield from self._console(fleet)

    # --- clusters ---------------------------------------------------------------------------

    def _clusters(self, fleet: _Fleet) -> Iterable[Metric]:
        info = _gauge("cluster_info", "A registered cluster; value 1, its kind as a label.",
                      [*CLUSTER_LABELS, "kind"])  # fmt: skip
        state = _gauge(
            "cluster_state",
            "The cluster's state as the console's health rules judge it: one series per state, "
            "1 for the current one (healthy, degraded, down; unknown before any collection).",
            [*CLUSTER_LABELS, "state"],
        )
        standbys = _gauge("cluster_standbys", "Standby servers registered or seen in the cluster.",
                          CLUSTER_LABELS)  # fmt: skip
        in_sync = _gauge(
            "cluster_standbys_in_sync",
            "Standbys that are up and that the primary lists as synchronous (sync or quorum).",
            CLUSTER_LABELS,
        )
        firing = _gauge(
            "alerts_firing",
            "Open (firing) alerts of the cluster by severity, silenced included.",
            [*CLUSTER_LABELS, "severity"],
        )
        healths = fleet.health()
        for cluster in fleet.clusters:
            labels = [cluster.name, cluster.environment.name]
            info.add_metric([*labels, cluster.kind], 1)
            judged = healths[cluster.pk]
            for name in STATES:
                state.add_metric([*labels, name], 1.0 if judged.state == name else 0.0)
            if cluster.kind == Cluster.Kind.POSTGRESQL and judged.state != health.UNKNOWN:
                standbys.add_metric(labels, judged.standbys)
                in_sync.add_metric(labels, judged.standbys_in_sync)
            for severity in Severity.values:
                firing.add_metric([*labels, severity], fleet.firing.get((cluster.pk, severity), 0))
        return [info, state, standbys, in_sync, firing]

    # --- nodes ------------------------------------------------------------------------------

    def _nodes(self, fleet: _Fleet) -> Iterable[Metric]:
        families = _node_families()
        for node in fleet.nodes:
            status = _status_of(node)
            if status is None or status.state == NodeStatus.State.UNKNOWN:
                continue  # never collected: no figure rather than a made-up one
            _add_node(families, node, status, fleet.samples.get(node.pk, {}))
        return families.values()

    # --- the console itself -----------------------------------------------------------------

    def _console(self, fleet: _Fleet) -> Iterable[Metric]:
        last_id = _gauge(
            "audit_last_entry_id",
            "Id of the newest audit entry. It grows with every entry (ids may skip), so its "
            "rate is the audit write rate; it is not the number of entries.",
            [],
        )
        last_ts = _gauge("audit_last_entry_timestamp_seconds",
                         "When the newest audit entry was written (Unix time).", [])  # fmt: skip
        if fleet.audit_head is not None:
            last_id.add_metric([], fleet.audit_head[0])
            last_ts.add_metric([], fleet.audit_head[1].timestamp())
        return [last_id, last_ts]


def _node_families() -> dict[str, Metric]:
    n = NODE_LABELS
    return {
        "info": _gauge(
            "node_info",
            "A polled server; value 1. role_seen is the role it reported at the last poll "
            "(primary, standby, replica, balancer; empty when it did not answer).",
            [*n, "role_seen", "version"],
        ),
        "up": _gauge("node_up", "1 if the server answered the console's last poll, 0 if not.", n),
        "polled": _gauge("node_last_poll_timestamp_seconds",
                         "When the console last polled the server (Unix time). Alert when it "
                         "gets old: the figures below stop changing if collection stops.", n),
        "poll": _gauge("node_poll_duration_seconds",
                       "How long the server's last poll took (its first check).", n),
        "conn": _gauge("connections",
                       "PostgreSQL client connections by pg_stat_activity state.", [*n, "state"]),
        "conn_pct": _gauge("connections_used_percent",
                           "Client connections in use as a percentage of max_connections.", n),
        "threads": _gauge("mariadb_threads_connected",
                          "MariaDB/MySQL open connections (Threads_connected).", n),
        "running": _gauge("mariadb_threads_running",
                          "MariaDB/MySQL threads running a statement (Threads_running).", n),
        "lag_replay": _gauge("replication_replay_lag_bytes",
                             "Bytes of WAL the standby has not replayed yet, as its primary "
                             "sees it (pg_stat_replication.replay_lsn).", n),
        "lag_write": _gauge("replication_write_lag_bytes",
                            "Bytes of WAL the standby has not written yet (write_lsn).", n),
        "lag_flush": _gauge("replication_flush_lag_bytes",
                            "Bytes of WAL the standby has not flushed to disk yet (flush_lsn).",
                            n),
        "lag_s": _gauge("replication_replay_lag_seconds",
                        "Time the standby's replay is behind (pg_stat_replication.replay_lag); "
                        "0 when the standby has caught up and the primary is idle.", n),
        "gap": _gauge("replication_receive_replay_gap_bytes",
                      "On a standby: WAL received but not replayed yet, as the standby says.", n),
        "in_sync": _gauge("replication_in_sync",
                          "1 if the primary lists this standby as synchronous (sync or "
                          "quorum), 0 if asynchronous, potential or not listed.", n),
        "archive_failed": _counter("archive_failed",
                                   "Failed attempts to archive a WAL file "
                                   "(pg_stat_archiver.failed_count; resets with the statistics).",
                                   n),
        "wal_waiting": _gauge("archive_wal_files_waiting",
                              "WAL files waiting to be archived (.ready files in "
                              "pg_wal/archive_status). Growing: archiving is failing or slow.", n),
        "archived_age": _gauge("archive_last_archived_age_seconds",
                               "Seconds since the last WAL file was archived, at the last poll.",
                               n),
        "disk": _gauge("disk_used_percent",
                       "Use of the filesystem holding the data directory (df), last measured.", n),
        "log_lines": _counter("log_lines",
                              "Server log lines by level since the console started reading the "
                              "log (error, fatal, panic).", [*n, "level"]),
        "auth_failures": _counter("log_auth_failures",
                                  "Failed logins (authentication failures) found in the server "
                                  "log since the console started reading it.", n),
        "backends": _gauge("pgpool_backends",
                           "Backends pgpool-II reports, by status: up (up or waiting) or down.",
                           [*n, "status"]),
        "backend_up": _gauge("pgpool_backend_up",
                             "1 if pgpool-II reports this backend up or waiting, 0 if down.",
                             [*n, "backend_id", "backend_host", "backend_port", "backend_role"]),
    }  # fmt: skip


def _add_node(f: dict[str, Metric], node: Node, status: NodeStatus, latest: dict) -> None:
    cluster = node.cluster
    labels = [
        cluster.name if cluster else "",
        cluster.environment.name if cluster else "",
        node.name,
        node.service,
        node.role,
    ]
    up = status.state == NodeStatus.State.UP
    f["info"].add_metric([*labels, status.role_seen, node.version], 1)
    f["up"].add_metric(labels, 1.0 if up else 0.0)
    if status.polled is not None:
        f["polled"].add_metric(labels, status.polled.timestamp())
    if status.poll_ms is not None:
        f["poll"].add_metric(labels, status.poll_ms / 1000)
    if node.service in (Node.Service.POSTGRESQL, Node.Service.MARIADB):
        for level, field in _LOG_LEVELS.items():
            f["log_lines"].add_metric([*labels, level], getattr(status, field))
        f["auth_failures"].add_metric(labels, status.log_auth_failures)
    if node.service == Node.Service.POSTGRESQL and (
        status.in_recovery is True or (not up and node.role == Node.Role.STANDBY)
    ):
        f["in_sync"].add_metric(labels, 1.0 if up and status.sync_state in _SYNC else 0.0)
    if not up:
        return  # what follows would be the figures of an older poll
    if node.service == Node.Service.POSTGRESQL:
        _add_postgresql(f, labels, status, latest)
    elif node.service == Node.Service.MARIADB:
        _add_sample(f["threads"], labels, latest, "connections.threads_connected")
        _add_sample(f["running"], labels, latest, "connections.threads_running")
    elif node.service == Node.Service.PGPOOL:
        _add_pgpool(f, labels, status)
    _add_sample(f["conn_pct"], labels, latest, "connections.used_percent")
    if status.disk_used_percent is not None:
        f["disk"].add_metric(labels, status.disk_used_percent)


def _add_sample(family: Metric, labels: list[str], latest: dict, metric: str) -> None:
    if metric in latest:
        family.add_metric(labels, latest[metric])


def _add_postgresql(f: dict[str, Metric], labels: list[str], status, latest: dict) -> None:
    for state in PG_CONNECTION_STATES:  # a state nobody is in is 0, not a missing series
        f["conn"].add_metric([*labels, state], latest.get(f"connections.{state}", 0.0))
    _add_sample(f["archive_failed"], labels, latest, "archive.failed_count")
    _add_sample(f["wal_waiting"], labels, latest, "archive.ready_count")
    _add_sample(f["archived_age"], labels, latest, "archive.last_archived_age_s")
    gap = latest.get("replication.receive_replay_gap_bytes")
    if gap is not None:
        # After a restart the standby replays WAL from pg_wal before it streams, so the receive
        # position can be behind the replay position: then nothing received waits.
        f["gap"].add_metric(labels, max(gap, 0.0))
    if status.in_recovery is not True:
        return
    _add_sample(f["lag_replay"], labels, latest, "replication.replay_lag_bytes")
    _add_sample(f["lag_write"], labels, latest, "replication.write_lag_bytes")
    _add_sample(f["lag_flush"], labels, latest, "replication.flush_lag_bytes")
    seconds = latest.get("replication.replay_lag_s")
    if seconds is None and latest.get("replication.replay_lag_bytes") == 0:
        # replay_lag turns NULL once a standby has caught up and no WAL is being written
        # (PostgreSQL docs, pg_stat_replication): nothing to replay is no lag.
        seconds = 0.0
    if seconds is not None:
        f["lag_s"].add_metric(labels, seconds)


def _add_pgpool(f: dict[str, Metric], labels: list[str], status: NodeStatus) -> None:
    counts = {"up": 0, "down": 0}
    for b in status.details.get("backends", []):
        is_up = b.get("status") in ("up", "waiting")
        counts["up" if is_up else "down"] += 1
        backend = [b.get("node_id", ""), b.get("hostname", ""), b.get("port", ""),
                   b.get("role", "")]  # fmt: skip
        f["backend_up"].add_metric([*labels, *backend], 1.0 if is_up else 0.0)
    for name, count in counts.items():
        f["backends"].add_metric([*labels, name], count)
