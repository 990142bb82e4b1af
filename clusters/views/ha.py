"""HA pages of a PostgreSQL cluster (DBAs, clusters.failover_cluster): the precheck page of an
operation (switchover, failover, rebuild, PCP, deploy) with its checks and plan, and, when every
check passes, the typed confirmation that queues its job; and the HA settings page that
creates or changes the cluster's HaSetup (clusters.ha.setup.save_ha_setup). The buttons are on
the cluster page (templates/clusters/ha_panel.html)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from clusters import access
from clusters.forms.ha import HaConfirmForm, HaSetupForm
from clusters.ha import actions
from clusters.ha.setup import save_ha_setup
from clusters.models import Cluster, HaSetup, Node
from console.access import require_perm

LABELS = {
    "switchover": "Switchover", "failover": "Failover", "rebuild": "Rebuild standby",
    "pcp": "pgpool-II (PCP)", "deploy": "Deploy pgpool-II",
}  # fmt: skip


def _node(setup, request) -> Node | None:
    raw = request.POST.get("node") or request.GET.get("node")
    if not raw:
        return None
    ids = [b["node"] for b in setup.backends]
    try:
        return Node.objects.get(pk=int(raw), pk__in=ids)
    except (ValueError, Node.DoesNotExist):
        raise Http404("No such backend in this cluster") from None


@require_http_methods(["GET", "POST"])
@login_required
def ha_operation(request, pk: int, operation: str):
    setup = actions.get_setup_for_user(request.user, pk)
    if operation not in LABELS:
        raise Http404("No such operation")
    node, pcp = _node(setup, request), request.POST.get("pcp") or request.GET.get("pcp", "")
    form = HaConfirmForm(setup.cluster, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            confirm = form.cleaned_data["confirm"]
            job = actions.start_operation(setup, operation, node=node, pcp=pcp, confirm=confirm,
                                          actor=request.user)  # fmt: skip
        except actions.HaRefused as e:
            for field, errors in e.errors.items():
                form.add_error(field if field in form.fields else None, " ".join(errors))
        else:
            messages.success(request, f"{job.title}: queued.")
            return redirect("job_detail", pk=job.pk)
    check = actions.precheck(setup, operation, node, pcp, actor=request.user)
    context = {"cluster": setup.cluster, "setup": setup, "operation": operation,
               "label": LABELS[operation], "node": node, "pcp": pcp, "check": check,
               "form": form}  # fmt: skip
    return render(request, "clusters/ha_precheck.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def ha_setup(request, pk: int):
    """Create (no HaSetup yet) or change the cluster's pgpool-II settings; nothing deployed."""
    require_perm(request.user, "clusters.failover_cluster")
    cluster = access.get_cluster_for_user(request.user, pk)
    if cluster.kind != Cluster.Kind.POSTGRESQL:
        raise Http404("HA settings exist only for PostgreSQL clusters")
    setup = (
        HaSetup.objects.filter(cluster=cluster)
        .select_related("pcp_credential", "replication_credential")
        .first()
    )
    form = HaSetupForm(cluster, setup, request.POST or None)
    if request.method == "POST" and form.is_valid():
        save_ha_setup(cluster, **form.action_kwargs(), actor=request.user)
        verb = "changed" if setup else "recorded"
        messages.success(request, f"HA settings {verb}: deploy pgpool-II to apply them.")
        return redirect("clusters:cluster_detail", pk=cluster.pk)
    label = "Edit HA settings" if setup else "Set up pgpool-II"
    context = {"cluster": cluster, "setup": setup, "form": form, "label": label}
    return render(request, "clusters/ha_setup.html", context)
