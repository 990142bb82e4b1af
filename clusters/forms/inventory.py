"""Forms of the clusters pages."""

from django import forms

from clusters.logs import MAX_TERM
from clusters.models import Cluster


class SecretTextarea(forms.Textarea):
    """A textarea that never sends its value back to the browser (for a private key)."""

    def format_value(self, value):
        return None


class RegistrationForm(forms.Form):
    """Step 1 of registering a cluster: its primary and how to reach it."""

    name = forms.SlugField(max_length=64, help_text="Letters, digits, - and _.")
    kind = forms.ChoiceField(choices=Cluster.Kind.choices)
    environment = forms.SlugField(max_length=64, initial="production")
    address = forms.CharField(max_length=255, label="Primary address")
    ssh_port = forms.IntegerField(min_value=1, max_value=65535, initial=22, label="SSH port")
    ssh_user = forms.CharField(max_length=64, initial="root", label="SSH user")
    ssh_key = forms.CharField(
        widget=SecretTextarea(attrs={"rows": 4, "autocomplete": "off"}),
        label="SSH private key",
        help_text="OpenSSH private key; stored encrypted, never shown again.",
        strip=False,
    )
    db_port = forms.IntegerField(min_value=1, max_value=65535, initial=5432, label="Database port")
    db_user = forms.CharField(max_length=64, initial="postgres", label="Database user")
    db_password = forms.CharField(widget=forms.PasswordInput, label="Database password")
    pgpool_address = forms.CharField(max_length=255, required=False, label="pgpool-II address")
    pgpool_port = forms.IntegerField(
        min_value=1, max_value=65535, required=False, initial=9999, label="pgpool-II port"
    )
    pcp_port = forms.IntegerField(
        min_value=1, max_value=65535, required=False, initial=9898, label="PCP port"
    )
    pcp_user = forms.CharField(max_length=64, required=False, label="PCP user")
    pcp_password = forms.CharField(widget=forms.PasswordInput, required=False, label="PCP password")

    SECRETS = ("ssh_key", "db_password", "pcp_password")

    def clean(self):
        data = super().clean()
        if data.get("kind") == Cluster.Kind.MARIADB and data.get("pgpool_address"):
            self.add_error("pgpool_address", "pgpool-II fronts PostgreSQL clusters only.")
        return data

    def split(self) -> tuple[dict, dict]:
        """The plain fields and the secrets, apart."""
        data = dict(self.cleaned_data)
        secrets = {name: data.pop(name) for name in self.SECRETS}
        return data, secrets


class LogSearchForm(forms.Form):
    """The log viewer's search: one line of text, matched as a fixed string by grep -F.

    The term reaches grep as one argv element, so quotes, `;` or `$(...)` are only text; the
    form still refuses what clusters.logs refuses (control characters, more than MAX_TERM)."""

    term = forms.CharField(max_length=MAX_TERM, strip=False, label="Search the log")

    def clean_term(self) -> str:
        term = self.cleaned_data["term"]
        if any(ord(c) < 32 and c != "\t" for c in term):
            raise forms.ValidationError(
                "A search term is one line of text, without control characters."
            )
        if not term.strip():
            raise forms.ValidationError("A search term cannot be only spaces.")
        return term
