"""The form of a test restore policy (backups.assurance). The model's own validation names the
field for every refusal (cron text, scratch directory, port, host, catalog); the action
validates again before saving."""

from django import forms
from django.db.models import Q

from backups.models import BackupCatalog, Engine, TestRestorePolicy
from clusters.models import Cluster, Node

DEFAULT_CHECK = "SELECT count(*) FROM pg_database"


class TestRestorePolicyForm(forms.ModelForm):
    __test__ = False  # a form, not a pytest test class

    class Meta:
        model = TestRestorePolicy
        fields = ["catalog", "node", "data_directory", "port", "schedule", "check_query",
                  "enabled"]  # fmt: skip
        labels = {
            "node": "Host",
            "data_directory": "Scratch data directory",
            "port": "Scratch port",
            "schedule": "Schedule (cron)",
        }
        help_texts = {
            "node": "Where the scratch instance runs; it must see the repository.",
            "data_directory": "A new directory, created by the restore and removed afterwards.",
            "port": "A free port on that host (not its own server's).",
            "schedule": "Five cron fields: minute hour day-of-month month day-of-week.",
            "check_query": "Run on the restored copy; its first value must not be false or NULL.",
        }
        widgets = {"check_query": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, cluster: Cluster, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.cluster = cluster
        self.fields["catalog"].queryset = BackupCatalog.objects.filter(
            cluster=cluster, engine=Engine.PGBACKREST
        )
        self.fields["node"].queryset = Node.objects.filter(
            Q(cluster=cluster) | Q(cluster__isnull=True)
        ).order_by("name")
        if not self.instance.pk:  # the instance's empty values are in initial already
            self.initial["check_query"] = self.initial.get("check_query") or DEFAULT_CHECK
            self.initial["schedule"] = self.initial.get("schedule") or "30 4 * * 0"
