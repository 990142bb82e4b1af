# Reserved for ha provisioning; filled by hand from `manage.py makemigrations clusters --dry-run -v 3`
# (own models only). Keep this name and these dependencies.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0009_cluster_status"),
    ]

    operations = [
        migrations.CreateModel(
            name="PgProvision",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("version", models.CharField(max_length=8)),
                ("os_family", models.CharField(max_length=16)),
                ("archive_directory", models.CharField(max_length=255)),
                ("networks", models.JSONField(default=list)),
                ("replication_user", models.CharField(default="replicator", max_length=63)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "admin_credential",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="console.credential",
                    ),
                ),
                (
                    "cluster",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="provision",
                        to="clusters.cluster",
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
            options={
                "verbose_name": "PostgreSQL provisioning",
            },
        ),
    ]
