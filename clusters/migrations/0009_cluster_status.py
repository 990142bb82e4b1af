# One summary row per cluster for the fleet dashboard (clusters.models.monitoring.ClusterStatus).
# Filled by hand from `manage.py makemigrations clusters --dry-run -v 3` (own model only).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0008_baseline"),
    ]

    operations = [
        migrations.CreateModel(
            name="ClusterStatus",
            fields=[
                (
                    "cluster",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="status",
                        serialize=False,
                        to="clusters.cluster",
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("healthy", "Healthy"),
                            ("degraded", "Degraded"),
                            ("down", "Down"),
                            ("unknown", "Unknown"),
                        ],
                        default="unknown",
                        max_length=8,
                    ),
                ),
                ("state_rank", models.PositiveSmallIntegerField(default=2)),
                ("reasons", models.TextField(blank=True)),
                ("standbys", models.PositiveSmallIntegerField(default=0)),
                ("standbys_in_sync", models.PositiveSmallIntegerField(default=0)),
                ("worst_lag_bytes", models.BigIntegerField(blank=True, null=True)),
                ("pgpool_up", models.PositiveSmallIntegerField(default=0)),
                ("pgpool_total", models.PositiveSmallIntegerField(default=0)),
                ("pgpool_nodes", models.PositiveSmallIntegerField(default=0)),
                ("pgpool_nodes_up", models.PositiveSmallIntegerField(default=0)),
                ("pgpool_detail", models.TextField(blank=True)),
                ("alerts_critical", models.PositiveIntegerField(default=0)),
                ("alerts_warning", models.PositiveIntegerField(default=0)),
                ("collected", models.DateTimeField(blank=True, null=True)),
                ("updated", models.DateTimeField()),
                (
                    "primary",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="clusters.node",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "cluster statuses",
                "indexes": [
                    models.Index(
                        fields=["state_rank", "-alerts_critical", "-alerts_warning"],
                        name="clusters_cstatus_state",
                    ),
                    models.Index(fields=["-worst_lag_bytes"], name="clusters_cstatus_lag"),
                    models.Index(
                        fields=["-alerts_critical", "-alerts_warning", "state_rank"],
                        name="clusters_cstatus_alerts",
                    ),
                ],
            },
        ),
    ]
