# Reserved for backup reports; filled by hand from `manage.py makemigrations backups --dry-run -v 3`
# (own models only). Keep this name and these dependencies.
#
# The report adds no model, only indexes on BackupRun for its queries (backups/report.py). They
# are created by RunPython through the schema editor (Django's own index SQL, partial indexes on
# both PostgreSQL and SQLite, INCLUDE on PostgreSQL only), not declared in BackupRun.Meta, which
# is not the report's file; the migration state does not change.

from django.db import migrations, models
from django.db.models import Q

REPORT_INDEXES = [
    # Success rates: the runs started in the last 90 days, counted per cluster and status from
    # the index alone (an index-only scan of a time range).
    models.Index(
        fields=["started"], include=["cluster", "status"], name="backups_run_report_window"
    ),
    # Retention: the oldest usable run of each catalog (one probe each) ...
    models.Index(
        fields=["catalog", "started"], condition=Q(status="ok"), name="backups_run_catalog_usable"
    ),
    # ... and its usable full backups (a few entries each).
    models.Index(
        fields=["catalog", "started"],
        condition=Q(status="ok", mode="full"),
        name="backups_run_catalog_full",
    ),
]


def add_indexes(apps, schema_editor):
    model = apps.get_model("backups", "BackupRun")
    for index in REPORT_INDEXES:
        schema_editor.add_index(model, index)


def remove_indexes(apps, schema_editor):
    model = apps.get_model("backups", "BackupRun")
    for index in REPORT_INDEXES:
        schema_editor.remove_index(model, index)


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0004_assurance"),
    ]

    operations = [migrations.RunPython(add_indexes, remove_indexes)]
