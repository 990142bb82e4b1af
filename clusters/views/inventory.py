"""Pages of the clusters app: the inventory list, registering a cluster, rediscovering one,
a node page and its server log viewer."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clusters import access, nodeinfo, registration, series
from clusters.actions import RegistrationRefused
from clusters.forms import LogSearchForm, RegistrationForm
from clusters.models import PendingRegistration
from console import jobs
from console.executor import ExecutorError
from console.executor.ssh import fingerprint


def _fingerprints(known_hosts: str) -> list[str]:
    return [fingerprint(line) for line in known_hosts.splitlines() if line.strip()]


def _with_fingerprints(nodes):
    for node in nodes:
        node.fingerprints = _fingerprints(node.known_hosts)
        yield node


@require_GET
@login_required
def cluster_list(request):
    clusters = access.clusters_for_user(request.user).prefetch_related("nodes", "drifts")
    rows = [(cluster, list(_with_fingerprints(cluster.nodes.all()))) for cluster in clusters]
    hosts = list(_with_fingerprints(access.unassigned_nodes_for_user(request.user)))
    can_register = request.user.has_perm("clusters.add_cluster")
    context = {"rows": rows, "hosts": hosts, "can_register": can_register}
    return render(request, "clusters/cluster_list.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def registration_start(request):
    access.require_perm(request.user, "clusters.add_cluster")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        fields, secrets = form.split()
        try:
            pending = registration.start_registration(fields, secrets, actor=request.user)
        except (ExecutorError, RegistrationRefused) as e:
            form.add_error(None, f"Nothing was saved: {e}")
        else:
            return redirect("clusters:registration_detail", pk=pending.pk)
    return render(request, "clusters/registration_form.html", {"form": form})


@require_GET
@login_required
def registration_detail(request, pk: int):
    pending = access.get_registration_for_user(request.user, pk)
    job = access.discovery_job(pending)
    nodes = pending.discovery.get("nodes", [])
    for node in nodes:
        node["fingerprints"] = _fingerprints(node.get("known_hosts", ""))
    context = {
        "pending": pending,
        "job": job,
        "fingerprints": _fingerprints(pending.known_hosts),
        "nodes": nodes,
        "warnings": pending.discovery.get("warnings", []),
        "backends": pending.discovery.get("pgpool_backends", []),
        "Status": PendingRegistration.Status,
    }
    return render(request, "clusters/registration_detail.html", context)


@require_POST
@login_required
def registration_confirm(request, pk: int):
    pending = access.get_registration_for_user(request.user, pk)
    if registration.confirm_host_key(pending, actor=request.user):
        messages.success(request, "Host key confirmed; discovery is running.")
    return redirect("clusters:registration_detail", pk=pending.pk)


@require_POST
@login_required
def registration_register(request, pk: int):
    pending = access.get_registration_for_user(request.user, pk)
    try:
        cluster = registration.register_discovered(pending, actor=request.user)
    except RegistrationRefused as e:
        messages.error(request, str(e))
        return redirect("clusters:registration_detail", pk=pending.pk)
    messages.success(request, f"Cluster {cluster.name} is registered.")
    return redirect("clusters:cluster_list")


@require_POST
@login_required
def cluster_rediscover(request, pk: int):
    cluster = access.get_cluster_to_rediscover(request.user, pk)
    job = jobs.enqueue(
        "clusters.rediscover_cluster", f"Rediscover cluster {cluster.name}",
        user=request.user, params={"cluster": cluster.pk}, target=cluster,
    )  # fmt: skip
    messages.success(request, f"Rediscovery of {cluster.name} is queued.")
    return redirect("job_detail", pk=job.pk)


# --- The node page and its server log viewer ---------------------------------------------------


@require_GET
@login_required
def node_detail(request, pk: int):
    node = access.get_node_for_user(request.user, pk)
    info = nodeinfo.read_node(node, actor=request.user)
    charts = series.node_charts(node, standby=node.role == node.Role.STANDBY)
    context = {"node": node, "info": info, "charts": [c.as_json() for c in charts],
               "ranges": list(series.RANGES), "default_range": series.DEFAULT_RANGE}  # fmt: skip
    return render(request, "clusters/node_detail.html", context)


def _offset(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@require_GET
@login_required
def node_log(request, pk: int):
    node = access.get_node_for_user(request.user, pk)
    form = LogSearchForm(request.GET if "term" in request.GET else None)
    context = {"node": node, "form": form, "log": None}
    if not form.is_bound or form.is_valid():  # a refused term runs nothing
        term = form.cleaned_data["term"] if form.is_bound else None
        before = _offset(request.GET.get("before"))
        context["log"] = nodeinfo.view_log(
            node, term=term, before_offset=before, actor=request.user
        )
    return render(request, "clusters/node_log.html", context)
