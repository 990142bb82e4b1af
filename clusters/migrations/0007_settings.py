# Server setting changes and their history (clusters.models.settings).
# Filled by hand from `manage.py makemigrations clusters --dry-run -v 3` (own models only).
import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0006_hba"),
        ("console", "0004_audit_prev_hash_unique"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SettingChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("request_id", models.UUIDField(db_index=True, default=uuid.uuid4)),
                (
                    "scope",
                    models.CharField(
                        choices=[("node", "node"), ("cluster", "cluster")],
                        default="node",
                        max_length=8,
                    ),
                ),
                ("node_name", models.CharField(max_length=64)),
                ("engine", models.CharField(max_length=16)),
                ("name", models.CharField(max_length=128)),
                (
                    "operation",
                    models.CharField(
                        choices=[("set", "set"), ("reset", "reset to default")],
                        default="set",
                        max_length=8,
                    ),
                ),
                ("old_value", models.TextField(blank=True)),
                ("new_value", models.TextField(blank=True)),
                ("unit", models.CharField(blank=True, max_length=16)),
                ("context", models.CharField(blank=True, max_length=32)),
                ("config_file", models.CharField(blank=True, max_length=255)),
                ("backup_file", models.CharField(blank=True, max_length=255)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("applied", "applied"),
                            ("restart_needed", "restart needed"),
                            ("failed", "failed"),
                        ],
                        max_length=16,
                    ),
                ),
                ("error", models.TextField(blank=True)),
                ("actor_name", models.CharField(blank=True, max_length=150)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "cluster",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="setting_changes",
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
                (
                    "node",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="setting_changes",
                        to="clusters.node",
                    ),
                ),
            ],
            options={
                "ordering": ["-created", "-pk"],
                "indexes": [
                    models.Index(
                        fields=["node", "name", "-created"], name="clusters_setting_node_name"
                    ),
                    models.Index(fields=["cluster", "-created"], name="clusters_setting_cluster"),
                ],
            },
        ),
    ]
