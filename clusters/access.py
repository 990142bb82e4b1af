"""The one access gate of the clusters app."""

from django.http import Http404

from clusters.models import Cluster, Node
from console.access import require_perm


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
