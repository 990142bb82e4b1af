"""The restore wizard's forms, one per step; each step's values travel as hidden fields.

Step 1 the cluster, step 2 the catalog, target node, data directory and port, step 3 the
recovery target and the check query, step 4 the typed confirmation. The checks that need the
records (a node in place, a backup before the target) are backups.restore_plan's: its
PlanError names the field, and the view puts the message on that field of its step.
"""

from django import forms
from django.db.models import Q

from backups.models import BackupCatalog, RecoveryTargetKind
from backups.restore import DEFAULT_CHECK
from backups.restore_plan import TARGET_ACTIONS, PlanError, parse_target
from clusters.models import Cluster, Node

STEP_FIELDS = {
    1: ("cluster",),
    2: ("catalog", "target_node", "data_directory", "port"),
    3: ("target_kind", "target_value", "target_inclusive", "target_action", "check_query"),
}


class ClusterStep(forms.Form):
    cluster = forms.ModelChoiceField(
        queryset=Cluster.objects.filter(backup_catalogs__isnull=False).distinct(),
        empty_label="Choose a cluster",
        help_text="Only clusters with a backup catalog are listed.",
    )


def _node_label(node: Node) -> str:
    if node.cluster_id is None:
        return f"{node.name} (bare host, {node.address}): a test restore or a clone"
    return f"{node.name} ({node.role} of {node.cluster.name}, {node.address})"


class NodeStep(forms.Form):
    catalog = forms.ModelChoiceField(queryset=BackupCatalog.objects.none(), empty_label=None)
    target_node = forms.ModelChoiceField(
        queryset=Node.objects.none(),
        empty_label="Choose the host to restore onto",
        label="Target node",
    )
    data_directory = forms.CharField(
        required=False,
        max_length=1024,
        label="Data directory",
        help_text="On another host: a new or empty directory (or one holding an earlier restore). "
        "In place: leave empty, the primary's own is used.",
    )
    port = forms.IntegerField(
        required=False,
        min_value=1024,
        max_value=65535,
        help_text="On another host: the port the restored server listens on.",
    )

    def __init__(self, cluster: Cluster, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cluster = cluster
        self.fields["catalog"].queryset = cluster.backup_catalogs.all()
        own_primary = Q(cluster=cluster, role=Node.Role.PRIMARY, service=Node.Service.POSTGRESQL)
        elsewhere = Q(service=Node.Service.NONE) | (
            Q(service=Node.Service.POSTGRESQL) & ~Q(cluster=cluster)
        )
        nodes = Node.objects.filter(own_primary | elsewhere).select_related("cluster")
        self.fields["target_node"].queryset = nodes.order_by("-role", "name")
        self.fields["target_node"].label_from_instance = _node_label


class TargetStep(forms.Form):
    target_kind = forms.ChoiceField(
        choices=RecoveryTargetKind.choices, label="Recover to", initial="latest"
    )
    target_value = forms.CharField(
        required=False,
        max_length=64,
        label="Time, transaction id or timeline",
        help_text="A time as YYYY-MM-DD HH:MM:SS[.ffffff], in UTC unless it ends with an offset "
        "such as +02:00; an xid or a timeline as a number. Empty for the latest point.",
    )
    target_inclusive = forms.TypedChoiceField(
        required=False,
        label="The target itself",
        choices=[("", "engine default (included)"), ("true", "included"), ("false", "excluded")],
        coerce=lambda v: {"true": True, "false": False}.get(v),
        empty_value=None,
    )
    target_action = forms.ChoiceField(
        choices=[(a, a) for a in TARGET_ACTIONS],
        initial="promote",
        label="At the target",
        help_text="promote: open for writes; pause: stay read-only to look around; shutdown.",
    )
    check_query = forms.CharField(
        required=False,
        max_length=2000,
        initial=DEFAULT_CHECK,
        label="Check query",
        help_text="Run on the restored server; its first value must not be false or empty.",
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data["target"] = parse_target(
                data["target_kind"],
                data.get("target_value", ""),
                inclusive=data.get("target_inclusive"),
                action=data["target_action"],
            )
        except PlanError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        data["check_query"] = (data.get("check_query") or "").strip() or DEFAULT_CHECK
        return data


class ConfirmStep(forms.Form):
    confirm = forms.CharField(max_length=64, label="Type the name to confirm")

    def __init__(self, word: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.word = word
        self.fields["confirm"].label = f"Type {word} to confirm"
