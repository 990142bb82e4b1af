"""Each cluster's summary row (ClusterStatus), written where what it summarises changes.

The collect job (clusters.tasks.collect) calls `refresh_cluster_status()` after its cycle has
stored the NodeStatus rows, then `refresh_alert_counts()` after clusters.alerts.evaluate has
raised and cleared alerts (alerts change nowhere else). The fleet dashboard then reads one row
per cluster, filtered, sorted and paged in SQL (clusters.dashboard); a cluster with no row yet
(registered since the last cycle) shows as unknown, "not collected yet".

`refresh_cluster_status` costs three queries whatever the fleet size (the nodes with their
status fields as plain values, the firing alerts counted by cluster and severity, one bulk
upsert) and Python work proportional to the fleet, once per cycle instead of once per page view.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from clusters import health
from clusters.models import Alert, Cluster, ClusterStatus, Node, NodeStatus

_NODE_VALUES = [
    "id", "name", "cluster_id", "service", "role", "status__state", "status__in_recovery",
    "status__role_seen", "status__replication_state", "status__sync_state",
    "status__replay_lag_bytes", "status__details__backends", "status__polled",
]  # fmt: skip
_UPDATED_FIELDS = [
    f.name for f in ClusterStatus._meta.concrete_fields if not f.primary_key
]  # fmt: skip


@dataclass(slots=True)
class LightNode:
    """The few fields of a Node clusters.health reads."""

    pk: int
    name: str
    cluster_id: int
    service: str
    role: str


@dataclass(slots=True)
class LightStatus:
    """The few fields of a NodeStatus clusters.health reads (duck-typed)."""

    node: LightNode
    state: str
    in_recovery: bool | None
    role_seen: str
    replication_state: str
    sync_state: str
    replay_lag_bytes: int | None
    details: dict
    polled: object  # datetime | None


def _statuses(clusters) -> dict[int, list[LightStatus]]:
    """The statuses of the nodes of `clusters` (a queryset, or None for all) by cluster id, in
    node name order: one query, plain values (no model instances)."""
    nodes = Node.objects.all() if clusters is None else Node.objects.filter(cluster__in=clusters)
    by_cluster: dict[int, list[LightStatus]] = defaultdict(list)
    values = nodes.order_by("name").values_list(*_NODE_VALUES)
    for (pk, name, cluster_id, service, role, state, in_recovery, role_seen, replication,
         sync, lag, backends, polled) in values:  # fmt: skip
        by_cluster[cluster_id].append(LightStatus(
            LightNode(pk, name, cluster_id, service, role), state or NodeStatus.State.UNKNOWN,
            in_recovery, role_seen or "", replication or "", sync or "", lag,
            {"backends": backends or []}, polled,
        ))  # fmt: skip
    return by_cluster


def _firing(clusters) -> Counter:
    alerts = Alert.objects.filter(state=Alert.State.FIRING)
    if clusters is not None:
        alerts = alerts.filter(cluster__in=clusters)
    counted = alerts.values_list("cluster_id", "severity").annotate(n=Count("id")).order_by()
    return Counter({(cluster_id, severity): n for cluster_id, severity, n in counted})


def summarise(cluster_id: int, kind: str, statuses: list[LightStatus], alerts: Counter, now):
    """The ClusterStatus of one cluster (not saved) from its nodes' statuses."""
    found = health.cluster_health(kind, statuses)
    row = ClusterStatus(
        cluster_id=cluster_id, state=found.state, state_rank=ClusterStatus.RANKS[found.state],
        reasons="; ".join(found.reasons), standbys=found.standbys,
        standbys_in_sync=found.standbys_in_sync, worst_lag_bytes=found.worst_lag_bytes,
        alerts_critical=alerts[(cluster_id, "critical")],
        alerts_warning=alerts[(cluster_id, "warning")], updated=now,
    )  # fmt: skip
    polled = [s.polled for s in statuses]
    row.collected = None if not polled or None in polled else min(polled)
    primaries = [
        s.node for s in statuses
        if s.state == NodeStatus.State.UP and s.role_seen == "primary"
    ]  # fmt: skip
    registered = [s.node for s in statuses if s.node.role == Node.Role.PRIMARY]
    primary = (primaries or registered or [None])[0]
    row.primary_id = primary.pk if primary else None
    details = []
    for s in statuses:
        if s.node.service != Node.Service.PGPOOL:
            continue
        row.pgpool_nodes += 1
        if s.state != NodeStatus.State.UP:
            details.append(f"{s.node.name}: {s.state}")
            continue
        row.pgpool_nodes_up += 1
        backends = s.details["backends"]
        up = sum(1 for b in backends if b.get("status") in ("up", "waiting"))
        details.append(f"{s.node.name}: {up}/{len(backends)} backends up")
        if row.pgpool_nodes_up == 1 or up < row.pgpool_up:
            row.pgpool_up, row.pgpool_total = up, len(backends)
    row.pgpool_detail = "; ".join(details)
    return row


def refresh_cluster_status(clusters: Iterable[Cluster] | None = None) -> int:
    """Rewrite the ClusterStatus of `clusters` (a queryset or list; None: every cluster) from
    their nodes' latest NodeStatus rows and their firing alerts. Returns the rows written."""
    if clusters is not None and not hasattr(clusters, "values"):
        clusters = Cluster.objects.filter(pk__in=[c.pk for c in clusters])
    kinds = (Cluster.objects.all() if clusters is None else clusters).values_list("pk", "kind")
    kinds = list(kinds)
    if not kinds:
        return 0
    ids = None if clusters is None else clusters.values("pk")  # a subquery, not a list
    statuses, alerts, now = _statuses(ids), _firing(ids), timezone.now()
    rows = [summarise(pk, kind, statuses.get(pk, []), alerts, now) for pk, kind in kinds]
    ClusterStatus.objects.bulk_create(
        rows, batch_size=1000, update_conflicts=True, unique_fields=["cluster"],
        update_fields=_UPDATED_FIELDS,
    )  # fmt: skip
    return len(rows)


def _firing_count(severity: str):
    counted = (
        Alert.objects.filter(
            cluster=OuterRef("cluster"), state=Alert.State.FIRING, severity=severity
        )
        .values("cluster")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def refresh_alert_counts(clusters: Iterable[Cluster] | None = None) -> int:
    """Recount the firing alerts of every summarised cluster (of `clusters` when given): one
    UPDATE, after alerts were raised or cleared. Returns the rows updated."""
    rows = ClusterStatus.objects.all()
    if clusters is not None:
        rows = rows.filter(cluster__in=clusters)
    return rows.update(
        alerts_critical=_firing_count("critical"), alerts_warning=_firing_count("warning")
    )
