"""Pages of the backups app: the manager report (see backups/views/__init__.py).

Read-only pages for managers, auditors and DBAs (backups.view_backuprun): the fleet report
with its per-environment summary and per-cluster table, an environment's report and a
cluster's report with the charts of their sizes and durations over time, and the report as CSV
and PDF. Each view reads backups.report."""

from datetime import datetime, time

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from backups import report, report_export

PAGE_SIZE = 100  # table rows per page; the summary, the sort and the exports cover all


def _filters(request) -> dict:
    sort = request.GET.get("sort", "environment")
    return {
        "environment": request.GET.get("env", "").strip(),
        "sort": sort if sort in report.SORTS else "environment",
    }


@require_GET
@login_required
def report_fleet(request):
    built = report.build(request.user, **_filters(request))
    page = Paginator(built.clusters, PAGE_SIZE).get_page(request.GET.get("page"))
    summary_head, summary_rows = report_export.summary_table(built)
    context = {
        "report": built,
        "page": page,
        "rows": page.object_list,
        "sorts": report.SORTS,
        "summary_head": summary_head,
        "summary_rows": summary_rows,
        "windows": report.WINDOWS,
        "query": request.GET.urlencode(),
    }
    return render(request, "backups/report.html", context)


@require_GET
@login_required
def report_cluster(request, pk: int):
    built = report.build(request.user, cluster=pk)
    if not built.clusters:
        raise Http404("No such cluster")
    row = built.clusters[0]
    runs = report.history(pk, now=built.generated_at)
    chart = [
        {
            "t": int(run["started"].timestamp() * 1000),
            "mode": run["mode"],
            "status": run["status"],
            "id": run["backup_id"],
            "total": run["total_bytes"],
            "written": run["written_bytes"],
            "seconds": run["duration"].total_seconds() if run["duration"] else None,
        }
        for run in runs
    ]
    context = {
        "report": built,
        "row": row,
        "windows": report.WINDOWS,
        "chart": chart,
        "recent": [
            {**run, "duration_text": report.human_duration(run["duration"])}
            for run in reversed(runs[-20:])
        ],
        "runs_total": len(runs),
    }
    return render(request, "backups/report_cluster.html", context)


@require_GET
@login_required
def report_environment(request, name: str):
    built = report.build(request.user, environment=name, sort=request.GET.get("sort", "age"))
    if name not in built.environments:
        raise Http404("No such environment")
    days = report.daily(name, now=built.generated_at)
    chart = [
        {
            "t": int(datetime.combine(d["day"], time(12), timezone.get_current_timezone())
                     .timestamp() * 1000),
            "ok": d["ok"],
            "failed": d["finished"] - d["ok"],
            "read": d["read"],
            "written": d["written"],
            "seconds": d["seconds"],
        }
        for d in days
    ]  # fmt: skip
    summary_head, summary_rows = report_export.summary_table(built)
    context = {
        "report": built,
        "rows": built.clusters,
        "summary_head": summary_head,
        "summary_rows": summary_rows,
        "windows": report.WINDOWS,
        "chart": chart,
    }
    return render(request, "backups/report_environment.html", context)


def _download(body, content_type: str, extension: str, built: report.Report) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    stamp = timezone.localtime(built.generated_at).strftime("%Y%m%d-%H%M")
    scope = f"-{slugify(built.environment)}" if built.environment else ""
    name = f"backup-report{scope}-{stamp}.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@login_required
def report_csv(request):
    built = report.build(request.user, **_filters(request))
    return _download(report_export.as_csv(built), "text/csv; charset=utf-8", "csv", built)


@require_GET
@login_required
def report_pdf(request):
    built = report.build(request.user, **_filters(request))
    body = report_export.as_pdf(built, generated_by=request.user.get_username())
    return _download(body, "application/pdf", "pdf", built)


urlpatterns: list = [
    path("report/", report_fleet, name="report"),
    path("report/export.csv", report_csv, name="report_csv"),
    path("report/export.pdf", report_pdf, name="report_pdf"),
    path("report/cluster/<int:pk>/", report_cluster, name="report_cluster"),
    path("report/environment/<path:name>/", report_environment, name="report_environment"),
]
