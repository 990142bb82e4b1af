# Reserved for restore wizard; filled by hand from `manage.py makemigrations backups --dry-run -v 3`
# (own models only). Keep this name and these dependencies.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0002_schedules"),
    ]

    operations = [
        migrations.CreateModel(
            name="RestoreDetail",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),  # fmt: skip
                ("port", models.PositiveIntegerField()),
                ("in_place", models.BooleanField(default=False)),
                ("delta", models.BooleanField(default=False)),
                ("wal_first", models.CharField(blank=True, max_length=24)),
                ("wal_until", models.CharField(blank=True, max_length=255)),
                ("command", models.TextField(blank=True)),
                ("prechecks", models.JSONField(blank=True, default=list)),
                ("recovery_settings_removed", models.DateTimeField(blank=True, null=True)),
                (
                    "full_backup",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="backups.backuprun",
                    ),
                ),  # fmt: skip
                (
                    "restore",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="detail",
                        to="backups.restorerun",
                    ),
                ),  # fmt: skip
            ],
        ),
    ]
