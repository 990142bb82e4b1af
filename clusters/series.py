"""Time series for the charts of the cluster and node pages, downsampled in the database.

`series(node_id, metric, range_key)` returns at most a few hundred points whatever the number
of samples: the range is cut into fixed buckets (RANGES: 30 s for an hour up to 2 h for 30
days) and each bucket is aggregated as the metric asks (METRICS: avg, max or sum). Raw samples
(Sample, read through the (node, metric, -ts) index) and hourly rollups (SampleRollup, for what
clusters.collect_store.rollup_and_prune already rolled up) are aggregated together in one query:
rollup_and_prune moves a sample into its hour in one transaction, so nothing is counted twice.
On a database other than PostgreSQL the buckets are computed in Python (same result).

`cluster_charts` and `node_charts` say which series each page draws; static/js/charts.js
fetches them from the clusters:series endpoint, one request per series.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from psycopg import sql as pgsql

from clusters.models import Node, Sample, SampleRollup

# range key -> (seconds covered, bucket seconds); at most 360 buckets each.
RANGES = {
    "1h": (3600, 30),
    "6h": (6 * 3600, 60),
    "24h": (24 * 3600, 300),
    "7d": (7 * 86400, 1800),
    "30d": (30 * 86400, 7200),
}
DEFAULT_RANGE = "6h"


@dataclass(frozen=True)
class Metric:
    label: str
    unit: str  # bytes, s, %, count
    agg: str  # how a bucket is summarised: avg, max or sum


_CONN = "connections by state: "
METRICS = {
    "replication.replay_lag_bytes": Metric("replay lag", "bytes", "max"),
    "replication.write_lag_bytes": Metric("write lag", "bytes", "max"),
    "replication.flush_lag_bytes": Metric("flush lag", "bytes", "max"),
    "replication.replay_lag_s": Metric("replay lag (time)", "s", "max"),
    "replication.receive_replay_gap_bytes": Metric("received, not replayed", "bytes", "max"),
    "replication.slots_retained_bytes": Metric("WAL retained by slots", "bytes", "max"),
    "replication.standbys_sync": Metric("standbys in sync", "count", "avg"),
    "connections.total": Metric("connections", "count", "avg"),
    "connections.used_percent": Metric("connections used", "%", "max"),
    "connections.active": Metric("active", "count", "avg"),
    "connections.idle": Metric("idle", "count", "avg"),
    "connections.idle_in_transaction": Metric("idle in transaction", "count", "avg"),
    "connections.idle_in_transaction_aborted": Metric("idle in tx (aborted)", "count", "avg"),
    "connections.fastpath_function_call": Metric("fastpath call", "count", "avg"),
    "connections.disabled": Metric("disabled", "count", "avg"),
    "connections.threads_connected": Metric("threads connected", "count", "avg"),
    "connections.threads_running": Metric("threads running", "count", "avg"),
    "archive.ready_count": Metric("WAL files waiting", "count", "max"),
    "archive.failed_count": Metric("archive failures (total)", "count", "max"),
    "archive.last_archived_age_s": Metric("age of last archived WAL", "s", "max"),
    "disk.used_percent": Metric("data directory disk use", "%", "max"),
    "log.error": Metric("ERROR lines", "count", "sum"),
    "log.fatal": Metric("FATAL lines", "count", "sum"),
    "log.panic": Metric("PANIC lines", "count", "sum"),
    "log.auth_failure": Metric("authentication failures", "count", "sum"),
    "pgpool.backends_up": Metric("backends up", "count", "avg"),
    "pgpool.replication_delay_max": Metric("replication delay (pgpool)", "bytes", "max"),
    "up": Metric("answering", "count", "avg"),
}

_SQL = pgsql.SQL("""
SELECT b * %(step)s * 1000 AS t, sum(avg * n) / sum(n) AS avg, max(max) AS max,
       sum(avg * n) AS sum
  FROM (SELECT floor(extract(epoch FROM ts) / %(step)s)::bigint AS b,
               value AS avg, value AS max, 1 AS n
          FROM {sample}
         WHERE node_id = %(node)s AND metric = %(metric)s AND ts >= %(since)s
        UNION ALL
        SELECT floor(extract(epoch FROM hour) / %(step)s)::bigint, avg, max, count
          FROM {rollup}
         WHERE node_id = %(node)s AND metric = %(metric)s AND hour >= %(since)s) AS p
 GROUP BY b ORDER BY b""")


def series(node_id: int, metric: str, range_key: str, *, now=None) -> dict:
    """The points of one node's metric over a range: {"points": [[epoch ms, value], …],
    "step_s", "unit", "label", …}. `metric` must be in METRICS and `range_key` in RANGES
    (KeyError otherwise: the view answers 400)."""
    spec, (seconds, step) = METRICS[metric], RANGES[range_key]
    now = now or timezone.now()
    since = now - timedelta(seconds=seconds)
    if connection.vendor == "postgresql":
        rows = _buckets_sql(node_id, metric, since, step)
    else:
        rows = buckets_python(node_id, metric, since, step)
    column = {"avg": 1, "max": 2, "sum": 3}[spec.agg]
    return {
        "node": node_id, "metric": metric, "label": spec.label, "unit": spec.unit,
        "agg": spec.agg, "range": range_key, "step_s": step,
        "interval_s": settings.CLUSTERS_COLLECT_SECONDS,
        "from": int(since.timestamp() * 1000), "to": int(now.timestamp() * 1000),
        "points": [[int(r[0]), round(float(r[column]), 3)] for r in rows],
    }  # fmt: skip


def _buckets_sql(node_id: int, metric: str, since, step: int) -> list[tuple]:
    tables = {
        "sample": pgsql.Identifier(Sample._meta.db_table),
        "rollup": pgsql.Identifier(SampleRollup._meta.db_table),
    }
    params = {"step": step, "node": node_id, "metric": metric, "since": since}
    with connection.cursor() as cur:
        cur.execute(_SQL.format(**tables).as_string(cur.connection), params)
        return cur.fetchall()


def buckets_python(node_id: int, metric: str, since, step: int) -> list[tuple]:
    """The same buckets as the SQL, computed here: (t ms, avg, max, sum) per bucket."""
    acc: dict[int, list[float]] = {}
    raw = Sample.objects.filter(node_id=node_id, metric=metric, ts__gte=since)
    rolled = SampleRollup.objects.filter(node_id=node_id, metric=metric, hour__gte=since)
    points = [(ts, v, v, 1) for ts, v in raw.values_list("ts", "value")]
    points += list(rolled.values_list("hour", "avg", "max", "count"))
    for ts, avg, most, n in points:
        b = int(ts.timestamp() // step)
        total, count, top = acc.get(b, (0.0, 0, float("-inf")))
        acc[b] = (total + avg * n, count + n, max(top, most))
    return [(b * step * 1000, t / n, top, t) for b, (t, n, top) in sorted(acc.items())]


# --- which series each page draws -------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    """One chart: a title, a unit, and its series as (node id, metric, legend label)."""

    key: str
    title: str
    unit: str
    series: list[tuple[int, str, str]]

    def as_json(self) -> dict:
        return {
            "key": self.key, "title": self.title, "unit": self.unit,
            "series": [{"node": n, "metric": m, "label": label} for n, m, label in self.series],
        }  # fmt: skip


_PG_STATES = ["active", "idle", "idle_in_transaction"]
_MY_STATES = ["threads_connected", "threads_running"]


def _dbs(nodes) -> list[Node]:
    return [n for n in nodes if n.service in (Node.Service.POSTGRESQL, Node.Service.MARIADB)]


def cluster_charts(primary, standbys: list, nodes: list) -> list[Chart]:
    """The cluster page's charts: lag per standby, the primary's connections by state, WAL
    files waiting, disk use and server log errors per database node."""
    dbs = _dbs(nodes)
    pgs = [n for n in dbs if n.service == Node.Service.POSTGRESQL]
    charts = []
    lagging = [n for n in standbys if n.service == Node.Service.POSTGRESQL]
    if lagging:
        series = [(n.pk, "replication.replay_lag_bytes", n.name) for n in lagging]
        charts.append(Chart("lag", "Replication lag per standby (replay)", "bytes", series))
    if primary is not None:
        states = _MY_STATES if primary.service == Node.Service.MARIADB else _PG_STATES
        series = [(primary.pk, f"connections.{s}", METRICS[f"connections.{s}"].label)
                  for s in states]  # fmt: skip
        charts.append(Chart("connections", f"Connections by state on {primary.name}",
                            "count", series))  # fmt: skip
    if pgs:
        series = [(n.pk, "archive.ready_count", n.name) for n in pgs]
        charts.append(Chart("wal", "WAL files waiting to be archived", "count", series))
    if dbs:
        series = [(n.pk, "disk.used_percent", n.name) for n in dbs]
        charts.append(Chart("disk", "Data directory disk use", "%", series))
        series = [(n.pk, "log.error", n.name) for n in dbs]
        charts.append(Chart("log", "Server log ERROR lines", "count", series))
    return charts


def node_charts(node: Node, *, standby: bool) -> list[Chart]:
    """The node page's charts, for that node only."""
    if node.service == Node.Service.PGPOOL:
        return [
            Chart("backends", "Backends up", "count", [(node.pk, "pgpool.backends_up", "up")]),
            Chart("delay", "Replication delay seen by pgpool-II", "bytes",
                  [(node.pk, "pgpool.replication_delay_max", "worst standby")]),
        ]  # fmt: skip
    if node.service not in (Node.Service.POSTGRESQL, Node.Service.MARIADB):
        return []
    charts = []
    if standby and node.service == Node.Service.POSTGRESQL:
        charts.append(Chart("lag", "Replication lag (replay)", "bytes", [
            (node.pk, "replication.replay_lag_bytes", "behind the primary"),
            (node.pk, "replication.receive_replay_gap_bytes", "received, not replayed"),
        ]))  # fmt: skip
    states = _MY_STATES if node.service == Node.Service.MARIADB else _PG_STATES
    charts.append(Chart("connections", "Connections by state", "count", [
        (node.pk, f"connections.{s}", METRICS[f"connections.{s}"].label) for s in states
    ]))  # fmt: skip
    if node.service == Node.Service.POSTGRESQL:
        charts.append(Chart("wal", "WAL files waiting to be archived", "count",
                            [(node.pk, "archive.ready_count", "waiting")]))  # fmt: skip
    charts.append(Chart("disk", "Data directory disk use", "%",
                        [(node.pk, "disk.used_percent", "used")]))  # fmt: skip
    charts.append(Chart("log", "Server log lines", "count", [
        (node.pk, "log.error", "ERROR"), (node.pk, "log.fatal", "FATAL"),
        (node.pk, "log.auth_failure", "auth failures"),
    ]))  # fmt: skip
    return charts
