"""The backup catalog form: a new catalog names its cluster and engine; an existing one keeps
them. Field rules are the model's (BackupCatalog.clean: the other engine's settings refused);
the nodes must be the cluster's. The checks on the hosts run in backups.catalog_admin."""

from django import forms

from backups.catalog_admin import CATALOG_FIELDS
from backups.models import BackupCatalog
from clusters.models import Cluster, Node


class BackupCatalogForm(forms.ModelForm):
    class Meta:
        model = BackupCatalog
        fields = ("cluster", "name", "engine", "path", "nodes", "stanza", "arclog_path",
                  "srvlog_path", "time_zone")  # fmt: skip
        labels = {
            "path": "Path",
            "nodes": "Nodes that see it",
            "stanza": "Stanza (pgBackRest)",
            "arclog_path": "WAL archive directory (pg_rman -A)",
            "srvlog_path": "Server log directory (pg_rman -S)",
            "time_zone": "Time zone of the hosts (pg_rman)",
        }
        help_texts = {
            "path": "pg_rman: the catalog directory (-B). pgBackRest: the repository "
                    "(repo1-path). On storage every chosen node mounts; created if missing.",
            "nodes": "The hosts that mount the path; the engine runs on the first (the "
                     "primary first). None: the primary.",
            "stanza": "pgBackRest only: the stanza name (the server's archive_command must "
                      "push WAL to it).",
        }  # fmt: skip
        widgets = {"nodes": forms.CheckboxSelectMultiple}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cluster"].queryset = Cluster.objects.order_by("name")
        self.fields["nodes"].queryset = (
            Node.objects.filter(service=Node.Service.POSTGRESQL, cluster__isnull=False)
            .select_related("cluster")
            .order_by("cluster__name", "name")
        )
        self.fields["nodes"].label_from_instance = lambda n: (
            f"{n.name} ({n.cluster.name}, {n.role})"
        )
        if self.instance.pk:
            self.fields["cluster"].disabled = True
            self.fields["engine"].disabled = True

    def clean(self):
        cleaned = super().clean()
        cluster = cleaned.get("cluster") or getattr(self.instance, "cluster", None)
        nodes = cleaned.get("nodes")
        if cluster is not None and nodes:
            strangers = [n.name for n in nodes if n.cluster_id != cluster.pk]
            if strangers:
                self.add_error("nodes", f"Not nodes of {cluster.name}: {', '.join(strangers)}.")
        return cleaned

    def values(self) -> dict:
        """The edited fields, for backups.catalog_admin.update_catalog."""
        return {name: (list(self.cleaned_data[name]) if name == "nodes" else
                       self.cleaned_data[name]) for name in CATALOG_FIELDS}  # fmt: skip


class DeleteCatalogForm(forms.Form):
    """The catalog's name typed again, to confirm."""

    confirm_name = forms.CharField(label="Type the catalog's name to confirm", required=False)

    def __init__(self, *args, catalog: BackupCatalog, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog = catalog

    def clean_confirm_name(self):
        value = self.cleaned_data["confirm_name"].strip()
        if value != self.catalog.name:
            raise forms.ValidationError(f"Type the catalog's name, {self.catalog.name}, to "
                                        "delete it.")  # fmt: skip
        return value
