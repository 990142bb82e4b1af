"""Alert pages: open alerts, the alert history, the rules (DBAs edit them), and maintenance
windows (DBAs create and end them). One gate from clusters.access, one action, redirect."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, Value, When
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clusters import access
from clusters.actions.alerts import (
    LEVELLED_RULES,
    create_maintenance,
    end_maintenance,
    recipients,
    update_rule,
)
from clusters.forms.alerts import (
    AlertFilterForm,
    AlertRuleForm,
    MaintenanceFilterForm,
    MaintenanceForm,
    add_action_errors,
)
from clusters.models import Alert, Severity
from console.views import filtered_list

_FIRING_FIRST = Case(When(state=Alert.State.FIRING, then=Value(0)), default=Value(1),
                     output_field=IntegerField())  # fmt: skip
_CRITICAL_FIRST = Case(When(severity=Severity.CRITICAL, then=Value(0)), default=Value(1),
                       output_field=IntegerField())  # fmt: skip


def threshold(value, unit: str) -> str:
    """A threshold for people: bytes in MiB, the rest as given."""
    if value is None:
        return "—"
    if unit == "bytes":
        return f"{value / 1048576:.1f}".removesuffix(".0") + " MiB"
    return f"{value:g} {unit}".strip()


def _windows_now(user) -> list:
    if not user.has_perm("clusters.view_maintenancewindow"):
        return []
    now = timezone.now()
    windows = access.maintenance_for_user(user).filter(ends__gt=now, ended__isnull=True)
    return list(windows.order_by("starts"))


@require_GET
@login_required
def alert_list(request):
    """Open alerts: firing before pending, critical before warning, newest first."""
    alerts = access.alerts_for_user(request.user).filter(cleared__isnull=True)
    alerts = alerts.order_by(_FIRING_FIRST, _CRITICAL_FIRST, "-first_seen", "-pk")
    context = {
        "alerts": list(alerts),
        "windows": _windows_now(request.user),
        "now": timezone.now(),
        "can_maintain": request.user.has_perm("clusters.add_maintenancewindow"),
    }
    return render(request, "clusters/alert_list.html", context)


@require_GET
@login_required
def alert_history(request):
    alerts = access.alerts_for_user(request.user)
    context = filtered_list(request, AlertFilterForm(request.GET), alerts)
    return render(request, "clusters/alert_history.html", context)


@require_GET
@login_required
def alert_rules(request):
    rules = list(access.alert_rules_for_user(request.user))
    for rule in rules:
        rule.levelled = rule.key in LEVELLED_RULES
        rule.warning_text = threshold(rule.warning, rule.unit)
        rule.critical_text = threshold(rule.critical, rule.unit)
        rule.recipients = recipients(rule) if rule.notify else []
    context = {"rules": rules, "can_edit": request.user.has_perm("clusters.change_alertrule")}
    return render(request, "clusters/alert_rules.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def alert_rule_edit(request, pk: int):
    rule = access.get_rule_to_change(request.user, pk)
    form = AlertRuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        try:
            changed = update_rule(rule, actor=request.user, **form.cleaned_data)
        except ValidationError as e:
            add_action_errors(form, e)
        else:
            messages.success(request, f"{rule.title}: " + ("saved." if changed else "no change."))
            return redirect("clusters:alert_rules")
    return render(request, "clusters/alert_rule_form.html", {"form": form, "rule": rule})


@require_GET
@login_required
def maintenance_list(request):
    windows = access.maintenance_for_user(request.user)
    context = filtered_list(request, MaintenanceFilterForm(request.GET), windows)
    context["now"] = timezone.now()
    context["can_create"] = request.user.has_perm("clusters.add_maintenancewindow")
    context["can_end"] = request.user.has_perm("clusters.change_maintenancewindow")
    return render(request, "clusters/maintenance_list.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def maintenance_create(request):
    clusters = access.clusters_to_maintain(request.user)
    form = MaintenanceForm(request.POST or None, clusters=clusters)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            window = create_maintenance(data["cluster"], starts=data["starts"], ends=data["ends"],
                                        reason=data["reason"], actor=request.user)  # fmt: skip
        except ValidationError as e:
            add_action_errors(form, e)
        else:
            messages.success(request, f"{window.cluster.name} is in maintenance: {window.reason}")
            return redirect("clusters:maintenance_list")
    return render(request, "clusters/maintenance_form.html", {"form": form})


@require_POST
@login_required
def maintenance_end(request, pk: int):
    window = access.get_window_to_end(request.user, pk)
    if end_maintenance(window, actor=request.user):
        messages.success(
            request, f"Maintenance of {window.cluster.name} ended; alerts notify again."
        )
    else:
        messages.info(
            request, f"That maintenance window of {window.cluster.name} was over already."
        )
    return redirect("clusters:maintenance_list")
