"""What the fleet dashboard shows, read in a constant number of queries whatever the fleet size.

The dashboard reads only the latest state the collector stored (clusters.collect): one
NodeStatus per node, never the Sample table. `fleet(user)`:
0. a version of the fleet: the newest NodeStatus.polled and the number of statuses, the firing
   alerts (count and newest evaluation), two aggregates;
when that version is in the cache (it changes at most once per collection cycle), nothing else;
otherwise:
1. the clusters the user may see, with their environment and their oldest collection time;
2. their nodes with the NodeStatus fields a state needs (plain values, no model instances; of
   NodeStatus.details only pgpool-II's backends);
3. the firing alerts counted by cluster and severity.
A cluster's state is derived by clusters.health (it is not stored), then `narrow` filters,
sorts and pages those rows in Python: a filter, a sort or a page costs no query.

Cached rows live CACHE_SECONDS at most, so a cluster registered or renamed between two cycles
shows within a minute even when no collection runs.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.core.cache import cache
from django.db.models import CharField, Count, Max, Min
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone

from clusters import access, health
from clusters.models import Alert, Node, NodeStatus
from clusters.templatetags.dashboard_extras import bytes_human

STATE_ORDER = {health.DOWN: 0, health.DEGRADED: 1, health.UNKNOWN: 2, health.HEALTHY: 3}
STATES = [health.HEALTHY, health.DEGRADED, health.DOWN, health.UNKNOWN]
SORTS = {
    "state": "state (worst first)",
    "name": "name",
    "lag": "worst lag",
    "alerts": "open alerts",
    "environment": "environment",
}
PAGE_SIZE = 100  # rows rendered per page; states, filters and sorting cover the whole fleet
CACHE_SECONDS = 60
_FLEET_VALUES = [
    "id", "name", "cluster_id", "service", "role", "status__state", "status__in_recovery",
    "status__role_seen", "status__replication_state", "status__sync_state",
    "status__replay_lag_bytes", "status__details__backends",
]  # fmt: skip


@dataclass(slots=True)
class LightCluster:
    pk: int
    name: str
    kind: str
    environment: str
    polled: datetime | None  # the oldest latest collection of its nodes


@dataclass(slots=True)
class LightNode:
    """The few fields of a Node the dashboard and clusters.health read."""

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


@dataclass
class FleetRow:
    """One cluster on the dashboard."""

    cluster: LightCluster
    health: health.ClusterHealth
    primary: LightNode | None = None
    pgpool_up: int = 0  # backends up as seen by the pgpool nodes (the worst of them)
    pgpool_total: int = 0
    pgpool_nodes: int = 0
    pgpool_nodes_up: int = 0
    pgpool_detail: list[str] = field(default_factory=list)
    critical: int = 0
    warning: int = 0
    # Computed once with the row, so a page of rows renders fast from the cache:
    url: str = ""
    primary_url: str = ""
    reasons: str = ""
    worst_lag: str = "—"
    polled_iso: str = ""

    @property
    def state(self) -> str:
        return self.health.state

    @property
    def alerts(self) -> int:
        return self.critical + self.warning


@dataclass
class Fleet:
    rows: list[FleetRow]  # filtered, sorted, one page of them
    summary: dict[str, int]  # state -> clusters, in the chosen environment
    environments: list[str]
    total: int  # clusters the user may see
    matched: int = 0  # clusters that pass the filters
    page: int = 1
    pages: int = 1

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def _statuses(values) -> dict[int, list[LightStatus]]:
    by_cluster: dict[int, list[LightStatus]] = defaultdict(list)
    for (pk, name, cluster_id, service, role, state, in_recovery, role_seen, replication,
         sync, lag, backends) in values:  # fmt: skip
        node = LightNode(pk, name, cluster_id, service, role)
        by_cluster[cluster_id].append(LightStatus(
            node, state or NodeStatus.State.UNKNOWN, in_recovery, role_seen or "",
            replication or "", sync or "", lag, {"backends": backends or []},
        ))  # fmt: skip
    return by_cluster


def _pgpool_summary(row: FleetRow, pools: list[LightStatus]) -> None:
    row.pgpool_nodes = len(pools)
    for s in pools:
        if s.state != NodeStatus.State.UP:
            row.pgpool_detail.append(f"{s.node.name}: {s.state}")
            continue
        row.pgpool_nodes_up += 1
        backends = s.details["backends"]
        up = sum(1 for b in backends if b.get("status") in ("up", "waiting"))
        row.pgpool_detail.append(f"{s.node.name}: {up}/{len(backends)} backends up")
        if row.pgpool_nodes_up == 1 or up < row.pgpool_up:
            row.pgpool_up, row.pgpool_total = up, len(backends)


def _url_of(name: str):
    """pk -> the URL of `name` for that pk, reversing once (a sentinel pk replaced)."""
    sentinel = "2147483647"
    url = reverse(name, args=[int(sentinel)])
    return lambda pk: url.replace(sentinel, str(pk))


def _fleet_row(
    cluster: LightCluster, statuses: list[LightStatus], alerts: Counter, urls: tuple
) -> FleetRow:
    row = FleetRow(cluster, health.cluster_health(cluster.kind, statuses))
    row.url, row.reasons = urls[0](cluster.pk), "; ".join(row.health.reasons)
    row.worst_lag = bytes_human(row.health.worst_lag_bytes)
    if cluster.polled:
        row.polled_iso = timezone.localtime(cluster.polled).isoformat(timespec="seconds")
    primaries = [
        s.node for s in statuses
        if s.state == NodeStatus.State.UP and s.role_seen == "primary"
    ]  # fmt: skip
    registered = [s.node for s in statuses if s.node.role == Node.Role.PRIMARY]
    row.primary = (primaries or registered or [None])[0]
    if row.primary:
        row.primary_url = urls[1](row.primary.pk)
    _pgpool_summary(row, [s for s in statuses if s.node.service == Node.Service.PGPOOL])
    row.critical = alerts[(cluster.pk, "critical")]
    row.warning = alerts[(cluster.pk, "warning")]
    return row


def _version() -> tuple:
    """What changes when what the dashboard shows changes: the newest collection and the
    number of statuses (a cycle, a node collected for the first time), the firing alerts
    (their number and newest evaluation). Two aggregates over indexed or small tables."""
    statuses = NodeStatus.objects.aggregate(polled=Max("polled"), n=Count("pk"))
    alerts = Alert.objects.filter(state=Alert.State.FIRING).aggregate(
        seen=Max("last_seen"), n=Count("pk")
    )
    return (statuses["polled"], statuses["n"], alerts["seen"], alerts["n"])


def _when(text: str | None) -> datetime | None:
    """A timestamp cast to text by the database (PostgreSQL adds the offset, SQLite not: UTC)."""
    if not text:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _compute(user) -> tuple[list[FleetRow], list[str]]:
    visible = access.clusters_for_user(user)
    clusters = [
        LightCluster(pk, name, kind, env, _when(polled))
        for pk, name, kind, env, polled in visible.annotate(
            # as text: Django's timestamp loader is Python, fromisoformat is C (1,000 rows)
            polled=Cast(Min("nodes__status__polled"), CharField())
        ).values_list("pk", "name", "kind", "environment__name", "polled")
    ]
    ids = visible.values("pk")  # a subquery, not a list of ids
    nodes = Node.objects.filter(cluster__in=ids).order_by("name").values_list(*_FLEET_VALUES)
    by_cluster = _statuses(nodes)
    firing = (
        Alert.objects.filter(state=Alert.State.FIRING, cluster__in=ids)
        .values_list("cluster_id", "severity")
        .annotate(n=Count("id"))
        .order_by()
    )
    alerts = Counter({(cluster_id, severity): n for cluster_id, severity, n in firing})
    urls = (_url_of("clusters:cluster_detail"), _url_of("clusters:node_detail"))
    rows = [_fleet_row(c, by_cluster.get(c.pk, []), alerts, urls) for c in clusters]
    return rows, sorted({c.environment for c in clusters})


# The computed rows of this process, by cache key. Django's cache holds only a marker for each
# key: unpickling a thousand rows from it would cost more than computing them again, and
# clearing Django's cache (or the marker expiring) still forces a new computation.
_rows: dict[str, tuple] = {}


def fleet(user) -> Fleet:
    """Every cluster `user` may see with its state, primary, standbys in sync, worst lag,
    pgpool-II backends and open alerts. Computed once per version of the fleet (see the
    module docstring); `narrow` filters, sorts and pages it."""
    access.clusters_for_user(user)  # PermissionDenied before the cache is asked
    key = f"clusters:fleet:{user.pk}:{hash(_version())}"
    computed = _rows.get(key) if cache.get(key) else None
    if computed is None:
        computed = _compute(user)
        if len(_rows) >= 32:  # old versions: nobody asks for them again
            _rows.clear()
        _rows[key] = computed
        cache.set(key, True, CACHE_SECONDS)
    rows, environments = computed
    return Fleet(rows, {}, environments, len(rows), len(rows))


def _sort_key(sort: str):
    name = lambda r: r.cluster.name.lower()  # noqa: E731
    if sort == "name":
        return name
    if sort == "environment":
        return lambda r: (r.cluster.environment.lower(), name(r))
    if sort == "lag":
        return lambda r: (-(r.health.worst_lag_bytes or -1), name(r))
    if sort == "alerts":
        return lambda r: (-r.critical, -r.warning, STATE_ORDER[r.state], name(r))
    return lambda r: (STATE_ORDER[r.state], -r.critical, -r.warning, name(r))


def narrow(
    fleet_: Fleet, *, environment: str = "", state: str = "", sort: str = "state", page: int = 1
) -> Fleet:
    """The fleet in one environment (all when blank), counted by state in `summary`, then
    only the clusters in `state` (all when blank), sorted by one of SORTS, cut to `page` of
    PAGE_SIZE rows (the last one when past it). No query."""
    rows = fleet_.rows
    if environment:
        rows = [r for r in rows if r.cluster.environment == environment]
    summary = dict.fromkeys(STATES, 0)
    summary.update(Counter(r.state for r in rows))
    if state:
        rows = [r for r in rows if r.state == state]
    rows = sorted(rows, key=_sort_key(sort))
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return Fleet(shown, summary, fleet_.environments, fleet_.total, len(rows), page, pages)
