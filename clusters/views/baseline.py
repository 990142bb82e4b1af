"""Pages of the security baseline: the fleet report (and its CSV), a server's checks with their
evidence and fix buttons, and the buttons that start checks and fixes as jobs.

Permissions: clusters.view_baselineresult reads the report and the CSV (dba, manager,
auditor); clusters.add_baselinerun starts checks and clusters.fix_baseline starts fixes (dba).
"""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from clusters import baseline
from clusters.actions.baseline import latest_results
from clusters.forms.baseline import BaselineFixAllForm, BaselineFixForm
from clusters.models import BaselineResult, Node
from console import jobs
from console.access import require_perm
from console.views import FORMULA_PREFIXES

DB_SERVICES = ("postgresql", "mariadb")
VIEW, RUN, FIX = "clusters.view_baselineresult", "clusters.add_baselinerun", "clusters.fix_baseline"
NOT_PASSING = ("fail", "error")


def _nodes():
    return Node.objects.filter(service__in=DB_SERVICES).select_related("cluster")


def _node(user, pk: int) -> Node:
    require_perm(user, VIEW)
    try:
        return _nodes().get(pk=pk)
    except Node.DoesNotExist:
        raise Http404("No such database server") from None


@dataclass
class ReportRow:
    node: Node
    results: list[BaselineResult] = field(default_factory=list)

    def of(self, *statuses) -> list[BaselineResult]:
        return [r for r in self.results if r.status in statuses]

    @property
    def failing(self):
        return self.of(*NOT_PASSING)

    @property
    def passing(self):
        return self.of("pass")

    @property
    def review(self):
        return self.of("review")

    @property
    def checked(self):
        return max((r.checked for r in self.results), default=None)


def _report(failing_only: bool) -> list[ReportRow]:
    nodes = list(_nodes().order_by("cluster__name", "name"))
    latest = latest_results(nodes)
    rows = []
    for node in nodes:
        found = latest.get(node.pk, {})
        row = ReportRow(node)
        for check in baseline.checks_for(node):
            if check.key in found:
                found[check.key].title = check.title  # for the page
                row.results.append(found[check.key])
        if not failing_only or row.failing:
            rows.append(row)
    return rows


@require_GET
@login_required
def baseline_report(request):
    require_perm(request.user, VIEW)
    failing_only = request.GET.get("failing") == "1"
    context = {
        "others": Node.objects.exclude(service__in=DB_SERVICES).count(),
        "rows": _report(failing_only),
        "failing_only": failing_only,
        "can_run": request.user.has_perm(RUN),
    }
    return render(request, "clusters/baseline_report.html", context)


def _fix_there_url(node: Node, check: baseline.Check) -> str:
    """The page where a person fixes what the console does not fix itself ("" when that page
    does not exist in this console yet)."""
    if check.fix_there == "settings":
        name = check.key.removeprefix("pg.")
        candidates = [
            ("clusters:node_setting", [node.pk, name]),
            ("clusters:node_settings", [node.pk]),
        ]
    elif check.fix_there == "hba":
        cluster = node.cluster_id
        candidates = [
            ("clusters:hba_detail", [cluster]),
            ("clusters:cluster_hba", [cluster]),
            ("clusters:hba_edit", [cluster]),
            ("clusters:node_hba", [node.pk]),
        ]
    else:
        return ""
    for name, args in candidates:
        try:
            return reverse(name, args=args)
        except NoReverseMatch:
            continue
    return ""


def _node_context(request, node: Node, form=None, all_form=None) -> dict:
    latest = latest_results([node]).get(node.pk, {})
    checks = [
        {"check": c, "result": latest.get(c.key), "fix_there_url": _fix_there_url(node, c)}
        for c in baseline.checks_for(node)
    ]
    return {
        "node": node,
        "checks": checks,
        "form": form,
        "all_form": all_form,
        "fixable_failing": [
            i["check"].key
            for i in checks
            if i["check"].has_fix
            and i["result"]
            and i["result"].status == "fail"
            and i["result"].fixable
        ],
        "can_run": request.user.has_perm(RUN),
        "can_fix": request.user.has_perm(FIX),
    }


@require_GET
@login_required
def baseline_node(request, pk: int):
    node = _node(request.user, pk)
    return render(request, "clusters/baseline_node.html", _node_context(request, node))


@require_POST
@login_required
def baseline_run(request, pk: int | None = None):
    require_perm(request.user, RUN)
    if pk is None:
        job = jobs.enqueue("clusters.baseline_check", "Security baseline of every server",
                           user=request.user)  # fmt: skip
    else:
        node = _node(request.user, pk)
        job = jobs.enqueue("clusters.baseline_check", f"Security baseline of {node.name}",
                           user=request.user, params={"nodes": [node.pk]}, target=node)  # fmt: skip
    messages.success(request, "The baseline checks are queued.")
    return redirect("job_detail", pk=job.pk)


@require_POST
@login_required
def baseline_fix(request, pk: int):
    node = _node(request.user, pk)
    require_perm(request.user, FIX)
    form = BaselineFixForm(node, request.POST)
    if not form.is_valid():
        context = _node_context(request, node, form)
        return render(request, "clusters/baseline_node.html", context)
    key = form.cleaned_data["check"]
    job = jobs.enqueue(
        "clusters.baseline_fix", f"Baseline fix {key} on {node.name}",
        user=request.user, params={"node": node.pk, "check": key}, target=node,
    )  # fmt: skip
    messages.success(request, f"The fix of {key} on {node.name} is queued.")
    return redirect("job_detail", pk=job.pk)


@require_POST
@login_required
def baseline_fix_all(request, pk: int):
    node = _node(request.user, pk)
    require_perm(request.user, FIX)
    form = BaselineFixAllForm(node, request.POST)
    if not form.is_valid():
        context = _node_context(request, node, all_form=form)
        return render(request, "clusters/baseline_node.html", context)
    job = jobs.enqueue(
        "clusters.baseline_fix_all", f"Baseline: fix all failing checks on {node.name}",
        user=request.user, params={"node": node.pk, "confirm": form.cleaned_data["confirm"]},
        target=node,
    )  # fmt: skip
    messages.success(request, f"The fixes of every failing check on {node.name} are queued.")
    return redirect("job_detail", pk=job.pk)


EXPORT_FIELDS = ("node", "cluster", "service", "check", "title", "status", "checked", "evidence")


def _cell(value) -> str:
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _csv_rows(rows: list[ReportRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    for row in rows:
        for result in row.results:
            check = baseline.CHECKS.get(result.check_key)
            writer.writerow([_cell(v) for v in (
                row.node.name, row.node.cluster.name if row.node.cluster else "",
                row.node.service, result.check_key, check.title if check else "", result.status,
                result.checked, result.evidence,
            )])  # fmt: skip
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


@require_GET
@login_required
def baseline_export(request):
    require_perm(request.user, VIEW)
    rows = _report(request.GET.get("failing") == "1")
    response = StreamingHttpResponse(_csv_rows(rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="baseline-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
