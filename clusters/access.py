"""The one access gate of the clusters app."""

from django.http import Http404

from clusters.models import (
    Alert,
    AlertRule,
    Cluster,
    MaintenanceWindow,
    Node,
    PendingRegistration,
    Sample,
)
from console.access import require_perm
from console.models import Job


def clusters_for_user(user):
    """Clusters `user` may see (every cluster with clusters.view_cluster; PermissionDenied else)."""
    require_perm(user, "clusters.view_cluster")
    return Cluster.objects.select_related("environment")


def unassigned_nodes_for_user(user):
    require_perm(user, "clusters.view_node")
    return Node.objects.filter(cluster__isnull=True)


def get_cluster_for_user(user, pk: int) -> Cluster:
    try:
        return clusters_for_user(user).get(pk=pk)
    except Cluster.DoesNotExist:
        raise Http404("No such cluster") from None


def get_registration_for_user(user, pk: int) -> PendingRegistration:
    """A registration in progress, visible only to the user who started it (and clusters.add)."""
    require_perm(user, "clusters.add_cluster")
    try:
        return PendingRegistration.objects.get(pk=pk, user=user)
    except PendingRegistration.DoesNotExist:
        raise Http404("No such registration") from None


def get_cluster_to_rediscover(user, pk: int) -> Cluster:
    require_perm(user, "clusters.add_cluster")
    return get_cluster_for_user(user, pk)


def discovery_job(pending: PendingRegistration) -> Job | None:
    """The latest discovery job of a registration the caller already may see."""
    jobs = Job.objects.filter(
        kind="clusters.discover_registration", params__registration=pending.pk
    )
    return jobs.order_by("-pk").first()


def get_node_for_user(user, pk: int) -> Node:
    """A registered node (in a cluster or not) for a user with clusters.view_node; 404 else."""
    require_perm(user, "clusters.view_node")
    try:
        return Node.objects.select_related("cluster").get(pk=pk)
    except Node.DoesNotExist:
        raise Http404("No such node") from None


def nodes_for_user(user):
    """Every registered node with its cluster and latest NodeStatus, for clusters.view_node."""
    require_perm(user, "clusters.view_node")
    return Node.objects.select_related("cluster__environment", "status")


def samples_of_node_for_user(user, pk: int):
    """The raw samples of node `pk` (clusters.view_node; 404 when there is no such node)."""
    node = get_node_for_user(user, pk)
    return Sample.objects.filter(node=node)


def alerts_for_user(user):
    """Every alert (open and cleared) with its rule, cluster and node, for clusters.view_alert."""
    require_perm(user, "clusters.view_alert")
    return Alert.objects.select_related("rule", "cluster", "node")


def alert_rules_for_user(user):
    """The alert rules, for clusters.view_alertrule (DBAs change them, managers read them)."""
    require_perm(user, "clusters.view_alertrule")
    return AlertRule.objects.all()


def get_rule_to_change(user, pk: int) -> AlertRule:
    require_perm(user, "clusters.change_alertrule")
    try:
        return AlertRule.objects.get(pk=pk)
    except AlertRule.DoesNotExist:
        raise Http404("No such alert rule") from None


def maintenance_for_user(user):
    """Every maintenance window with its cluster, for clusters.view_maintenancewindow."""
    require_perm(user, "clusters.view_maintenancewindow")
    return MaintenanceWindow.objects.select_related("cluster")


def clusters_to_maintain(user):
    """Clusters `user` may put in maintenance (clusters.add_maintenancewindow)."""
    require_perm(user, "clusters.add_maintenancewindow")
    return clusters_for_user(user)


def get_window_to_end(user, pk: int) -> MaintenanceWindow:
    require_perm(user, "clusters.change_maintenancewindow")
    try:
        return maintenance_for_user(user).get(pk=pk)
    except MaintenanceWindow.DoesNotExist:
        raise Http404("No such maintenance window") from None


def require_metrics_access(user) -> None:
    """/metrics exposes every node's figures: it needs clusters.view_node."""
    require_perm(user, "clusters.view_node")


def get_cluster_for_hba(user, pk: int, *, perm: str = "view") -> Cluster:
    """A PostgreSQL cluster whose pg_hba.conf `user` may view, change or apply
    (clusters.<perm>_hbaruleset); 404 for another kind of cluster."""
    require_perm(user, f"clusters.{perm}_hbaruleset")
    cluster = get_cluster_for_user(user, pk)
    if cluster.kind != Cluster.Kind.POSTGRESQL:
        raise Http404("pg_hba.conf is managed for PostgreSQL clusters only")
    return cluster
