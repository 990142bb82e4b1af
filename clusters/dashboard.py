"""What the fleet dashboard shows, read in a constant number of queries whatever the fleet size.

Each cluster's state is summarised once per collection cycle into its ClusterStatus row
(clusters.status, called by the collect job); the dashboard only reads those rows, never
NodeStatus nor the samples:
1. `environments(user)`: the environments of the clusters the user may see (the filter's
   choices);
2. `fleet(user, …)`: the clusters by state in the chosen environment and the number the user
   may see, one aggregate;
3. then one page of the clusters that pass the filters, sorted and cut in SQL (the clusters
   LEFT JOIN their summary, their environment and their primary node; the start of the newest
   usable backup of each shown cluster is one probe of backups' partial index per row,
   evaluated after the LIMIT).
A cluster without a summary row yet (registered since the last cycle) is unknown, "not
collected yet". No Python work here grows with the fleet: only with the page (PAGE_SIZE rows).
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Lower
from django.urls import reverse
from django.utils import timezone

from backups.models import BackupRun, RunStatus
from clusters import access, health
from clusters.models import ClusterStatus
from clusters.templatetags.dashboard_extras import bytes_human

STATES = [health.HEALTHY, health.DEGRADED, health.DOWN, health.UNKNOWN]
SORTS = {
    "state": "state (worst first)",
    "name": "name",
    "lag": "worst lag",
    "alerts": "open alerts",
    "environment": "environment",
}
PAGE_SIZE = 100  # rows rendered per page; states, filters and sorting cover the whole fleet
NOT_COLLECTED = "not collected yet"
_UNKNOWN_RANK = ClusterStatus.RANKS[health.UNKNOWN]
_ROW_VALUES = [
    "pk", "name", "kind", "environment__name", "state_", "status__reasons", "status__primary_id",
    "status__primary__name", "status__standbys", "status__standbys_in_sync",
    "status__worst_lag_bytes", "status__pgpool_up", "status__pgpool_total",
    "status__pgpool_nodes", "status__pgpool_nodes_up", "status__pgpool_detail", "critical_",
    "warning_", "status__collected", "last_backup_",
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
    pk: int
    name: str


@dataclass
class FleetRow:
    """One cluster on the dashboard, from its ClusterStatus."""

    cluster: LightCluster
    health: health.ClusterHealth  # state, worst lag and standbys (reasons: see `reasons`)
    primary: LightNode | None = None
    pgpool_up: int = 0  # backends up as seen by the pgpool nodes (the worst of them)
    pgpool_total: int = 0
    pgpool_nodes: int = 0
    pgpool_nodes_up: int = 0
    pgpool_detail: str = ""
    critical: int = 0
    warning: int = 0
    url: str = ""
    primary_url: str = ""
    reasons: str = ""
    worst_lag: str = "—"
    polled_iso: str = ""
    last_backup: datetime | None = None  # start of the newest usable (validated) backup
    last_backup_iso: str = ""

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


def environments(user) -> list[str]:
    """The names of the environments of the clusters `user` may see (PermissionDenied else)."""
    visible = access.clusters_for_user(user)
    names = visible.order_by().values_list("environment__name", flat=True).distinct()
    return sorted(names)


def _in_state(state: str) -> Q:
    if state == health.UNKNOWN:  # a cluster not summarised yet is unknown too
        return Q(status__state=state) | Q(status__isnull=True)
    return Q(status__state=state)


_NEWEST_USABLE_BACKUP = (
    BackupRun.objects.filter(cluster=OuterRef("pk"), status=RunStatus.OK)
    .order_by("-started")
    .values("started")[:1]
)

_ORDER = {
    "name": [Lower("name"), "pk"],
    "environment": [Lower("environment__name"), Lower("name"), "pk"],
    "lag": [F("status__worst_lag_bytes").desc(nulls_last=True), Lower("name"), "pk"],
    "alerts": [F("critical_").desc(), F("warning_").desc(), "rank_", Lower("name"), "pk"],
    "state": ["rank_", F("critical_").desc(), F("warning_").desc(), Lower("name"), "pk"],
}


def _row(values, urls) -> FleetRow:
    (pk, name, kind, env, state, reasons, primary_id, primary_name, standbys, in_sync, lag,
     pool_up, pool_total, pool_nodes, pool_nodes_up, pool_detail, critical, warning,
     collected, last_backup) = values  # fmt: skip
    found = health.ClusterHealth(
        state, worst_lag_bytes=lag, standbys=standbys or 0, standbys_in_sync=in_sync or 0
    )
    row = FleetRow(
        LightCluster(pk, name, kind, env, collected), found, pgpool_up=pool_up or 0,
        pgpool_total=pool_total or 0, pgpool_nodes=pool_nodes or 0,
        pgpool_nodes_up=pool_nodes_up or 0, pgpool_detail=pool_detail or "",
        critical=critical, warning=warning, url=urls[0](pk),
        reasons=NOT_COLLECTED if reasons is None else reasons, worst_lag=bytes_human(lag),
    )  # fmt: skip
    if primary_id:
        row.primary, row.primary_url = LightNode(primary_id, primary_name), urls[1](primary_id)
    if collected:
        row.polled_iso = timezone.localtime(collected).isoformat(timespec="seconds")
    if last_backup:
        row.last_backup = last_backup
        row.last_backup_iso = timezone.localtime(last_backup).isoformat(timespec="seconds")
    return row


def _url_of(name: str):
    """pk -> the URL of `name` for that pk, reversing once (a sentinel pk replaced)."""
    sentinel = "2147483647"
    url = reverse(name, args=[int(sentinel)])
    return lambda pk: url.replace(sentinel, str(pk))


def fleet(
    user, *, environment: str = "", state: str = "", sort: str = "state", page: int = 1,
    environment_names: list[str] | None = None,
) -> Fleet:  # fmt: skip
    """The clusters `user` may see in `environment` (all when blank), counted by state in
    `summary`, then only those in `state` (all when blank), sorted by one of SORTS, cut to
    `page` of PAGE_SIZE rows (the last one when past it). Two queries (plus the environments'
    when `environment_names` is not given)."""
    visible = access.clusters_for_user(user)
    if environment_names is None:
        environment_names = environments(user)
    in_env = Q(environment__name=environment) if environment else Q()
    counts = visible.aggregate(
        total_=Count("pk"), **{s: Count("pk", filter=in_env & _in_state(s)) for s in STATES}
    )
    total = counts.pop("total_")
    summary = {s: counts[s] for s in STATES}
    matched = summary[state] if state else sum(summary.values())
    pages = max(1, -(-matched // PAGE_SIZE))
    page = min(max(1, page), pages)
    chosen = visible.filter(in_env & (_in_state(state) if state else Q()))
    chosen = chosen.annotate(
        state_=Coalesce("status__state", Value(health.UNKNOWN)),
        rank_=Coalesce("status__state_rank", Value(_UNKNOWN_RANK)),
        critical_=Coalesce("status__alerts_critical", Value(0)),
        warning_=Coalesce("status__alerts_warning", Value(0)),
        last_backup_=Subquery(_NEWEST_USABLE_BACKUP),
    ).order_by(*_ORDER.get(sort, _ORDER["state"]))
    values = chosen.values_list(*_ROW_VALUES)[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    urls = (_url_of("clusters:cluster_detail"), _url_of("clusters:node_detail"))
    rows = [_row(v, urls) for v in values]
    return Fleet(rows, summary, environment_names, total, matched, page, pages)
