"""Forms of the alert pages: the history's filters, a rule's settings, a maintenance window.
Validation is the actions' own (clusters.actions.alerts), so a page and an action can never
disagree; its errors name the field."""

from datetime import timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from clusters.actions.alerts import LEVELLED_RULES, check_rule_values, check_window
from clusters.models import Alert, AlertRule, Cluster, Severity
from console.forms import DATETIME_INPUT_FORMATS, DateTimeLocalInput


def _when(label: str, **kwargs) -> forms.DateTimeField:
    return forms.DateTimeField(label=label, input_formats=DATETIME_INPUT_FORMATS,
                               widget=DateTimeLocalInput(), **kwargs)  # fmt: skip


def add_action_errors(form: forms.Form, error: ValidationError) -> None:
    """Put an action's field errors on the form, once per field."""
    for field, messages in error.message_dict.items():
        if field not in form.errors:
            form.add_error(field if field in form.fields else None, messages)


class AlertFilterForm(forms.Form):
    """Filters of the alert history. All optional; times filter on when the alert was first
    seen."""

    cluster = forms.ModelChoiceField(queryset=Cluster.objects.all(), required=False,
                                     empty_label="any")  # fmt: skip
    rule = forms.ModelChoiceField(queryset=AlertRule.objects.all(), required=False,
                                  empty_label="any", to_field_name="key")  # fmt: skip
    severity = forms.ChoiceField(required=False, choices=[("", "any"), *Severity.choices])
    state = forms.ChoiceField(required=False, choices=[("", "any"), *Alert.State.choices])
    since = _when("Seen from", required=False)
    until = _when("Seen until", required=False)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "“Seen until” must be after “Seen from”.")
        return data

    def filter(self, qs: QuerySet) -> QuerySet:
        data = self.cleaned_data
        for name in ("cluster", "rule", "severity", "state"):
            if data.get(name):
                qs = qs.filter(**{name: data[name]})
        if data.get("since"):
            qs = qs.filter(first_seen__gte=data["since"])
        if data.get("until"):
            qs = qs.filter(first_seen__lte=data["until"])
        return qs


class AlertRuleForm(forms.ModelForm):
    """A rule's thresholds, duration, switches and addresses. Rules with fixed levels have no
    threshold fields."""

    class Meta:
        model = AlertRule
        fields = ["warning", "critical", "for_seconds", "enabled", "notify", "email_to"]
        labels = {
            "warning": "Warning above",
            "critical": "Critical above",
            "for_seconds": "For (seconds)",
            "notify": "Send mail",
            "email_to": "Also mail",
        }
        help_texts = {
            "for_seconds": "How long the condition must hold before the alert fires; 0: at once.",
            "email_to": "Addresses besides ALERT_EMAIL_TO, comma-separated.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.key not in LEVELLED_RULES:
            del self.fields["warning"], self.fields["critical"]
        elif self.instance.unit:
            for name in ("warning", "critical"):
                self.fields[name].help_text = f"In {self.instance.unit}; empty: no such level."

    def clean(self) -> dict:
        data = super().clean()
        if not self.errors:
            values = {"warning": None, "critical": None, **data}
            try:
                check_rule_values(self.instance, values)
            except ValidationError as e:
                add_action_errors(self, e)
        return data

    def _post_clean(self):
        """Leave the instance alone: clusters.actions.alerts.update_rule changes it."""


class MaintenanceForm(forms.Form):
    """A maintenance window: which cluster, from when (now by default) until when, and why."""

    cluster = forms.ModelChoiceField(queryset=Cluster.objects.none())
    starts = _when("Starts")
    ends = _when("Ends")
    reason = forms.CharField(max_length=255, help_text="Shown on the alerts page and audited.")

    def __init__(self, *args, clusters: QuerySet, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cluster"].queryset = clusters
        now = timezone.localtime().replace(second=0, microsecond=0)
        self.fields["starts"].initial = now
        self.fields["ends"].initial = now + timedelta(hours=1)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("starts") and data.get("ends"):
            try:
                check_window(data["starts"], data["ends"], data.get("reason", ""),
                             now=timezone.now())  # fmt: skip
            except ValidationError as e:
                add_action_errors(self, e)
        return data


class MaintenanceFilterForm(forms.Form):
    cluster = forms.ModelChoiceField(queryset=Cluster.objects.all(), required=False,
                                     empty_label="any")  # fmt: skip

    def filter(self, qs: QuerySet) -> QuerySet:
        cluster = self.cleaned_data.get("cluster")
        return qs.filter(cluster=cluster) if cluster else qs
