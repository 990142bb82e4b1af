"""Pages of backup catalogs: the list, create and edit (checked on the hosts before saving, see
backups.catalog_admin), a catalog's page (nodes, path, engine, policies, runs, last read, "Read
now" and "Check") and delete with the name typed. DBAs change; managers and auditors read.
Each view: one permission check, one action, redirect or render."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backups import catalog_admin
from backups.catalog_forms import BackupCatalogForm, DeleteCatalogForm
from backups.models import BackupCatalog, BackupRun
from console.access import require_perm
from console.errors import ExpectedFailure
from console.executor import ExecutorError


def _catalogs(user):
    require_perm(user, "backups.view_backupcatalog")
    return BackupCatalog.objects.select_related("cluster").prefetch_related("nodes")


def _catalog(user, pk: int, perm: str) -> BackupCatalog:
    require_perm(user, perm)
    return get_object_or_404(_catalogs(user), pk=pk)


def _form_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _read_message(request, saved: catalog_admin.Saved) -> None:
    if saved.read_error:
        messages.warning(request, f"The catalog could not be read yet: {saved.read_error}")
    elif saved.read is not None:
        total, found = saved.read.total, len(saved.read.created)
        messages.info(request, f"Read: {total} backup{'s' if total != 1 else ''} listed, "
                      f"{found} found outside the console.")  # fmt: skip


@require_GET
@login_required
def catalog_list(request):
    catalogs = _catalogs(request.user).annotate(
        policy_count=Count("policies", distinct=True), run_count=Count("runs", distinct=True)
    )
    context = {"catalogs": catalogs,
               "can_add": request.user.has_perm("backups.add_backupcatalog")}  # fmt: skip
    return render(request, "backups/catalog_list.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def catalog_create(request):
    require_perm(request.user, "backups.add_backupcatalog")
    form = BackupCatalogForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            saved = catalog_admin.create_catalog(form.instance, form.cleaned_data["nodes"],
                                                 actor=request.user)  # fmt: skip
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Catalog {saved.catalog} created: "
                             f"{'; '.join(saved.check.steps)}.")  # fmt: skip
            _read_message(request, saved)
            return redirect("backups:catalog_detail", pk=saved.catalog.pk)
    return render(request, "backups/catalog_form.html", {"form": form, "catalog": None})


@require_http_methods(["GET", "POST"])
@login_required
def catalog_edit(request, pk: int):
    catalog = _catalog(request.user, pk, "backups.change_backupcatalog")
    form = BackupCatalogForm(request.POST or None, instance=BackupCatalog.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        try:
            changed = catalog_admin.update_catalog(catalog, form.values(), actor=request.user)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            what = f"{', '.join(changed)} changed" if changed else "nothing changed"
            messages.success(request, f"Catalog {catalog}: {what}.")
            return redirect("backups:catalog_detail", pk=catalog.pk)
    return render(request, "backups/catalog_form.html", {"form": form, "catalog": catalog})


@require_GET
@login_required
def catalog_detail(request, pk: int):
    catalog = _catalog(request.user, pk, "backups.view_backupcatalog")
    require_perm(request.user, "backups.view_backuprun")
    runs = BackupRun.objects.filter(catalog=catalog).select_related("cluster", "policy", "catalog")
    context = {
        "catalog": catalog,
        "policies": catalog.policies.all(),
        "run_count": runs.count(),
        "runs": runs.order_by("-created", "-id")[:15],
        "can_change": request.user.has_perm("backups.change_backupcatalog"),
        "can_delete": request.user.has_perm("backups.delete_backupcatalog"),
    }
    return render(request, "backups/catalog_detail.html", context)


@require_POST
@login_required
def catalog_read(request, pk: int):
    catalog = _catalog(request.user, pk, "backups.change_backupcatalog")
    try:
        read = catalog_admin.read_catalog_now(catalog, actor=request.user)
    except (ExpectedFailure, ExecutorError) as exc:
        messages.error(request, f"The catalog could not be read: {exc}")
    else:
        plural = "s" if read.total != 1 else ""
        messages.success(request, f"Read: {read.total} backup{plural} listed; "
                         f"{len(read.created)} new, {len(read.updated)} changed.")  # fmt: skip
    return redirect("backups:catalog_detail", pk=catalog.pk)


@require_POST
@login_required
def catalog_check(request, pk: int):
    catalog = _catalog(request.user, pk, "backups.change_backupcatalog")
    try:
        result = catalog_admin.check_catalog(catalog, actor=request.user)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            messages.error(request, f"Check failed ({field}): {' '.join(errors)}")
    else:
        messages.success(request, f"Check passed: {'; '.join(result.steps)}.")
    return redirect("backups:catalog_detail", pk=catalog.pk)


@require_http_methods(["GET", "POST"])
@login_required
def catalog_delete(request, pk: int):
    """GET asks for the name typed; POST with it deletes the record (files stay)."""
    catalog = _catalog(request.user, pk, "backups.delete_backupcatalog")
    form = DeleteCatalogForm(request.POST or None, catalog=catalog)
    refused = ""
    if request.method == "POST" and form.is_valid():
        try:
            catalog_admin.delete_catalog(catalog, actor=request.user)
        except catalog_admin.CatalogRefused as exc:
            refused = str(exc)
        else:
            messages.success(request, f"Catalog {catalog} deleted; its files on the hosts "
                             "were kept.")  # fmt: skip
            return redirect("backups:catalog_list")
    context = {"catalog": catalog, "form": form, "refused": refused,
               "users": catalog_admin.catalog_users(catalog)}  # fmt: skip
    return render(request, "backups/catalog_delete.html", context)


urlpatterns = [
    path("catalogs/", catalog_list, name="catalog_list"),
    path("catalogs/new/", catalog_create, name="catalog_create"),
    path("catalogs/<int:pk>/", catalog_detail, name="catalog_detail"),
    path("catalogs/<int:pk>/edit/", catalog_edit, name="catalog_edit"),
    path("catalogs/<int:pk>/read/", catalog_read, name="catalog_read"),
    path("catalogs/<int:pk>/check/", catalog_check, name="catalog_check"),
    path("catalogs/<int:pk>/delete/", catalog_delete, name="catalog_delete"),
]
