"""Pages of a node's server settings: the list (searchable, filterable, key settings first,
pending restarts shown) and one parameter's page (its details, the change form, its history).

The change page keeps the parameter's row it showed in the session, so that a value the form
refuses is refused without asking the server again: nothing reaches a server before the value
passed the check. An accepted change is a job (clusters.change_setting), which reads the row
again and checks the value once more before it sends anything.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from clusters import access
from clusters.actions.settings import SERVICES, enqueue_change
from clusters.actions.settings_read import list_settings, read_row
from clusters.forms.settings import SettingChangeForm, SettingsFilterForm
from clusters.models import Node, SettingChange
from clusters.serversettings import mariadb_key_order, pg_key_order, pg_shown
from console.executor import ExecutorError
from console.executor.redact import redact

HISTORY = 50


def _settings_node(user, pk: int) -> Node:
    """A PostgreSQL or MariaDB node the user may see settings of (404 for other services)."""
    access.require_perm(user, "clusters.view_settingchange")
    node = access.get_node_for_user(user, pk)
    if node.service not in SERVICES:
        raise Http404("The console reads no settings from this node")
    return node


def _filtered(rows: list[dict], form: SettingsFilterForm, service: str) -> list[dict]:
    data = form.cleaned_data if form.is_valid() else {}
    term = (data.get("q") or "").lower()
    if term:
        rows = [r for r in rows if term in r["name"].lower() or term in r["description"].lower()]
    if data.get("category"):
        rows = [r for r in rows if r["category"] == data["category"]]
    if data.get("changed"):
        rows = [r for r in rows if r["changed"]]
    if data.get("pending"):
        rows = [r for r in rows if r["pending"]]
    key = pg_key_order if service == Node.Service.POSTGRESQL else mariadb_key_order
    return sorted(rows, key=lambda r: key(r["name"]))


@require_GET
@login_required
def node_settings(request, pk: int):
    node = _settings_node(request.user, pk)
    found = list_settings(node, actor=request.user)
    form = SettingsFilterForm(request.GET or None)
    context = {
        "node": node,
        "found": found,
        "form": form,
        "rows": _filtered(found.rows, form, node.service),
        "categories": sorted({r["category"] for r in found.rows if r["category"]}),
        "pending": [r for r in found.rows if r["pending"]],
        "history": SettingChange.objects.filter(node=node)[:HISTORY],
        "can_change": request.user.has_perm("clusters.add_settingchange"),
    }
    return render(request, "clusters/settings_list.html", context)


def _session_key(node: Node, name: str) -> str:
    return f"clusters.setting:{node.pk}:{name}"


def _row(request, node: Node, name: str, *, fresh: bool) -> tuple[dict | None, str]:
    """The parameter's row: read from the server (GET) or as the page showed it (POST)."""
    key = _session_key(node, name)
    if not fresh and key in request.session:
        return request.session[key], ""
    try:
        row = read_row(node, name, actor=request.user)
    except ExecutorError as e:
        return None, str(e)
    if row is not None:
        request.session[key] = {k: v for k, v in row.items() if k != "loaded"}
    return row, ""


def _default(node: Node, row: dict | None) -> str:
    if not row:
        return ""
    if node.service == Node.Service.POSTGRESQL:
        return redact(pg_shown(row.get("boot_val") or "", row.get("unit") or ""))
    return redact(row.get("default_value") or "")


@require_http_methods(["GET", "POST"])
@login_required
def node_setting(request, pk: int, name: str):
    node = _settings_node(request.user, pk)
    if request.method == "POST":
        access.require_perm(request.user, "clusters.add_settingchange")
    row, error = _row(request, node, name, fresh=request.method == "GET")
    form = SettingChangeForm(request.POST or None, node=node, row=row, name=name)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        job = enqueue_change(node, name, data["value"], cluster_wide=data["scope"] == "cluster",
                             confirmed=data["confirm_access"], actor=request.user)  # fmt: skip
        messages.success(request, f"{job.title} is queued.")
        return redirect("job_detail", pk=job.pk)
    history = SettingChange.objects.filter(name=name, node=node)
    if node.cluster is not None:
        history = SettingChange.objects.filter(name=name, cluster=node.cluster)
    context = {
        "node": node,
        "name": name,
        "row": {k: redact(v) if isinstance(v, str) else v for k, v in row.items()} if row else row,
        "description": (row or {}).get("short_desc") or (row or {}).get("description") or "",
        "default": _default(node, row),
        "error": error,
        "form": form,
        "history": history.select_related("node")[:HISTORY],
        "can_change": request.user.has_perm("clusters.add_settingchange"),
    }
    return render(request, "clusters/settings_detail.html", context)
