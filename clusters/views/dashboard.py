"""The fleet dashboard, the cluster page and the series endpoint of their charts."""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from clusters import access, clusterpage, dashboard, series
from clusters.forms.dashboard import FleetFilterForm


@require_GET
@login_required
def fleet(request):
    environments = dashboard.environments(request.user)
    form = FleetFilterForm(request.GET, environments)
    form.is_valid()
    env, state, sort = form.value("env"), form.value("state"), form.value("sort", "state")
    page = form.value("page", 1)
    shown = dashboard.fleet(request.user, environment=env, state=state, sort=sort, page=page,
                            environment_names=environments)  # fmt: skip
    kept = {k: v for k, v in (("env", env), ("state", state)) if v}
    context = {
        "fleet": shown, "form": form, "env": env, "state": state, "sort": sort,
        "query": urlencode({**kept, "sort": sort, "page": shown.page}), "sorts": dashboard.SORTS,
        "page_links": {
            "previous": urlencode({**kept, "sort": sort, "page": shown.page - 1}),
            "next": urlencode({**kept, "sort": sort, "page": shown.page + 1}),
        },
        "sort_links": {k: urlencode({**kept, "sort": k}) for k in dashboard.SORTS},
        "state_links": {s: urlencode({**kept, "state": s, "sort": sort})
                        for s in dashboard.STATES},
    }  # fmt: skip
    if request.headers.get("HX-Request"):
        return render(request, "clusters/partials/fleet_table.html", context)
    return render(request, "clusters/fleet.html", context)


@require_GET
@login_required
def cluster_detail(request, pk: int):
    cluster = access.get_cluster_for_user(request.user, pk)
    page = clusterpage.cluster_page(cluster)
    charts = series.cluster_charts(
        page.primary.node if page.primary else None,
        [v.node for v in page.standbys],
        [v.node for v in page.nodes],
    )
    context = {
        "page": page, "cluster": cluster,
        "charts": [c.as_json() for c in charts], "ranges": list(series.RANGES),
        "default_range": series.DEFAULT_RANGE,
    }  # fmt: skip
    return render(request, "clusters/cluster_detail.html", context)


@require_GET
@login_required
def series_data(request):
    """One series as JSON: ?node=<id>&metric=<name>&range=<1h|6h|24h|7d|30d>."""
    node_id = request.GET.get("node", "")
    metric = request.GET.get("metric", "")
    range_key = request.GET.get("range", series.DEFAULT_RANGE)
    errors = {}
    if not node_id.isdigit():
        errors["node"] = "node must be a node id"
    if metric not in series.METRICS:
        errors["metric"] = f"unknown metric {metric!r}"
    if range_key not in series.RANGES:
        errors["range"] = f"range must be one of {', '.join(series.RANGES)}"
    if errors:
        return JsonResponse({"errors": errors}, status=400)
    node = access.get_node_for_user(request.user, int(node_id))
    return JsonResponse(series.series(node.pk, metric, range_key))
