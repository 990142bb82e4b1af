"""The fleet dashboard's filters (clusters.views.dashboard.fleet)."""

from django import forms

from clusters import dashboard


class FleetFilterForm(forms.Form):
    """The dashboard's query string: environment, state, sort. A bad value is reported on its
    field and that filter is not applied."""

    env = forms.CharField(required=False, max_length=64, label="Environment")
    state = forms.ChoiceField(
        required=False, label="State",
        choices=[("", "any state"), *((s, s) for s in dashboard.STATES)],
    )  # fmt: skip
    sort = forms.ChoiceField(required=False, label="Sort", choices=list(dashboard.SORTS.items()))
    page = forms.IntegerField(required=False, min_value=1, label="Page")

    def __init__(self, data, environments: list[str]):
        super().__init__(data)
        self.environments = environments

    def clean_env(self) -> str:
        env = self.cleaned_data["env"]
        if env and env not in self.environments:
            raise forms.ValidationError(f"No environment is called {env!r}.")
        return env

    def value(self, name: str, default=""):
        if not self.is_valid() and name in self.errors:
            return default
        return self.cleaned_data.get(name) or default
