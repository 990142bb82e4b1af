"""Filter forms of the console pages and API: validated input, then one queryset filter.

Text filters match exactly, or by prefix when the value ends with `*` (and, for actions, when it
ends with a dot: `auth.` means every `auth.*` action). Prefix and exact matches use the btree
indexes on the audit table; a "contains" search would read the whole table, so there is none.
"""

from django import forms
from django.db.models import QuerySet

from console.models import AuditEntry, Job

DATETIME_INPUT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


def _text_filter(qs: QuerySet, field: str, value: str, *, dot_is_prefix: bool = False) -> QuerySet:
    """Exact match, or prefix match for `value*` (and `value.` when dot_is_prefix)."""
    if value.endswith("*"):
        return qs.filter(**{f"{field}__startswith": value.rstrip("*")})
    if dot_is_prefix and value.endswith("."):
        return qs.filter(**{f"{field}__startswith": value})
    return qs.filter(**{field: value})


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


class AuditFilterForm(forms.Form):
    """Filters of the audit page, its exports and /api/audit/. All fields are optional."""

    actor = forms.CharField(
        required=False, max_length=150, help_text="User name; end with * for a prefix."
    )
    action = forms.CharField(
        required=False, max_length=64, help_text='Exact, or a prefix: "auth." or "role*".'
    )
    target = forms.CharField(
        required=False, max_length=255, help_text="Exact; end with * for a prefix."
    )
    status = forms.ChoiceField(
        required=False, choices=[("", "any")] + list(AuditEntry.Status.choices)
    )
    since = forms.DateTimeField(
        required=False,
        label="From",
        input_formats=DATETIME_INPUT_FORMATS,
        widget=DateTimeLocalInput(),
    )
    until = forms.DateTimeField(
        required=False,
        label="To",
        input_formats=DATETIME_INPUT_FORMATS,
        widget=DateTimeLocalInput(),
    )

    def clean(self) -> dict:
        data = super().clean()
        for name in ("actor", "action", "target"):
            value = data.get(name) or ""
            if value and not value.rstrip("*"):
                self.add_error(name, "Give at least one character before the *.")
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "“To” must be after “From”.")
        return data

    def filter(self, qs: QuerySet) -> QuerySet:
        """Apply the cleaned filters to `qs` (call after is_valid())."""
        data = self.cleaned_data
        if data.get("actor"):
            qs = _text_filter(qs, "actor_name", data["actor"])
        if data.get("action"):
            qs = _text_filter(qs, "action", data["action"], dot_is_prefix=True)
        if data.get("target"):
            qs = _text_filter(qs, "target", data["target"])
        if data.get("status"):
            qs = qs.filter(status=data["status"])
        if data.get("since"):
            qs = qs.filter(created__gte=data["since"])
        if data.get("until"):
            qs = qs.filter(created__lte=data["until"])
        return qs

    def active_filters(self) -> dict[str, str]:
        """The filters in use, as strings (for the export's own audit entry)."""
        return {
            name: value.isoformat() if hasattr(value, "isoformat") else str(value)
            for name, value in self.cleaned_data.items()
            if value
        }


class JobFilterForm(forms.Form):
    """Filters of the jobs page and /api/jobs/."""

    status = forms.ChoiceField(required=False, choices=[("", "any")] + list(Job.Status.choices))
    kind = forms.CharField(
        required=False, max_length=64, help_text="Exact, or a prefix ending with * or a dot."
    )
    user = forms.CharField(required=False, max_length=150, help_text="User name, exact.")

    def filter(self, qs: QuerySet) -> QuerySet:
        data = self.cleaned_data
        if data.get("status"):
            qs = qs.filter(status=data["status"])
        if data.get("kind"):
            qs = _text_filter(qs, "kind", data["kind"], dot_is_prefix=True)
        if data.get("user"):
            qs = qs.filter(user_name=data["user"])
        return qs


class KeysetForm(forms.Form):
    """Keyset paging: `before=<id>` for older rows, `after=<id>` for newer ones."""

    before = forms.IntegerField(required=False, min_value=1)
    after = forms.IntegerField(required=False, min_value=1)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("before") and data.get("after"):
            raise forms.ValidationError("Give either before or after, not both.")
        return data
