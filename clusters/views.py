"""Pages of the clusters app: the inventory list (issue 4 turns it into the fleet dashboard)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from clusters import access
from console.executor.ssh import fingerprint


def _with_fingerprints(nodes):
    for node in nodes:
        node.fingerprints = [fingerprint(line) for line in node.known_hosts.splitlines() if line]
        yield node


@require_GET
@login_required
def cluster_list(request):
    clusters = access.clusters_for_user(request.user).prefetch_related("nodes")
    rows = [(cluster, list(_with_fingerprints(cluster.nodes.all()))) for cluster in clusters]
    hosts = list(_with_fingerprints(access.unassigned_nodes_for_user(request.user)))
    return render(request, "clusters/cluster_list.html", {"rows": rows, "hosts": hosts})
