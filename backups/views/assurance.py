"""Pages of the backups app: assurance (see backups/views/__init__.py).

A cluster's assurance page shows its test restores (policies, history with durations: the RTO
figures), the WAL archive's continuity and the last point it can be restored to, with the RPO.
Managers and auditors read it (clusters.view_cluster, backups.view_restorerun and
backups.view_archivecheck); DBAs also start a test restore (backups.add_restorerun) or an
archive check (backups.add_archivecheck) and edit the policies
(backups.change_testrestorepolicy).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods, require_POST

from backups import assurance, assurance_archive
from backups.assurance_forms import TestRestorePolicyForm
from backups.models import ArchiveCheck, RestoreRun, RestoreStatus, TestRestorePolicy
from clusters.access import get_cluster_for_user
from console.access import require_perm
from console.errors import ExpectedFailure

VIEW = ("backups.view_restorerun", "backups.view_archivecheck")
RUN, CHECK = "backups.add_restorerun", "backups.add_archivecheck"
EDIT = "backups.change_testrestorepolicy"
HISTORY = 25


def _cluster(user, pk: int, *perms: str):
    cluster = get_cluster_for_user(user, pk)
    for perm in (*VIEW, *perms):
        require_perm(user, perm)
    return cluster


def _policy(cluster, policy_pk: int) -> TestRestorePolicy:
    try:
        return TestRestorePolicy.objects.select_related("catalog__cluster", "node").get(
            pk=policy_pk, cluster=cluster
        )
    except TestRestorePolicy.DoesNotExist:
        raise Http404("No such test restore policy") from None


@require_http_methods(["GET"])
@login_required
def assurance_page(request, pk: int):
    cluster = _cluster(request.user, pk)
    now = timezone.now()
    policies = list(
        TestRestorePolicy.objects.filter(cluster=cluster).select_related("catalog", "node")
    )
    for policy in policies:
        policy.next_run = assurance.next_run(policy, now)
    history = list(
        RestoreRun.objects.filter(cluster=cluster, test_restore=True)
        .select_related("backup", "target_node", "job")
        .order_by("-created", "-id")[:HISTORY]
    )
    checks = list(ArchiveCheck.objects.filter(cluster=cluster).select_related("backup")[:10])
    last_good = next((r for r in history if r.status == RestoreStatus.SUCCEEDED), None)
    context = {
        "cluster": cluster,
        "now": now,
        "policies": policies,
        "history": history,
        "last_test": next((r for r in history if r.ended), None),
        "last_good": last_good,
        "check": checks[0] if checks else None,
        "checks": checks,
        "rpo": checks[0].rpo(now) if checks else None,
        "backup": assurance_archive.latest_usable_of_cluster(cluster),
        "can_run": request.user.has_perm(RUN),
        "can_check": request.user.has_perm(CHECK),
        "can_edit": request.user.has_perm(EDIT),
    }
    return render(request, "backups/assurance.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def policy_edit(request, pk: int, policy_pk: int | None = None):
    cluster = _cluster(request.user, pk, EDIT)
    policy = _policy(cluster, policy_pk) if policy_pk else TestRestorePolicy(cluster=cluster)
    form = TestRestorePolicyForm(request.POST or None, instance=policy, cluster=cluster)
    if request.method == "POST" and form.is_valid():
        try:
            assurance.save_test_restore_policy(form.instance, actor=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Saved: {assurance.describe(form.instance)}.")
            return redirect("backups:assurance", pk=cluster.pk)
    return render(request, "backups/assurance_policy_form.html",
                  {"cluster": cluster, "form": form, "policy": policy})  # fmt: skip


@require_POST
@login_required
def policy_delete(request, pk: int, policy_pk: int):
    cluster = _cluster(request.user, pk, EDIT, "backups.delete_testrestorepolicy")
    policy = _policy(cluster, policy_pk)
    if assurance.delete_test_restore_policy(policy, actor=request.user):
        messages.success(request, "Test restore policy deleted; its history stays.")
    return redirect("backups:assurance", pk=cluster.pk)


@require_POST
@login_required
def test_restore_now(request, pk: int, policy_pk: int):
    cluster = _cluster(request.user, pk, RUN)
    policy = _policy(cluster, policy_pk)
    try:
        job = assurance.start_test_restore(policy, actor=request.user)
    except ExpectedFailure as exc:
        messages.error(request, str(exc))
    else:
        url = reverse("job_detail", args=[job.pk])
        messages.success(request, format_html('Test restore queued: <a href="{}">job {}</a>.',
                                              url, job.pk))  # fmt: skip
    return redirect("backups:assurance", pk=cluster.pk)


@require_POST
@login_required
def archive_check_now(request, pk: int):
    cluster = _cluster(request.user, pk, CHECK)
    job = assurance_archive.start_archive_check(cluster, actor=request.user)
    if job is None:
        messages.info(request, "An archive check of this cluster is already queued or running.")
    else:
        url = reverse("job_detail", args=[job.pk])
        messages.success(request, format_html('Archive check queued: <a href="{}">job {}</a>.',
                                              url, job.pk))  # fmt: skip
    return redirect("backups:assurance", pk=cluster.pk)


_BASE = "clusters/<int:pk>/assurance/"
urlpatterns: list = [
    path(_BASE, assurance_page, name="assurance"),
    path(f"{_BASE}check/", archive_check_now, name="archive_check_now"),
    path(f"{_BASE}test-restores/new/", policy_edit, name="test_restore_policy_new"),
    path(f"{_BASE}test-restores/<int:policy_pk>/", policy_edit, name="test_restore_policy_edit"),
    path(
        f"{_BASE}test-restores/<int:policy_pk>/delete/",
        policy_delete,
        name="test_restore_policy_delete",
    ),  # fmt: skip
    path(f"{_BASE}test-restores/<int:policy_pk>/run/", test_restore_now, name="test_restore_now"),
]
