"""Forms of the server settings pages: the list's filters and the change of one parameter."""

from django import forms

from clusters.actions.settings import active_change
from clusters.actions.settings_check import ChangeRefused, check_change

SCOPES = [("node", "this node only"), ("cluster", "every database node of the cluster")]


class SettingsFilterForm(forms.Form):
    """Filters of a node's settings list (GET). Every field is optional."""

    q = forms.CharField(required=False, max_length=100, label="Search",
                        help_text="Part of a name or description.")  # fmt: skip
    category = forms.CharField(required=False, max_length=100)
    changed = forms.BooleanField(required=False, label="Changed from default")
    pending = forms.BooleanField(required=False, label="Restart pending")


class SettingChangeForm(forms.Form):
    """A new value for one parameter of a node, checked against the node's row for it (the
    server's own type, limits and choices) before anything is sent. `reset` (the Reset button)
    asks for the default instead and needs no value."""

    value = forms.CharField(required=False, max_length=4096, strip=False,
                            widget=forms.TextInput(attrs={"autocomplete": "off"}))  # fmt: skip
    scope = forms.ChoiceField(choices=SCOPES, initial="node", widget=forms.RadioSelect)
    confirm_access = forms.BooleanField(
        required=False,
        label="I know the console will lose its access to this server after its restart",
    )

    def __init__(self, *args, node, row: dict | None, name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.node, self.row, self.name = node, row, name
        if node.cluster is None:
            self.fields["scope"].choices = SCOPES[:1]

    @property
    def reset(self) -> bool:
        return self.is_bound and "reset" in self.data

    def clean(self):
        data = super().clean()
        running = active_change(self.node)
        if running is not None:
            raise forms.ValidationError(
                f"Another change is running on {self.node.name} or its cluster (job "
                f"#{running.pk}: {running.title}); wait for it to end."
            )
        value = None if self.reset else data.get("value", "")
        if value is not None and value.strip() == "" and self.row:
            if self.row.get("vartype", self.row.get("type")) not in ("string", "VARCHAR", "SET"):
                self.add_error("value", "Enter a value, or use Reset to default.")
                return data
        try:
            check_change(self.node, self.row, self.name, value,
                         confirmed=bool(data.get("confirm_access")))  # fmt: skip
        except ChangeRefused as e:
            self.add_error(e.field if e.field in self.fields else None, str(e))
        data["value"] = value
        return data
