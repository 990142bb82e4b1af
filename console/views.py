"""Pages of the console app: home, the audit log with its exports, jobs, and /healthz.

Views parse input, ask one gate in console.access, then render, enqueue one job or call one
action. Lists page by keyset on the primary key (`?before=<id>` / `?after=<id>`): no OFFSET and
no COUNT(*), so a page costs the same with a thousand entries or with millions.
"""

import csv
import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db import connections
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from kombu import Connection

from console import access, actions, jobs
from console.forms import AuditFilterForm, JobFilterForm, KeysetForm
from console.models import AuditEntry, Job

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
EXPORT_BATCH = 2000
LOG_TAIL = 200
EXPORT_FIELDS = (
    "id", "created", "actor_name", "source", "action", "target", "node", "command", "status",
    "exit_code", "output", "error", "duration_ms", "request_id", "job_id", "intent_id",
    "prev_hash", "hash",
)  # fmt: skip
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class KeysetPage:
    """One page of rows, newest first, with the ids to link to the neighbouring pages."""

    rows: list
    newer_after: int | None = None  # link ?after=<id> when there are newer rows
    older_before: int | None = None  # link ?before=<id> when there are older rows


def keyset_page(qs: QuerySet, *, before=None, after=None, size: int = PAGE_SIZE) -> KeysetPage:
    """Rows of `qs` newest first: the first page, the page older than `before` or newer than
    `after`. Reads at most size+1 rows and one EXISTS for the other direction."""
    if after:
        rows = list(qs.filter(id__gt=after).order_by("id")[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        oldest = rows[-1].id if rows else after + 1
        more_older = qs.filter(id__lt=oldest).exists()
    else:
        window = qs.filter(id__lt=before) if before else qs
        rows = list(window.order_by("-id")[: size + 1])
        more_older = len(rows) > size
        rows = rows[:size]
        newest = rows[0].id if rows else (before or 1) - 1
        more_newer = bool(before) and qs.filter(id__gt=newest).exists()
    return KeysetPage(
        rows=rows,
        newer_after=rows[0].id if rows and more_newer else None,
        older_before=rows[-1].id if rows and more_older else None,
    )


def _filter_query(form) -> str:
    """The form's non-empty submitted values as a query string (for paging and export links)."""
    return urlencode([(name, form.data[name]) for name in form.fields if form.data.get(name)])


# --- Home -----------------------------------------------------------------------------------


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {"recent_jobs": [], "recent_audit": []}
    if user.has_perm("console.view_job"):
        context["recent_jobs"] = list(
            access.jobs_for_user(user).filter(user=user).order_by("-id")[:5]
        )
    if access.can_view_audit(user):
        context["recent_audit"] = list(access.audit_entries_for_user(user).order_by("-id")[:8])
    return render(request, "console/home.html", context)


# --- Health ---------------------------------------------------------------------------------


def _database_ok() -> bool:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.exception("healthz: the database does not answer")
        return False


def _broker_ok() -> bool:
    url = settings.CELERY_BROKER_URL
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if url.startswith("filesystem"):
        folder = Path(options["data_folder_in"])
        ok = folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)
        if not ok:
            logger.error("healthz: broker folder %s is missing or not writable", folder)
        return ok
    try:
        with Connection(url, transport_options=options, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return True
    except Exception as e:
        # The URL may hold a password: log the error's type and text, never the URL.
        logger.error("healthz: the broker does not answer: %s: %s", type(e).__name__, e)
        return False


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the Celery broker answer, 503 naming the one that does not."""
    checks = {
        "database": "ok" if _database_ok() else "unreachable",
        "broker": "ok" if _broker_ok() else "unreachable",
    }
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)


# --- Audit log ------------------------------------------------------------------------------


@login_required
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    entries = access.audit_entries_for_user(request.user)
    context = filtered_list(request, AuditFilterForm(request.GET), entries)
    context["can_export"] = request.user.has_perm("console.export_auditentry")
    context["can_verify"] = request.user.has_perm("console.verify_auditentry")
    return render(request, "console/auditentry_list.html", context)


def filtered_list(request: HttpRequest, form, qs: QuerySet) -> dict:
    """Context of a filtered, keyset-paged list: no query runs unless the filter and the page
    link are both valid."""
    keyset = KeysetForm(request.GET)
    page = None
    if form.is_valid() and keyset.is_valid():
        page = keyset_page(
            form.filter(qs),
            before=keyset.cleaned_data.get("before"),
            after=keyset.cleaned_data.get("after"),
        )
    return {
        "form": form,
        "keyset_errors": keyset.errors.get("__all__") or keyset.errors,
        "page": page,
        "query": _filter_query(form),
        "paged": bool(request.GET.get("before") or request.GET.get("after")),
    }


def _export_rows(qs: QuerySet, up_to_id: int) -> Iterator[dict]:
    """Entries of `qs` with id < up_to_id, oldest first, read in keyset batches."""
    last_id = 0
    while True:
        batch = list(
            qs.filter(id__gt=last_id, id__lt=up_to_id)
            .order_by("id")
            .values(*EXPORT_FIELDS)[:EXPORT_BATCH]
        )
        if not batch:
            return
        yield from batch
        last_id = batch[-1]["id"]


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    if isinstance(value, str) and text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def _csv_stream(rows: Iterator[dict]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    for row in rows:
        writer.writerow([_csv_cell(row[name]) for name in EXPORT_FIELDS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _jsonl_stream(rows: Iterator[dict]) -> Iterator[str]:
    chunk: list[str] = []
    for row in rows:
        row["created"] = row["created"].isoformat()
        chunk.append(json.dumps(row, ensure_ascii=False) + "\n")
        if len(chunk) >= 500:
            yield "".join(chunk)
            chunk.clear()
    yield "".join(chunk)


EXPORT_FORMATS = {
    "csv": ("text/csv; charset=utf-8", _csv_stream),
    "jsonl": ("application/x-ndjson; charset=utf-8", _jsonl_stream),
}


@login_required
@require_GET
def audit_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """Stream the filtered entries as CSV or JSON lines; the export is audited first."""
    if fmt not in EXPORT_FORMATS:
        raise Http404("No such export format")
    entries = access.audit_entries_for_user(request.user)
    access.require_perm(request.user, "console.export_auditentry")
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        messages.error(request, "Nothing was exported: correct the filters first.")
        return redirect(f"{reverse('audit_list')}?{request.GET.urlencode()}")
    record = actions.record_audit_export(
        actor=request.user, source=AuditEntry.Source.UI, fmt=fmt, filters=form.active_filters()
    )
    content_type, stream = EXPORT_FORMATS[fmt]
    response = StreamingHttpResponse(
        stream(_export_rows(form.filter(entries), record.id)), content_type=content_type
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def audit_verify(request: HttpRequest) -> HttpResponse:
    access.require_perm(request.user, "console.verify_auditentry")
    job = jobs.enqueue("console.verify_audit", "Verify the audit chain", user=request.user)
    messages.success(request, "Verification of the audit chain is queued.")
    return redirect("job_detail", pk=job.pk)


# --- Jobs -----------------------------------------------------------------------------------


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    visible = access.jobs_for_user(request.user)
    context = filtered_list(request, JobFilterForm(request.GET), visible)
    context["sees_all"] = request.user.has_perm("console.view_all_jobs")
    return render(request, "console/job_list.html", context)


def _live_context(job: Job) -> dict:
    tail = list(job.log_lines.order_by("-id")[: LOG_TAIL + 1])
    return {
        "job": job,
        "log_lines": tail[:LOG_TAIL][::-1],
        "log_truncated": len(tail) > LOG_TAIL,
        "log_tail": LOG_TAIL,
    }


@login_required
@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = access.get_job_for_user(request.user, pk)
    return render(request, "console/job_detail.html", _live_context(job))


@never_cache
@require_GET
def job_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the job page; polled by htmx until the job has finished.

    When the session has ended, htmx is told to load the sign-in page as a whole page
    (HX-Redirect) instead of swapping it into the fragment.
    """
    if not request.user.is_authenticated:
        page = reverse("job_detail", args=[pk])
        if request.headers.get("HX-Request"):
            response = HttpResponse()
            response["HX-Redirect"] = f"{reverse('login')}?{urlencode({'next': page})}"
            return response
        return redirect_to_login(page)
    job = access.get_job_for_user(request.user, pk)
    return render(request, "console/partials/job_live.html", _live_context(job))
