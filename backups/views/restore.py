"""Pages of the backups app: restore (see backups/views/__init__.py).

The wizard at /backups/restore/ (DBAs: backups.add_restorerun): step 1 the cluster, step 2 the
target node, step 3 the recovery target, step 4 the plan (backup and WAL used), the pre-check
results read on the target host, and the typed confirmation, POSTed to restore_start which
calls backups.restore.start_restore (one action: refused with a message on the field, nothing
queued). A restore's page (backups.view_restorerun: DBAs, managers, auditors) shows its plan,
pre-checks, outcome and the follow-ups (backups.restore_followups), which DBAs start from there.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from backups import restore as actions
from backups import restore_followups as followups
from backups.actions import BackupRefused
from backups.models import RestoreRun
from backups.restore_checks import run_prechecks
from backups.restore_forms import STEP_FIELDS, ClusterStep, ConfirmStep, NodeStep, TargetStep
from backups.restore_plan import PlanError, make_plan
from console.access import require_perm

ADD, VIEW = "backups.add_restorerun", "backups.view_restorerun"


def _bound(data: QueryDict, step: int) -> QueryDict | None:
    """A step's form is bound once its first field was submitted."""
    return data if STEP_FIELDS[step][0] in data else None


def _hidden(data: QueryDict, upto: int) -> list[tuple[str, str]]:
    return [(name, data.get(name, "")) for step in range(1, upto + 1)
            for name in STEP_FIELDS[step] if name in data]  # fmt: skip


def _wizard(data: QueryDict) -> dict:
    """Bind each step in turn; stop at the first one not given or not valid. Step 4 has the
    plan (or the plan's error put on its step's field)."""
    s1 = ClusterStep(_bound(data, 1))
    context = {"step": 1, "s1": s1, "hidden": []}
    if not s1.is_bound or not s1.is_valid():
        return context
    cluster = s1.cleaned_data["cluster"]
    s2 = NodeStep(cluster, _bound(data, 2))
    context.update(step=2, s2=s2, cluster=cluster, hidden=_hidden(data, 1))
    if not s2.is_bound or not s2.is_valid():
        return context
    s3 = TargetStep(_bound(data, 3))
    context.update(step=3, s3=s3, hidden=_hidden(data, 2))
    if not s3.is_bound or not s3.is_valid():
        return context
    c2, c3 = s2.cleaned_data, s3.cleaned_data
    try:
        plan = make_plan(c2["catalog"], c2["target_node"], c3["target"],
                         data_directory=c2["data_directory"], port=c2["port"],
                         check_query=c3["check_query"])  # fmt: skip
    except PlanError as exc:
        for form, step in ((s2, 2), (s3, 3)):
            if exc.field in form.fields:
                form.add_error(exc.field, exc.message)
                context.update(step=step, hidden=_hidden(data, step - 1))
                return context
        s2.add_error(None, exc.message)  # catalog-wide: no usable backup at all
        context.update(step=2, hidden=_hidden(data, 1))
        return context
    context.update(step=4, plan=plan, hidden=_hidden(data, 3))
    return context


def _back_links(data: QueryDict) -> dict:
    links = {}
    for step in (1, 2, 3, 4):
        query = QueryDict(mutable=True)
        for name, value in _hidden(data, step - 1):
            query[name] = value
        links[step] = query.urlencode()
    return links


@require_GET
@login_required
def restore_wizard(request):
    require_perm(request.user, ADD)
    context = _wizard(request.GET)
    if context["step"] == 4:
        plan = context["plan"]
        context["report"] = run_prechecks(plan, actor=request.user)
        context["confirm_form"] = ConfirmStep(plan.confirm_word)
    context["back"] = _back_links(request.GET)
    context["recent"] = RestoreRun.objects.select_related("cluster", "target_node")[:10]
    return render(request, "backups/restore_wizard.html", context)


@require_POST
@login_required
def restore_start(request):
    require_perm(request.user, ADD)
    context = _wizard(request.POST)
    context["back"] = _back_links(request.POST)
    if context["step"] != 4:  # a step's value changed under the page: show that step
        return render(request, "backups/restore_wizard.html", context, status=400)
    plan = context["plan"]
    form = ConfirmStep(plan.confirm_word, request.POST)
    context["confirm_form"] = form
    if form.is_valid():
        try:
            run = actions.start_restore(plan, confirm=form.cleaned_data["confirm"],
                                        actor=request.user)  # fmt: skip
        except actions.RestoreRefused as exc:
            if exc.field in form.fields:
                form.add_error(exc.field, str(exc))
            else:
                messages.error(request, str(exc))
            context["report"] = exc.report
        else:
            messages.success(request, f"The restore of {plan.cluster.name} onto "
                                      f"{plan.node.name} is queued.")  # fmt: skip
            return redirect("backups:restore_detail", pk=run.pk)
    if context.get("report") is None:
        context["report"] = run_prechecks(plan, actor=request.user)
    return render(request, "backups/restore_wizard.html", context, status=400)


def _restore(user, pk: int) -> RestoreRun:
    require_perm(user, VIEW)
    try:
        return RestoreRun.objects.select_related(
            "cluster", "catalog", "target_node", "backup", "job", "detail"
        ).get(pk=pk)
    except RestoreRun.DoesNotExist:
        raise Http404("No such restore") from None


@require_GET
@login_required
def restore_detail(request, pk: int):
    run = _restore(request.user, pk)
    detail = getattr(run, "detail", None)
    context = {
        "run": run,
        "detail": detail,
        "can_follow_up": request.user.has_perm("backups.change_restorerun"),
        "can_back_up": request.user.has_perm("backups.add_backuprun"),
        "pg_rman": run.catalog.engine == "pg_rman",
    }
    return render(request, "backups/restore_detail.html", context)


@require_POST
@login_required
def restore_cleanup(request, pk: int):
    run = _restore(request.user, pk)
    require_perm(request.user, "backups.change_restorerun")
    try:
        job = followups.queue_cleanup(run, actor=request.user)
    except actions.RestoreRefused as exc:
        messages.error(request, str(exc))
        return redirect("backups:restore_detail", pk=run.pk)
    messages.success(request, "Removing the recovery settings is queued.")
    return redirect("job_detail", pk=job.pk)


@require_POST
@login_required
def restore_full_backup(request, pk: int):
    run = _restore(request.user, pk)
    require_perm(request.user, "backups.add_backuprun")
    try:
        backup = followups.queue_full_backup(run, actor=request.user)
    except BackupRefused as exc:
        messages.error(request, str(exc))
        return redirect("backups:restore_detail", pk=run.pk)
    messages.success(request, f"A full backup of {run.cluster.name} is queued.")
    return redirect("job_detail", pk=backup.job_id)


urlpatterns = [
    path("restore/", restore_wizard, name="restore_wizard"),
    path("restore/start/", restore_start, name="restore_start"),
    path("restore/<int:pk>/", restore_detail, name="restore_detail"),
    path("restore/<int:pk>/cleanup/", restore_cleanup, name="restore_cleanup"),
    path("restore/<int:pk>/full-backup/", restore_full_backup, name="restore_full_backup"),
]
