# Security baseline checks and results (clusters.models.baseline).
# Filled by hand from `manage.py makemigrations clusters --dry-run -v 3` (own models only).
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0007_settings"),
        ("console", "0004_audit_prev_hash_unique"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="BaselineRun",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("started", models.DateTimeField(default=django.utils.timezone.now)),
                ("finished", models.DateTimeField(blank=True, null=True)),
                ("fix_key", models.CharField(blank=True, max_length=64)),
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
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="baseline_runs",
                        to="clusters.node",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["-started"]},
        ),
        migrations.CreateModel(
            name="BaselineResult",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("check_key", models.CharField(max_length=64)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pass", "pass"),
                            ("fail", "fail"),
                            ("review", "review"),
                            ("error", "error"),
                        ],
                        max_length=8,
                    ),
                ),
                ("evidence", models.TextField()),
                ("fixable", models.BooleanField(default=False)),
                ("checked", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "node",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="baseline_results",
                        to="clusters.node",
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="results",
                        to="clusters.baselinerun",
                    ),
                ),
            ],
            options={
                "ordering": ["node__name", "check_key"],
                "permissions": [("fix_baseline", "Can run a security baseline fix")],
            },
        ),
        migrations.AddIndex(
            model_name="baselinerun",
            index=models.Index(fields=["node", "-started"], name="clusters_baselinerun_node"),
        ),
        migrations.AddIndex(
            model_name="baselineresult",
            index=models.Index(
                fields=["node", "check_key", "-checked"], name="clusters_baseline_latest"
            ),
        ),
    ]
