"""Pages of a cluster's pg_hba.conf: the rules with their lint and the nodes' drift, editing a
rule, reordering, the preview (each node's file and its diff against the node), apply and
rollback with the cluster's name typed to confirm, and a version's outcome per node."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clusters import access, hba, hba_validate, hbalint
from clusters.actions import hba as actions
from clusters.actions import hba_apply as apply_actions
from clusters.actions import hba_live as live_actions
from clusters.forms.hba import ConfirmForm, HbaRuleForm, masked_options
from clusters.models import HbaVersion
from console.models import AuditEntry


def _rows(ruleset):
    """Each rule with its lint findings."""
    objects = list(ruleset.rules.all())
    findings = hbalint.lint([o.as_rule() for o in objects])
    rows = []
    for i, obj in enumerate(objects):
        rule = obj.as_rule()
        rows.append({
            "obj": obj, "rule": rule, "number": i + 1, "options": masked_options(rule),
            "findings": [f for f in findings if f.position == i],
        })  # fmt: skip
    return rows


@require_GET
@login_required
def hba_detail(request, pk: int):
    cluster = access.get_cluster_for_hba(request.user, pk)
    ruleset = actions.ruleset_of(cluster)
    drift, between = live_actions.drift_report(cluster)
    context = {
        "cluster": cluster,
        "ruleset": ruleset,
        "rows": _rows(ruleset),
        "drift": drift,
        "between": between,
        "versions": ruleset.versions.prefetch_related("node_files__node")[:20],
        "active_job": actions.active_job(cluster),
        "can_change": request.user.has_perm("clusters.change_hbaruleset"),
        "can_apply": request.user.has_perm("clusters.apply_hbaruleset"),
    }
    return render(request, "clusters/hba_detail.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def hba_rule_edit(request, pk: int, rule_pk: int | None = None):
    cluster = access.get_cluster_for_hba(request.user, pk, perm="change")
    ruleset = actions.ruleset_of(cluster)
    previous = None
    if rule_pk is not None:
        try:
            previous = actions.rule_in(ruleset, rule_pk).as_rule()
        except actions.HbaRefused:
            raise Http404("No such rule") from None
    form = HbaRuleForm(request.POST or None, previous=previous)
    if request.method == "POST" and form.is_valid():
        position = request.POST.get("position")
        try:
            actions.save_rule(
                ruleset, form.cleaned_data["rule"], rule_id=rule_pk,
                position=int(position) - 1 if position and position.isdigit() else None,
                actor=request.user,
            )  # fmt: skip
        except actions.HbaRefused as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, "Rule saved. Preview and apply it to send it to the nodes.")
            return redirect("clusters:hba_detail", pk=cluster.pk)
    context = {"cluster": cluster, "form": form, "editing": previous is not None}
    return render(request, "clusters/hba_rule_form.html", context)


@require_POST
@login_required
def hba_rule_move(request, pk: int, rule_pk: int):
    cluster = access.get_cluster_for_hba(request.user, pk, perm="change")
    ruleset = actions.ruleset_of(cluster)
    position = request.POST.get("position", "")
    try:
        rule = actions.rule_in(ruleset, rule_pk)
        if position in ("up", "down"):
            target = rule.position + (-1 if position == "up" else 1)
        elif position.isdigit():
            target = int(position) - 1
        else:
            raise actions.HbaRefused("Give a position: up, down or a rule number.")
        actions.move_rule(ruleset, rule_pk, target, actor=request.user)
    except actions.HbaRefused as e:
        messages.error(request, str(e))
    return redirect("clusters:hba_detail", pk=cluster.pk)


@require_POST
@login_required
def hba_rule_delete(request, pk: int, rule_pk: int):
    cluster = access.get_cluster_for_hba(request.user, pk, perm="change")
    try:
        actions.delete_rule(actions.ruleset_of(cluster), rule_pk, actor=request.user)
    except actions.HbaRefused as e:
        messages.error(request, str(e))
    else:
        messages.success(request, "Rule deleted from the console's version.")
    return redirect("clusters:hba_detail", pk=cluster.pk)


@require_GET
@login_required
def hba_preview(request, pk: int):
    cluster = access.get_cluster_for_hba(request.user, pk)
    drift, _between = live_actions.drift_report(cluster)
    ruleset = actions.ruleset_of(cluster)
    errors = [(i + 1, hba_validate.validate(r)) for i, r in enumerate(ruleset.rules_list())]
    context = {
        "cluster": cluster,
        "drift": drift,
        "previews": [(d, hba.mask_secrets(d.expected)) for d in drift],
        "invalid": [(n, e) for n, e in errors if e],
        "findings": hbalint.lint(ruleset.rules_list()),
        "form": ConfirmForm(cluster=cluster),
        "can_apply": request.user.has_perm("clusters.apply_hbaruleset"),
    }
    return render(request, "clusters/hba_preview.html", context)


@require_POST
@login_required
def hba_apply(request, pk: int):
    cluster = access.get_cluster_for_hba(request.user, pk, perm="apply")
    form = ConfirmForm(request.POST, cluster=cluster)
    if not form.is_valid():
        messages.error(request, form.errors["confirm"][0])
        return redirect("clusters:hba_preview", pk=cluster.pk)
    try:
        job = apply_actions.start_apply(cluster, confirm=form.cleaned_data["confirm"],
                                        actor=request.user)  # fmt: skip
    except actions.HbaRefused as e:
        messages.error(request, str(e))
        return redirect("clusters:hba_preview", pk=cluster.pk)
    messages.success(request, "Applying pg_hba.conf: the job shows each node's outcome.")
    return redirect("job_detail", pk=job.pk)


@require_POST
@login_required
def hba_rollback(request, pk: int, number: int):
    cluster = access.get_cluster_for_hba(request.user, pk, perm="apply")
    form = ConfirmForm(request.POST, cluster=cluster)
    if not form.is_valid():
        messages.error(request, form.errors["confirm"][0])
        return redirect("clusters:hba_version", pk=cluster.pk, number=number)
    try:
        job = apply_actions.start_rollback(cluster, number, confirm=form.cleaned_data["confirm"],
                                           actor=request.user)  # fmt: skip
    except actions.HbaRefused as e:
        messages.error(request, str(e))
        return redirect("clusters:hba_detail", pk=cluster.pk)
    messages.success(request, f"Rolling back to version {number}.")
    return redirect("job_detail", pk=job.pk)


@require_POST
@login_required
def hba_read(request, pk: int):
    adopt = request.POST.get("adopt") == "1"
    cluster = access.get_cluster_for_hba(request.user, pk, perm="change")
    try:
        job = live_actions.start_read(cluster, adopt=adopt, actor=request.user,
                                      source=AuditEntry.Source.UI)  # fmt: skip
    except actions.HbaRefused as e:
        messages.error(request, str(e))
        return redirect("clusters:hba_detail", pk=cluster.pk)
    return redirect("job_detail", pk=job.pk)


@require_GET
@login_required
def hba_version(request, pk: int, number: int):
    cluster = access.get_cluster_for_hba(request.user, pk)
    ruleset = actions.ruleset_of(cluster)
    try:
        version = ruleset.versions.get(number=number)
    except HbaVersion.DoesNotExist:
        raise Http404("No such version") from None
    files = [(nv, hba.mask_secrets(nv.text)) for nv in version.node_files.select_related("node")]
    context = {
        "cluster": cluster,
        "version": version,
        "files": files,
        "form": ConfirmForm(cluster=cluster),
        "can_apply": request.user.has_perm("clusters.apply_hbaruleset"),
    }
    return render(request, "clusters/hba_version.html", context)
