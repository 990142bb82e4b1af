# Reserved for ha pgpool and operations; filled by hand from `manage.py makemigrations clusters --dry-run -v 3`
# (own models only). Keep this name and these dependencies.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0010_provision"),
    ]

    operations = [
        migrations.CreateModel(
            name="HaSetup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("directory", models.CharField(max_length=255)),
                ("pcp_port", models.PositiveIntegerField(default=9898)),
                ("backends", models.JSONField(default=list)),
                ("pool_users", models.JSONField(default=list)),
                ("client_networks", models.JSONField(default=list)),
                ("health_check_period", models.PositiveIntegerField(default=1)),
                ("health_check_timeout", models.PositiveIntegerField(default=2)),
                ("health_check_max_retries", models.PositiveIntegerField(default=1)),
                ("delay_threshold", models.PositiveBigIntegerField(default=1048576)),
                ("synchronous_commit", models.CharField(default="remote_apply", max_length=16)),
                ("pg_bin", models.CharField(default="/usr/lib/postgresql/15/bin", max_length=255)),
                ("deployed", models.DateTimeField(blank=True, null=True)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "cluster",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="ha",
                        to="clusters.cluster",
                    ),
                ),
                (
                    "pcp_credential",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="console.credential",
                    ),
                ),
                (
                    "pgpool",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="clusters.node",
                    ),
                ),
                (
                    "replication_credential",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="console.credential",
                    ),
                ),
            ],
            options={"verbose_name": "HA setup"},
        ),
        migrations.CreateModel(
            name="FencedNode",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("reason", models.CharField(max_length=255)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("pending", "fenced, not reached yet"),
                            ("enforced", "stopped, standby.signal in place"),
                            ("cleared", "rebuilt as a standby"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                ("checked", models.DateTimeField(blank=True, null=True)),
                ("enforced", models.DateTimeField(blank=True, null=True)),
                ("cleared", models.DateTimeField(blank=True, null=True)),
                ("note", models.TextField(blank=True)),
                (
                    "cluster",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="fences",
                        to="clusters.cluster",
                    ),
                ),
                (
                    "node",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="fences",
                        to="clusters.node",
                    ),
                ),
            ],
            options={
                "ordering": ["-created"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("cleared__isnull", True)),
                        fields=("node",),
                        name="clusters_one_open_fence_per_node",
                    )
                ],
            },
        ),
    ]
