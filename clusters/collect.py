"""The monitoring collector: one cycle polls every node in parallel and stores what it saw.

`collect_cycle(nodes)` runs each node's poll in a bounded thread pool (CLUSTERS_COLLECT_WORKERS)
through the executor only (every remote call audited there):
- PostgreSQL: one statement (sql/monitor-pg.sql): recovery, connections by state, archiver,
  `.ready` WAL files, and on a primary its standbys from pg_stat_replication with lags;
- pgpool-II: SHOW POOL_NODES (sql/pgpool-nodes.sql) on the node itself;
- MariaDB/MySQL: one statement (sql/monitor-mariadb.sql): read_only, threads connected;
- disk: `df --output=pcent` of the data directory over SSH, every CLUSTERS_COLLECT_DISK_EVERY-th
  cycle (a counter kept in NodeStatus.details);
- the server log: clusters.logs.read_new from the cursor in NodeStatus (placed at the log's end
  on the first collection), its lines counted by clusters.logs.classify.
Bare hosts (service "none") are not polled. A node's first check failing makes it `down`;
disk and log failures are recorded (`details["disk_error"]`, `log_error`) without that.

Deadlines: each node has `timeout_per_node` seconds from the moment a worker starts it (passed
to the executor as the statement/command timeout, and enforced by the cycle: a node still
running after it plus a grace is recorded down with "no answer", and the cycle stops waiting
for it; its thread finishes on its own, its audit entry is completed by the executor). So a
hanging node delays the others only by holding one worker.

The cycle then writes, from this thread: Sample rows (bulk), and one NodeStatus per node. A
standby's replication fields come from its primary's answer in the same cycle.
"""

import json
import posixpath
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection, connections, transaction
from django.utils import timezone
from psycopg import sql as pgsql

from clusters import logs
from clusters.models import Node, NodeStatus, Sample, SampleRollup
from console.executor import ExecutorError, run_command, run_sql

_GRACE = 2.0  # seconds past a node's deadline before the cycle gives up on it
_LOG_BYTES = 256 * 1024  # at most this much log is read per node and cycle
_LOG_COUNTERS = {
    "error": "log_errors",
    "fatal": "log_fatals",
    "panic": "log_panics",
    "auth_failure": "log_auth_failures",
}
_SUDO = {Node.Service.POSTGRESQL: "postgres", Node.Service.MARIADB: "mysql"}
_SLOW_FIRST = {Node.Service.PGPOOL: 0, Node.Service.MARIADB: 1, Node.Service.POSTGRESQL: 2}
_FLAVOR = {Node.Service.POSTGRESQL: "postgresql", Node.Service.MARIADB: "mariadb"}


@dataclass
class NodeResult:
    """What one node's poll found; `state` is up, or down with `error`."""

    node_id: int
    name: str
    state: str = NodeStatus.State.DOWN
    error: str = ""
    poll_ms: int | None = None
    role_seen: str = ""
    in_recovery: bool | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    standbys: list[dict] = field(default_factory=list)
    disk_used_percent: float | None = None
    log_cursor: logs.LogCursor | None = None
    log_counts: dict[str, int] = field(default_factory=dict)
    log_error: str = ""


@dataclass
class CycleResult:
    """One cycle: per node results by node id, and the nodes given up on at their deadline."""

    started: datetime
    duration_s: float
    results: dict[int, NodeResult]
    timed_out: list[str]

    @property
    def up(self) -> list[str]:
        return sorted(r.name for r in self.results.values() if r.state == NodeStatus.State.UP)

    @property
    def down(self) -> list[str]:
        return sorted(r.name for r in self.results.values() if r.state != NodeStatus.State.UP)

    def results_by_name(self) -> dict[str, NodeResult]:
        return {r.name: r for r in self.results.values()}

    def summary(self) -> dict:
        return {
            "nodes": len(self.results),
            "up": len(self.up),
            "down": self.down,
            "timed_out": self.timed_out,
            "duration_s": round(self.duration_s, 3),
        }


def collect_cycle(
    nodes, *, job=None, timeout_per_node: float = 10, disk: bool | None = None, logs_: bool = True
) -> CycleResult:
    """Poll `nodes` (Node rows or ids) in parallel, store Samples and NodeStatus, return what
    was seen. Guarantees: returns within about `timeout_per_node` + 2 s of the last node's
    start, whatever the nodes do; every node given is recorded (up, or down with the reason).
    `disk` forces (True) or skips (False) the disk check; by default it runs every
    CLUSTERS_COLLECT_DISK_EVERY-th cycle of each node."""
    ids = [n.pk if isinstance(n, Node) else n for n in nodes]
    rows = list(
        Node.objects.filter(pk__in=ids)
        .exclude(service=Node.Service.NONE)
        .select_related("ssh_credential", "db_credential", "cluster")
    )
    rows.sort(key=lambda n: _SLOW_FIRST.get(n.service, 9))  # the slowest polls start first
    statuses = {s.node_id: s for s in NodeStatus.objects.filter(node__in=rows)}
    started = timezone.now()
    t0 = time.monotonic()
    results, timed_out = _run_pool(rows, statuses, job, timeout_per_node, disk, logs_)
    _store(rows, statuses, results, started)
    return CycleResult(started, time.monotonic() - t0, results, timed_out)


class _Pool:
    """Worker threads taking nodes from a queue; each keeps one console connection (for the
    executor's audit entries) for all its nodes and closes it when the queue is empty."""

    def __init__(self, rows, statuses, poll_kwargs: dict):
        self.todo: queue.SimpleQueue = queue.SimpleQueue()
        for node in rows:
            self.todo.put(node)
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        self.begun: dict[int, float] = {}
        self.statuses, self.poll_kwargs = statuses, poll_kwargs

    def start_worker(self) -> None:
        threading.Thread(target=self._work, name="collect", daemon=True).start()

    def _work(self) -> None:
        try:
            while True:
                try:
                    node = self.todo.get_nowait()
                except queue.Empty:
                    return
                self.begun[node.pk] = time.monotonic()
                try:
                    seen = poll_node(node, self.statuses.get(node.pk), **self.poll_kwargs)
                except Exception as e:  # a bug in a poll must not lose the other nodes
                    seen = NodeResult(node.pk, node.name, error=f"collector error: {e!r}")
                self.done.put(seen)
        finally:
            connection.close()


def _run_pool(rows, statuses, job, timeout, disk, with_logs):
    """Poll `rows` with CLUSTERS_COLLECT_WORKERS threads; give up on a node `timeout` + grace
    after its start (recorded down, its thread left to finish alone, a new worker started in
    its place so the others keep their pace)."""
    pool = _Pool(rows, statuses, {"job": job, "timeout": timeout, "disk": disk,
                                  "with_logs": with_logs})  # fmt: skip
    for _ in range(max(1, min(settings.CLUSTERS_COLLECT_WORKERS, len(rows)))):
        pool.start_worker()
    results: dict[int, NodeResult] = {}
    timed_out: list[str] = []
    checked = time.monotonic()
    while len(results) < len(rows):
        try:
            seen = pool.done.get(timeout=0.2)
            results.setdefault(seen.node_id, seen)  # a node given up on stays given up on
        except queue.Empty:
            pass
        now = time.monotonic()
        if now - checked < 0.2:
            continue
        checked = now
        for node in rows:
            started = pool.begun.get(node.pk)
            if node.pk not in results and started and now - started > timeout + _GRACE:
                timed_out.append(node.name)
                error = f"no answer within {timeout:g} s"
                results[node.pk] = NodeResult(node.pk, node.name, error=error)
                pool.start_worker()
    return results, timed_out


def poll_node(
    node: Node, status: NodeStatus | None, *, job=None, timeout: float = 10,
    disk: bool | None = None, with_logs: bool = True,
) -> NodeResult:  # fmt: skip
    """Poll one node through the executor; never raises for what the node does."""
    result = NodeResult(node.pk, node.name)
    t0 = time.monotonic()
    # Audited like every remote call, with the job named in the entries; kept out of the job's
    # log, which would otherwise get two lines (one a whole statement) per node and cycle.
    call = {"job": job, "timeout": timeout, "label": f"monitor {node.name}", "job_log": False}
    try:
        if node.service == Node.Service.POSTGRESQL:
            _poll_pg(node, result, call)
        elif node.service == Node.Service.PGPOOL:
            _poll_pgpool(node, result, call)
        else:
            _poll_mariadb(node, result, call)
        result.state = NodeStatus.State.UP
    except ExecutorError as e:
        result.error = str(e)[:2000]
    result.poll_ms = int((time.monotonic() - t0) * 1000)
    result.metrics["up"] = 1.0 if result.state == NodeStatus.State.UP else 0.0
    if result.state != NodeStatus.State.UP:
        return result
    if _disk_due(status, disk) and node.data_directory:
        _poll_disk(node, result, call)
    if with_logs and node.log_path and node.service in _FLAVOR:
        _poll_log(node, status, result, job)
    return result


def _one_row(sql_result) -> dict:
    return dict(zip(sql_result.columns, sql_result.rows[0], strict=True))


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def _poll_pg(node: Node, result: NodeResult, call: dict) -> None:
    """One statement (sql/monitor-pg.sql): metrics as samples; for the cluster page, in
    details: the archiver, the WAL receiver (a standby's), the replication slots with the WAL
    they retain; the standbys (pg_stat_replication) go to result.standbys."""
    row = _one_row(run_sql(node, "clusters:monitor-pg", **call))
    result.in_recovery = bool(row["in_recovery"])
    result.role_seen = "standby" if result.in_recovery else "primary"
    m = result.metrics
    for state, count in (_json(row["connections"]) or {}).items():
        m[f"connections.{state.replace(' ', '_').replace('(', '').replace(')', '')}"] = count
    m["connections.total"] = float(row["connections_total"])
    m["connections.used_percent"] = 100.0 * row["connections_total"] / row["max_connections"]
    m["archive.failed_count"] = float(row["failed_count"])
    m["archive.ready_count"] = float(row["archive_ready"])
    if row["last_archived_age"] is not None:
        m["archive.last_archived_age_s"] = float(row["last_archived_age"])
    if row["last_failed_age"] is not None:  # failing while newer than the last success
        m["archive.last_failed_age_s"] = float(row["last_failed_age"])
    if row["own_replay_gap_bytes"] is not None:
        m["replication.receive_replay_gap_bytes"] = float(row["own_replay_gap_bytes"])
    result.standbys = _json(row["standbys"]) or []
    if not result.in_recovery:
        m["replication.standbys"] = float(len(result.standbys))
        m["replication.standbys_sync"] = float(
            sum(1 for s in result.standbys if s["sync_state"] in ("sync", "quorum"))
        )
    slots = _json(row["slots"]) or []
    if slots:
        retained = max(s["retained_bytes"] or 0 for s in slots)
        m["replication.slots_retained_bytes"] = float(retained)
        m["replication.slots_inactive"] = float(sum(1 for s in slots if not s["active"]))
    receiver = _json(row["receiver"])
    if receiver and receiver.get("last_msg_age_s") is not None:
        m["replication.receiver_last_msg_age_s"] = float(receiver["last_msg_age_s"])
    result.details = {
        "receiver_status": row["receiver_status"] or "",
        "receiver": receiver,
        "slots": slots,
        "wal_lsn": row["wal_lsn"],
        "max_connections": row["max_connections"],
        "connections": _json(row["connections"]) or {},
        "archiver": {
            "archived_count": row["archived_count"],
            "failed_count": row["failed_count"],
            "last_archived_wal": row["last_archived_wal"],
            "last_archived_time": _iso(row["last_archived_time"]),
            "last_failed_wal": row["last_failed_wal"],
            "last_failed_time": _iso(row["last_failed_time"]),
            "ready_count": row["archive_ready"],
        },
    }
    if row["current_logfile"]:
        result.details["current_logfile"] = row["current_logfile"]


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


# pgpool-II's delay_threshold changes only with its configuration: read once per node and
# re-read every _PGPOOL_SETTINGS_TTL seconds (a second statement: pgpool answers only the first
# of several commands sent together), so a cycle stays one round trip per node.
_PGPOOL_SETTINGS_TTL = 600.0
_pgpool_settings: dict[tuple, tuple[float, dict]] = {}


def _pgpool_delay_threshold(node: Node, call: dict) -> dict:
    key = (node.pk, node.address, node.db_port)
    cached = _pgpool_settings.get(key)
    if cached and time.monotonic() - cached[0] < _PGPOOL_SETTINGS_TTL:
        return cached[1]
    try:
        res = run_sql(node, "clusters:pgpool-delay-threshold", **call)
        found = {"delay_threshold": int(res.rows[0][0])}
    except (ExecutorError, IndexError, ValueError) as e:
        return {"delay_threshold_error": str(e)[:500]}  # asked again next cycle
    _pgpool_settings[key] = (time.monotonic(), found)
    return found


def _poll_pgpool(node: Node, result: NodeResult, call: dict) -> None:
    """SHOW POOL_NODES (sql/pgpool-nodes.sql): each backend's status, role, weight, select
    count, load balance node and replication delay (bytes in pgpool-II 4.3), with pgpool's
    delay_threshold (bytes, 0 = no check) to judge the delay against."""
    res = run_sql(node, "clusters:pgpool-nodes", **call)
    wanted = ("node_id", "hostname", "port", "status", "pg_status", "role", "pg_role",
              "lb_weight", "select_cnt", "load_balance_node", "replication_delay",
              "replication_state", "replication_sync_state", "last_status_change")  # fmt: skip
    backends = []
    for row in res.rows:
        values = dict(zip(res.columns, row, strict=True))
        backends.append({k: str(values[k]) for k in wanted if k in values})
    result.role_seen = "balancer"
    result.details = {"backends": backends, **_pgpool_delay_threshold(node, call)}
    down = [b for b in backends if b.get("status") not in ("up", "waiting")]
    result.metrics["pgpool.backends_up"] = float(len(backends) - len(down))
    result.metrics["pgpool.backends_down"] = float(len(down))
    delays = [_float(b.get("replication_delay")) for b in backends if b.get("role") == "standby"]
    delays = [d for d in delays if d is not None]
    if delays:
        result.metrics["pgpool.replication_delay_max"] = max(delays)


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _poll_mariadb(node: Node, result: NodeResult, call: dict) -> None:
    row = _one_row(run_sql(node.mysql_target(), "clusters:monitor-mariadb", **call))
    result.role_seen = "replica" if int(row["read_only"]) else "primary"
    result.in_recovery = None
    result.metrics["connections.threads_connected"] = float(row["threads_connected"])
    result.metrics["connections.threads_running"] = float(row["threads_running"])
    result.metrics["connections.used_percent"] = (
        100.0 * float(row["threads_connected"]) / float(row["max_connections"])
    )


def _disk_due(status: NodeStatus | None, disk: bool | None) -> bool:
    if disk is not None:
        return disk
    every = settings.CLUSTERS_COLLECT_DISK_EVERY
    cycles = (status.details.get("cycles", 0) if status else 0) if every > 1 else 0
    return cycles % every == 0


def _poll_disk(node: Node, result: NodeResult, call: dict) -> None:
    argv = ["df", "--output=pcent", "--", node.data_directory]
    try:
        out = run_command(node, argv, **call).stdout.split()
        percent = float(out[-1].rstrip("%"))
    except (ExecutorError, IndexError, ValueError) as e:
        result.details["disk_error"] = str(e)[:500] or "df printed no figure"
        return
    result.disk_used_percent = percent
    result.metrics["disk.used_percent"] = percent


def _poll_log(node: Node, status: NodeStatus | None, result: NodeResult, job) -> None:
    sudo = _SUDO.get(node.service)
    current = result.details.get("current_logfile")
    if current and not current.startswith("/"):
        current = posixpath.join(node.data_directory, current)
    try:
        if status is None or status.log_inode is None or not status.log_path:
            result.log_cursor = logs.cursor_at_end(
                node, current or node.log_path, job=job, sudo_user=sudo
            )
            result.log_counts = dict.fromkeys(logs.KINDS, 0)
            return
        cursor = logs.LogCursor(status.log_path, status.log_inode, status.log_offset)
        cursor, lines = logs.read_new(
            node, cursor, max_bytes=_LOG_BYTES, job=job, sudo_user=sudo, current_path=current
        )
    except ExecutorError as e:  # LogUnreadable is one
        result.log_error = str(e)[:500]
        return
    result.log_cursor = cursor
    result.log_counts = logs.classify(lines, _FLAVOR[node.service], keep=0).counts
    for kind, count in result.log_counts.items():
        result.metrics[f"log.{kind}"] = float(count)


# --- storing ------------------------------------------------------------------------------------

_STATUS_FIELDS = [
    "polled", "poll_ms", "reachable", "state", "error", "role_seen", "in_recovery",
    "replication_state", "sync_state", "replay_lag_bytes", "disk_used_percent", "log_path",
    "log_inode", "log_offset", *_LOG_COUNTERS.values(), "log_error", "details",
]  # fmt: skip


def _standby_rows(rows: list[Node], results: dict[int, NodeResult]) -> dict[int, dict]:
    """pg_stat_replication rows of the primaries that answered, by the standby node they name
    (matched on application_name = node name, else client address = node address)."""
    found: dict[int, dict] = {}
    for primary in rows:
        seen = results[primary.pk]
        if primary.service != Node.Service.POSTGRESQL or seen.in_recovery is not False:
            continue
        peers = [n for n in rows if n.cluster_id == primary.cluster_id and n.pk != primary.pk]
        for standby in seen.standbys:
            match = [n for n in peers if n.name == standby["application_name"]] or [
                n for n in peers if n.address == standby["client_addr"]
            ]
            if match:
                found[match[0].pk] = standby
    return found


def _apply(status: NodeStatus, seen: NodeResult, standby: dict | None, now) -> None:
    status.polled, status.poll_ms = now, seen.poll_ms
    status.state, status.error = seen.state, seen.error
    status.reachable = seen.state == NodeStatus.State.UP
    status.role_seen, status.in_recovery = seen.role_seen, seen.in_recovery
    status.replication_state = (standby or {}).get("state") or ""
    status.sync_state = (standby or {}).get("sync_state") or ""
    lag = (standby or {}).get("replay_lag_bytes")
    status.replay_lag_bytes = int(lag) if lag is not None else None
    if seen.disk_used_percent is not None:
        status.disk_used_percent = seen.disk_used_percent
    if seen.log_cursor is not None:
        c = seen.log_cursor
        status.log_path, status.log_inode, status.log_offset = c.path, c.inode, c.offset
        for kind, name in _LOG_COUNTERS.items():
            setattr(status, name, getattr(status, name) + seen.log_counts.get(kind, 0))
    status.log_error = seen.log_error
    cycles = status.details.get("cycles", 0) + 1
    status.details = {**seen.details, "cycles": cycles}
    if seen.standbys:
        status.details["standbys"] = seen.standbys


def _store(rows: list[Node], statuses: dict, results: dict[int, NodeResult], now) -> None:
    """Write the cycle's samples and statuses (one transaction, bulk statements)."""
    standbys = _standby_rows(rows, results)
    samples: list[Sample] = []
    updated: list[NodeStatus] = []
    for node in rows:
        seen = results[node.pk]
        standby = standbys.get(node.pk)
        status = statuses.get(node.pk) or NodeStatus(node=node)
        _apply(status, seen, standby, now)
        updated.append(status)
        metrics = dict(seen.metrics)
        for key in ("replay_lag_bytes", "write_lag_bytes", "flush_lag_bytes", "replay_lag_s"):
            if standby and standby.get(key) is not None:
                metrics[f"replication.{key}"] = float(standby[key])
        samples += [Sample(node=node, metric=k, ts=now, value=v) for k, v in metrics.items()]
    close_old_connections()
    with transaction.atomic():
        Sample.objects.bulk_create(samples, batch_size=2000)
        NodeStatus.objects.bulk_create(
            updated, update_conflicts=True, unique_fields=["node"], update_fields=_STATUS_FIELDS
        )


# --- retention ----------------------------------------------------------------------------------


_ROLLUP = pgsql.SQL("""
INSERT INTO {rollup} AS r (node_id, metric, hour, min, max, avg, count)
SELECT node_id, metric, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       min(value), max(value), avg(value), count(*)
  FROM {sample} WHERE ts < %s GROUP BY 1, 2, 3
    ON CONFLICT (node_id, metric, hour) DO UPDATE
   SET min = least(r.min, excluded.min), max = greatest(r.max, excluded.max),
       avg = (r.avg * r.count + excluded.avg * excluded.count) / (r.count + excluded.count),
       count = r.count + excluded.count""")
_PRUNE = pgsql.SQL("DELETE FROM {sample} WHERE ts < %s")


def rollup_and_prune(now: datetime | None = None) -> dict:
    """Roll raw samples older than CLUSTERS_SAMPLE_RAW_DAYS (cut at a whole hour) up into
    hourly SampleRollup rows, delete those samples, and delete rollups older than
    CLUSTERS_SAMPLE_ROLLUP_DAYS. Guarantees: one transaction, so a sample is either still raw
    or counted in its hour; running it again later merges into existing hours (min of mins,
    max of maxes, averages weighted by count) rather than counting twice."""
    now = now or timezone.now()
    cutoff = (now - timedelta(days=settings.CLUSTERS_SAMPLE_RAW_DAYS)).replace(
        minute=0, second=0, microsecond=0
    )
    oldest = now - timedelta(days=settings.CLUSTERS_SAMPLE_ROLLUP_DAYS)
    tables = {
        "sample": pgsql.Identifier(Sample._meta.db_table),
        "rollup": pgsql.Identifier(SampleRollup._meta.db_table),
    }
    with transaction.atomic(), connections["default"].cursor() as cur:
        raw = cur.connection  # psycopg's, to compose the table names
        cur.execute(_ROLLUP.format(**tables).as_string(raw), [cutoff])
        rolled = cur.rowcount
        cur.execute(_PRUNE.format(**tables).as_string(raw), [cutoff])
        deleted = cur.rowcount
        expired, _ = SampleRollup.objects.filter(hour__lt=oldest).delete()
    return {"hours_rolled": rolled, "samples_deleted": deleted, "rollups_expired": expired}
