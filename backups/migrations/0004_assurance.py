# Reserved for backup assurance; filled by hand from `manage.py makemigrations backups --dry-run -v 3`
# (own models only). Keep this name and these dependencies.

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import backups.models.assurance
import backups.models.core


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0003_restore"),
    ]

    operations = [
        migrations.CreateModel(
            name="ArchiveCheck",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("checked_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("continuous", models.BooleanField(null=True)),
                ("first_segment", models.CharField(blank=True, max_length=24)),
                ("first_gap", models.CharField(blank=True, max_length=24)),
                ("last_segment", models.CharField(blank=True, max_length=24)),
                ("last_restorable_segment", models.CharField(blank=True, max_length=24)),
                ("segments", models.PositiveIntegerField(default=0)),
                ("missing", models.PositiveIntegerField(default=0)),
                ("restorable_to", models.DateTimeField(blank=True, null=True)),
                ("message", models.TextField(blank=True)),
                (
                    "backup",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="backups.backuprun",
                    ),
                ),
                (
                    "catalog",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="backups.backupcatalog",
                    ),
                ),
                (
                    "cluster",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="archive_checks",
                        to="clusters.cluster",
                    ),
                ),
                (
                    "job",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="console.job",
                    ),
                ),
            ],
            options={
                "ordering": ["-checked_at", "-id"],
                "get_latest_by": "checked_at",
                "indexes": [
                    models.Index(
                        fields=["cluster", "-checked_at"], name="backups_archivecheck_latest"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="TestRestorePolicy",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "data_directory",
                    models.CharField(
                        max_length=200, validators=[backups.models.assurance._scratch_path]
                    ),
                ),
                (
                    "port",
                    models.PositiveIntegerField(
                        validators=[
                            django.core.validators.MinValueValidator(1),
                            django.core.validators.MaxValueValidator(65535),
                        ]
                    ),
                ),
                (
                    "schedule",
                    models.CharField(
                        max_length=100, validators=[backups.models.core.validate_cron]
                    ),
                ),
                ("check_query", models.TextField(max_length=4000)),
                ("enabled", models.BooleanField(default=True)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "catalog",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="test_restore_policies",
                        to="backups.backupcatalog",
                    ),
                ),
                (
                    "cluster",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="test_restores",
                        to="clusters.cluster",
                    ),
                ),
                (
                    "node",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="clusters.node",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "test restore policies",
                "ordering": ["cluster__name", "pk"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("node", "data_directory"), name="backups_testrestore_directory"
                    )
                ],
            },
        ),
    ]
