"""Storing what a collection cycle saw, and keeping the stored samples to their retention.

`store_cycle` writes one cycle's Sample rows (bulk) and one NodeStatus per node in one
transaction; a standby's replication fields come from its primary's answer in the same cycle.
`rollup_and_prune` (the clusters.rollup_samples task) rolls old samples up into hourly
SampleRollup rows and deletes what is past its retention.

Separate from polling (clusters.collect_poll) and from the cycle's threads (clusters.collect):
nothing here talks to a managed server; it only writes the console's own database.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone
from psycopg import sql as pgsql

from clusters.collect_poll import NodeResult
from clusters.models import Node, NodeStatus, Sample, SampleRollup

_LOG_COUNTERS = {
    "error": "log_errors",
    "fatal": "log_fatals",
    "panic": "log_panics",
    "auth_failure": "log_auth_failures",
}

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


def store_cycle(rows: list[Node], statuses: dict, results: dict[int, NodeResult], now) -> None:
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
