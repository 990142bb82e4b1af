"""What the cluster page shows, from the cluster's NodeStatus rows (clusters.collect).

`cluster_page(cluster)` reads the cluster's nodes with their NodeStatus (one query) and its
firing alerts (one query): a constant number of queries whatever the fleet size. The topology,
the replication, pgpool-II, archiving and connection panels are built from NodeStatus.details
(what monitor-pg.sql and SHOW POOL_NODES returned at the last cycle).
"""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clusters import health
from clusters.models import Alert, Cluster, Node, NodeStatus
from clusters.topology import Topology, layout


def _attach_statuses(nodes: list[Node]) -> list[NodeStatus]:
    """The nodes' statuses (a node never collected gets an unsaved `unknown` one)."""
    statuses = []
    for node in nodes:
        try:
            status = node.status
        except NodeStatus.DoesNotExist:
            status = NodeStatus(node=node)
        status.node = node
        statuses.append(status)
    return statuses


@dataclass
class NodeView:
    """A node with its latest status, as the cluster page's panels show it."""

    node: Node
    status: NodeStatus

    @property
    def up(self) -> bool:
        return self.status.state == NodeStatus.State.UP

    @property
    def details(self) -> dict:
        return self.status.details or {}


@dataclass
class ClusterPage:
    cluster: Cluster
    health: health.ClusterHealth
    nodes: list[NodeView]
    primary: NodeView | None
    standbys: list[NodeView]
    pools: list[NodeView]
    replication: list[dict]
    slots: list[dict]
    receivers: list[dict]
    pool_backends: list[dict]
    archiving: list[dict]
    connections: list[dict]
    connection_states: list[str]
    alerts: list[Alert]
    topology: Topology
    polled: datetime | None


def _age_s(value, now: datetime) -> float | None:
    when = parse_datetime(value) if isinstance(value, str) else value
    return (now - when).total_seconds() if when else None


def _node_for(views: list[NodeView], name: str = "", address: str = "", port=None):
    for v in views:
        if name and v.node.name == name:
            return v.node
    for v in views:
        if address and v.node.address == address:
            if port is None or str(v.node.db_port or 5432) == str(port):
                return v.node
    return None


def _replication(primary: NodeView | None, dbs: list[NodeView]) -> list[dict]:
    if primary is None:
        return []
    rows = []
    for s in primary.details.get("standbys", []):
        node = _node_for(dbs, s.get("application_name", ""), s.get("client_addr", ""))
        rows.append({**s, "node": node})
    return rows


def _slots(dbs: list[NodeView]) -> list[dict]:
    return [{**slot, "on": v.node} for v in dbs for slot in v.details.get("slots", [])]


def _receivers(dbs: list[NodeView]) -> list[dict]:
    rows = []
    for v in dbs:
        receiver = v.details.get("receiver")
        if v.up and v.status.in_recovery:
            rows.append({"node": v.node, **(receiver or {"status": "not running"})})
    return rows


def _pool_backends(pools: list[NodeView], dbs: list[NodeView]) -> list[dict]:
    panels = []
    for v in pools:
        threshold = v.details.get("delay_threshold")
        backends = []
        for b in v.details.get("backends", []):
            delay = _float(b.get("replication_delay"))
            over = bool(threshold and delay is not None and delay > threshold)
            node = _node_for(dbs, "", b.get("hostname", ""), b.get("port"))
            backends.append({**b, "node": node, "delay": delay, "over_threshold": over})
        panels.append({
            "pool": v, "delay_threshold": threshold, "backends": backends,
            "error": v.details.get("delay_threshold_error", ""),
        })  # fmt: skip
    return panels


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _archiving(dbs: list[NodeView], now: datetime) -> list[dict]:
    rows = []
    for v in dbs:
        archiver = v.details.get("archiver")
        if archiver is None:
            continue
        rows.append({
            "node": v.node, **archiver,
            "last_archived_age_s": _age_s(archiver.get("last_archived_time"), now),
            "last_failed_age_s": _age_s(archiver.get("last_failed_time"), now),
            "failing": bool(archiver.get("last_failed_time")) and (
                _age_s(archiver.get("last_failed_time"), now) or 0
            ) < (_age_s(archiver.get("last_archived_time"), now) or float("inf")),
        })  # fmt: skip
    return rows


def _connections(dbs: list[NodeView]) -> tuple[list[dict], list[str]]:
    states: list[str] = ["active", "idle", "idle in transaction"]
    rows = []
    for v in dbs:
        if "connections" not in v.details:
            continue
        by_state = v.details["connections"]
        states += [s for s in by_state if s not in states]
        total, most = sum(by_state.values()), v.details.get("max_connections")
        percent = 100.0 * total / most if most else None
        rows.append({"node": v.node, "by_state": by_state, "total": total, "max": most,
                     "percent": percent})  # fmt: skip
    for row in rows:
        row["cells"] = [row["by_state"].get(s, 0) for s in states]
    return rows, states


def cluster_page(cluster: Cluster) -> ClusterPage:
    """Everything the cluster page shows, from two queries (nodes with status, alerts)."""
    nodes = list(cluster.nodes.select_related("status").order_by("name"))
    views = [NodeView(s.node, s) for s in _attach_statuses(nodes)]
    state = health.cluster_health(cluster.kind, [v.status for v in views])
    dbs = [v for v in views if v.node.service in (Node.Service.POSTGRESQL, Node.Service.MARIADB)]
    pools = [v for v in views if v.node.service == Node.Service.PGPOOL]
    primaries = [v for v in dbs if v.up and v.status.role_seen == "primary"]
    registered = [v for v in dbs if v.node.role == Node.Role.PRIMARY]
    primary = (primaries or registered or [None])[0]
    standbys = [v for v in dbs if v is not primary]
    now = timezone.now()
    connections, connection_states = _connections(dbs)
    alerts = list(
        Alert.objects.filter(cluster=cluster, state=Alert.State.FIRING)
        .select_related("rule", "node")
        .order_by("severity", "-raised")[:50]
    )
    polled = [v.status.polled for v in views if v.status.polled]
    return ClusterPage(
        cluster=cluster, health=state, nodes=views, primary=primary, standbys=standbys,
        pools=pools, replication=_replication(primary, dbs), slots=_slots(dbs),
        receivers=_receivers(dbs), pool_backends=_pool_backends(pools, dbs),
        archiving=_archiving(dbs, now), connections=connections,
        connection_states=connection_states, alerts=alerts,
        topology=layout(primary, standbys, pools, primary.details.get("standbys", [])
                        if primary else []),
        polled=min(polled) if polled else None,
    )  # fmt: skip
