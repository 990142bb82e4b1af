"""A cluster's state from its nodes' latest NodeStatus rows: healthy, degraded, down or unknown.

Pure: no queries and no network here; `cluster_health(kind, statuses)` takes the rows (each with
its `node` loaded) and `health_of_clusters(clusters)` loads them in one query for a page.

Rules (PostgreSQL):
- down: no node answered as primary, and the registered primary is unreachable;
- degraded: a standby down or not streaming, no synchronous standby although the cluster has
  standbys, a pgpool-II node down, or a backend pgpool-II reports down;
- healthy: none of those;
- unknown: no node was collected yet.
MariaDB/MySQL: down when no server answers as primary, degraded when a replica is down.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from clusters.models import Cluster, Node, NodeStatus

HEALTHY, DEGRADED, DOWN, UNKNOWN = "healthy", "degraded", "down", "unknown"
_SYNC = ("sync", "quorum")


@dataclass(frozen=True)
class ClusterHealth:
    """A cluster's state, why (`reasons`, for people), the worst standby replay lag in bytes
    (None when no standby reports one) and how many standbys are synchronous."""

    state: str
    reasons: list[str] = field(default_factory=list)
    worst_lag_bytes: int | None = None
    standbys: int = 0
    standbys_in_sync: int = 0


def cluster_health(kind: str, statuses: Iterable[NodeStatus]) -> ClusterHealth:
    """The state of one cluster of `kind` (Cluster.Kind) from its nodes' statuses."""
    rows = list(statuses)
    if not rows or all(s.state == NodeStatus.State.UNKNOWN for s in rows):
        return ClusterHealth(UNKNOWN, ["not collected yet"])
    if kind == Cluster.Kind.MARIADB:
        return _mariadb(rows)
    return _postgresql(rows)


def _is_up(s: NodeStatus) -> bool:
    return s.state == NodeStatus.State.UP


def _postgresql(rows: list[NodeStatus]) -> ClusterHealth:
    dbs = [s for s in rows if s.node.service == Node.Service.POSTGRESQL]
    pools = [s for s in rows if s.node.service == Node.Service.PGPOOL]
    primaries = [s for s in dbs if _is_up(s) and s.in_recovery is False]
    standbys = [s for s in dbs if s not in primaries]  # a former primary counts as one
    in_sync = [s for s in standbys if _is_up(s) and s.sync_state in _SYNC]
    lags = [s.replay_lag_bytes for s in standbys if s.replay_lag_bytes is not None]
    figures = {
        "worst_lag_bytes": max(lags) if lags else None,
        "standbys": len(standbys),
        "standbys_in_sync": len(in_sync),
    }
    if not primaries:
        down = [s.node.name for s in dbs if s.node.role == Node.Role.PRIMARY and not _is_up(s)]
        reason = f"primary {', '.join(down)} unreachable" if down else "no primary answers"
        return ClusterHealth(DOWN, [reason], **figures)
    reasons = []
    if len(primaries) > 1:
        reasons.append(f"more than one primary: {', '.join(s.node.name for s in primaries)}")
    for s in standbys:
        if not _is_up(s):
            reasons.append(f"standby {s.node.name} is down")
        elif s.replication_state != "streaming":
            reasons.append(f"standby {s.node.name} is not streaming")
    if standbys and not in_sync:
        reasons.append("no sync standby")
    for s in pools:
        if not _is_up(s):
            reasons.append(f"pgpool-II {s.node.name} is down")
            continue
        for backend in s.details.get("backends", []):
            if backend.get("status") not in ("up", "waiting"):
                where = f"{backend.get('hostname')}:{backend.get('port')}"
                reasons.append(f"pgpool-II {s.node.name} reports backend {where} down")
    return ClusterHealth(DEGRADED if reasons else HEALTHY, reasons, **figures)


def _mariadb(rows: list[NodeStatus]) -> ClusterHealth:
    primaries = [s for s in rows if _is_up(s) and s.role_seen == "primary"]
    if not primaries:
        return ClusterHealth(DOWN, ["no server answers as primary"])
    reasons = [f"{s.node.name} is down" for s in rows if not _is_up(s)]
    return ClusterHealth(DEGRADED if reasons else HEALTHY, reasons)


def health_of_clusters(clusters: Iterable[Cluster]) -> dict[int, ClusterHealth]:
    """Each cluster's health by id, reading all their NodeStatus rows in one query."""
    clusters = list(clusters)
    by_cluster: dict[int, list[NodeStatus]] = {c.pk: [] for c in clusters}
    rows = NodeStatus.objects.filter(node__cluster__in=clusters).select_related("node")
    for status in rows:
        by_cluster[status.node.cluster_id].append(status)
    return {c.pk: cluster_health(c.kind, by_cluster[c.pk]) for c in clusters}
