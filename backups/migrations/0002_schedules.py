# Reserved for backup schedules and runs; filled by hand from `manage.py makemigrations backups --dry-run -v 3`
# (own models only). Keep this name and these dependencies.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="PolicySchedule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("since", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "policy",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="beat",
                        to="backups.backuppolicy",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="MissedBackup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),  # fmt: skip
                ("policy_name", models.CharField(blank=True, max_length=64)),
                ("due_at", models.DateTimeField()),
                ("detected_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "cluster",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="missed_backups",
                        to="clusters.cluster",
                    ),
                ),  # fmt: skip
                (
                    "policy",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="missed",
                        to="backups.backuppolicy",
                    ),
                ),  # fmt: skip
            ],
            options={
                "ordering": ["-due_at", "-id"],
                "indexes": [
                    models.Index(fields=["cluster", "due_at"], name="backups_missed_cluster")
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("policy", "due_at"), name="backups_missed_once")
                ],
            },
        ),
    ]
