"""Pages of the backups app: policies (see backups/views/__init__.py).

The overview (catalogs, policies with their next run, latest runs), policy create, edit,
enable, disable and delete (with a confirmation), "Back up now", the run list and a run's page
(its job page has the live log). DBAs change things; managers and auditors read. Each view:
one permission check, one action, redirect."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backups import schedule
from backups.actions import BackupRefused, start_backup
from backups.forms import BackupPolicyForm
from backups.models import BackupCatalog, BackupPolicy, BackupRun, MissedBackup
from console.access import require_perm

_NEWEST_RUN = Subquery(
    BackupRun.objects.filter(policy=OuterRef("pk")).order_by("-created", "-id").values("pk")[:1]
)


def _policies(user):
    require_perm(user, "backups.view_backuppolicy")
    return BackupPolicy.objects.select_related("catalog__cluster", "source_node")


def _runs(user):
    require_perm(user, "backups.view_backuprun")
    return BackupRun.objects.select_related("catalog", "cluster", "policy", "job")


def _policy(user, pk: int, perm: str) -> BackupPolicy:
    require_perm(user, perm)
    return get_object_or_404(_policies(user), pk=pk)


def _form_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@require_GET
@login_required
def overview(request):
    policies = list(_policies(request.user).annotate(newest_run=_NEWEST_RUN))
    newest = [p.newest_run for p in policies if p.newest_run]
    last = {run.pk: run for run in _runs(request.user).filter(pk__in=newest)}
    now = timezone.now()
    for policy in policies:
        policy.next_run = schedule.next_run(policy, now)
        policy.last_run = last.get(policy.newest_run)
    require_perm(request.user, "backups.view_backupcatalog")
    context = {
        "catalogs": BackupCatalog.objects.select_related("cluster").prefetch_related("nodes"),
        "policies": policies,
        "runs": _runs(request.user).order_by("-created", "-id")[:15],
        "missed": MissedBackup.objects.select_related("cluster", "policy")[:10],
        "can_edit": request.user.has_perm("backups.change_backuppolicy"),
        "can_add": request.user.has_perm("backups.add_backuppolicy"),
        "can_run": request.user.has_perm("backups.add_backuprun"),
    }
    return render(request, "backups/overview.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def policy_create(request):
    require_perm(request.user, "backups.add_backuppolicy")
    form = BackupPolicyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            policy = schedule.create_policy(form.instance, actor=request.user)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Policy {policy.name} created; next run "
                             f"{schedule.next_run(policy):%Y-%m-%d %H:%M %Z}.")  # fmt: skip
            return redirect("backups:overview")
    return render(request, "backups/policy_form.html", {"form": form, "policy": None})


@require_http_methods(["GET", "POST"])
@login_required
def policy_edit(request, pk: int):
    policy = _policy(request.user, pk, "backups.change_backuppolicy")
    form = BackupPolicyForm(request.POST or None, instance=BackupPolicy.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        try:
            changed = schedule.update_policy(policy, form.values(), actor=request.user)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            what = f"{', '.join(changed)} changed" if changed else "nothing changed"
            messages.success(request, f"Policy {policy.name}: {what}.")
            return redirect("backups:overview")
    return render(request, "backups/policy_form.html", {"form": form, "policy": policy})


@require_POST
@login_required
def policy_enable(request, pk: int):
    policy = _policy(request.user, pk, "backups.change_backuppolicy")
    if schedule.set_policy_enabled(policy, True, actor=request.user):
        messages.success(request, f"Policy {policy.name} enabled.")
    return redirect("backups:overview")


@require_POST
@login_required
def policy_disable(request, pk: int):
    policy = _policy(request.user, pk, "backups.change_backuppolicy")
    if schedule.set_policy_enabled(policy, False, actor=request.user):
        messages.success(request, f"Policy {policy.name} disabled: beat no longer fires it.")
    return redirect("backups:overview")


@require_http_methods(["GET", "POST"])
@login_required
def policy_delete(request, pk: int):
    """GET asks for confirmation; POST with the policy's name typed deletes it."""
    policy = _policy(request.user, pk, "backups.delete_backuppolicy")
    error = ""
    if request.method == "POST":
        if request.POST.get("confirm_name", "").strip() == policy.name:
            schedule.delete_policy(policy, actor=request.user)
            messages.success(request, f"Policy {policy.name} deleted; its runs are kept.")
            return redirect("backups:overview")
        error = f"Type the policy's name, {policy.name}, to delete it."
    context = {"policy": policy, "error": error, "runs": policy.runs.count()}
    return render(request, "backups/policy_delete.html", context)


@require_POST
@login_required
def policy_backup_now(request, pk: int):
    policy = _policy(request.user, pk, "backups.add_backuprun")
    try:
        run = start_backup(policy, policy.mode, actor=request.user)
    except BackupRefused as exc:
        messages.error(request, str(exc))
        return redirect("backups:overview")
    messages.success(request, f"{run.mode} backup of {policy.catalog} queued.")
    return redirect("backups:run_detail", pk=run.pk)


@require_GET
@login_required
def run_list(request):
    runs = _runs(request.user).order_by("-created", "-id")
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    return render(request, "backups/run_list.html", {"page": page, "runs": page.object_list})


@require_GET
@login_required
def run_detail(request, pk: int):
    run = get_object_or_404(_runs(request.user), pk=pk)
    return render(request, "backups/run_detail.html", {"run": run})


urlpatterns = [
    path("", overview, name="overview"),
    path("policies/new/", policy_create, name="policy_create"),
    path("policies/<int:pk>/edit/", policy_edit, name="policy_edit"),
    path("policies/<int:pk>/enable/", policy_enable, name="policy_enable"),
    path("policies/<int:pk>/disable/", policy_disable, name="policy_disable"),
    path("policies/<int:pk>/delete/", policy_delete, name="policy_delete"),
    path("policies/<int:pk>/backup/", policy_backup_now, name="policy_backup_now"),
    path("runs/", run_list, name="run_list"),
    path("runs/<int:pk>/", run_detail, name="run_detail"),
]
