"""Reading one node's facts: what the collector asks a node, and what it makes of the answer.

`poll_node(node, status)` asks one node through the executor only (every remote call audited
there) and returns a NodeResult; it never raises for what the node does:
- PostgreSQL: one statement (sql/monitor-pg.sql): recovery, connections by state, archiver,
  `.ready` WAL files, and on a primary its standbys from pg_stat_replication with lags;
- pgpool-II: SHOW POOL_NODES (sql/pgpool-nodes.sql) on the node itself;
- MariaDB/MySQL: one statement (sql/monitor-mariadb.sql): read_only, threads connected;
- disk: `df --output=pcent` of the data directory over SSH, every CLUSTERS_COLLECT_DISK_EVERY-th
  cycle (a counter kept in NodeStatus.details);
- the server log: clusters.logs.read_new from the cursor in NodeStatus (placed at the log's end
  on the first collection), its lines counted by clusters.logs.classify.
A node's first check failing makes it `down`; disk and log failures are recorded
(`details["disk_error"]`, `log_error`) without that.

Separate from the cycle (clusters.collect), which only runs these polls in parallel under a
deadline, and from storing (clusters.collect_store), which writes nothing remote: this module is
the one that talks to the managed servers, and bench/collect.py times it on its own.
"""

import json
import posixpath
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from clusters import logs
from clusters.models import Node, NodeStatus
from console.executor import ExecutorError, run_command, run_sql

_LOG_BYTES = 256 * 1024  # at most this much log is read per node and cycle
_SUDO = {Node.Service.POSTGRESQL: "postgres", Node.Service.MARIADB: "mysql"}
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
    result.details = _pg_details(row, receiver, slots)


def _pg_details(row: dict, receiver: dict | None, slots: list[dict]) -> dict:
    """What the cluster page shows of a PostgreSQL node beyond its samples."""
    details = {
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
        details["current_logfile"] = row["current_logfile"]
    return details


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
