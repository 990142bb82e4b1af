"""HA pages of a PostgreSQL cluster (DBAs, clusters.failover_cluster): the precheck page of an
operation (switchover, failover, rebuild, PCP, deploy) with its checks and plan, and, when every
check passes, the typed confirmation that queues its job. The buttons are on the cluster page
(templates/clusters/ha_panel.html)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from clusters.forms.ha import HaConfirmForm
from clusters.ha import actions
from clusters.models import Node

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
