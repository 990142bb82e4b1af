"""The HA operations' confirmation: the cluster's name, typed."""

from django import forms


class HaConfirmForm(forms.Form):
    """Switchover, failover, rebuild and PCP change which server takes writes: the DBA types
    the cluster's name to confirm (checked again by clusters.ha.actions.start_operation)."""

    confirm = forms.CharField(label="Type the cluster's name to confirm", max_length=64)

    def __init__(self, cluster, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cluster = cluster

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"].strip()
        if value != self.cluster.name:
            raise forms.ValidationError(
                f"Nothing was started: type the cluster's name, {self.cluster.name}, to confirm."
            )
        return value
