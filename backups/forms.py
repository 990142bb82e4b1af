"""Forms of the backups app: a backup policy (its schedule checked as cron text, its mode and
retention against the catalog's engine by BackupPolicy.clean)."""

from django import forms

from backups.models import BackupCatalog, BackupPolicy, Engine
from clusters.models import Node

_RETENTION = (*BackupPolicy.PG_RMAN_RETENTION, *BackupPolicy.PGBACKREST_RETENTION)


class BackupPolicyForm(forms.ModelForm):
    """A new policy names its catalog; an existing one keeps it (edit the other fields)."""

    class Meta:
        model = BackupPolicy
        fields = ("catalog", "name", "schedule", "mode", "compress", "with_serverlog",
                  "source_node", *_RETENTION)  # fmt: skip
        labels = {
            "schedule": "Schedule (cron)",
            "with_serverlog": "With server log (pg_rman)",
            "source_node": "Source node",
            "compress": "Compress",
        }
        help_texts = {
            "schedule": "Five cron fields: minute hour day-of-month month day-of-week, in the "
                        "console's time zone. '0 2 * * 0' is Sundays at 02:00.",
            "mode": "pg_rman: full, incremental, archive. pgBackRest: full, diff, incr.",
            "source_node": "Empty: the primary. A standby: pg_rman backs up from it.",
        }  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["catalog"].queryset = BackupCatalog.objects.select_related("cluster")
        self.fields["source_node"].queryset = Node.objects.filter(
            service=Node.Service.POSTGRESQL, cluster__isnull=False
        ).select_related("cluster")
        self.fields["source_node"].empty_label = "the primary"
        for name in _RETENTION:
            self.fields[name].widget.attrs["min"] = 1
        if self.instance.pk:
            self.fields["catalog"].disabled = True

    def clean(self):
        cleaned = super().clean()
        catalog = cleaned.get("catalog") or getattr(self.instance, "catalog", None)
        source = cleaned.get("source_node")
        if (
            catalog
            and source
            and catalog.engine == Engine.PGBACKREST
            and (source.role != Node.Role.PRIMARY)
        ):
            self.add_error("source_node", "The console takes pgBackRest backups on the primary "
                           "(it does not configure backup-standby); leave this empty.")  # fmt: skip
        return cleaned

    def values(self) -> dict:
        """The edited fields, for backups.schedule.update_policy."""
        return {name: self.cleaned_data[name] for name in self.Meta.fields if name != "catalog"}
