# pg_hba rule sets, rules, applied versions and the files last read from the nodes (H-hba).
# Filled by hand from `manage.py makemigrations clusters --dry-run -v 3` (own models only).
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0005_alert_defaults"),
        ("console", "0004_audit_prev_hash_unique"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="HbaLiveFile",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("path", models.CharField(blank=True, max_length=1000)),
                ("text", models.TextField(blank=True)),
                ("sha256", models.CharField(blank=True, max_length=64)),
                ("read_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("error", models.TextField(blank=True)),
                (
                    "node",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="hba_live",
                        to="clusters.node",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="HbaRuleSet",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("header", models.TextField(blank=True)),
                ("footer", models.TextField(blank=True)),
                ("updated", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_by_name", models.CharField(blank=True, max_length=150)),
                (
                    "cluster",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="hba",
                        to="clusters.cluster",
                    ),
                ),
            ],
            options={
                "permissions": [("apply_hbaruleset", "Can apply pg_hba.conf rules to servers")],
            },
        ),
        migrations.CreateModel(
            name="HbaRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.PositiveIntegerField()),
                (
                    "target",
                    models.CharField(
                        choices=[
                            ("both", "primary and standbys"),
                            ("primary", "primary only"),
                            ("standbys", "standbys only"),
                        ],
                        default="both",
                        max_length=16,
                    ),
                ),
                ("conn_type", models.CharField(max_length=16)),
                ("database", models.CharField(max_length=1000)),
                ("user", models.CharField(max_length=1000)),
                ("address", models.CharField(blank=True, max_length=300)),
                ("netmask", models.CharField(blank=True, max_length=64)),
                ("method", models.CharField(max_length=16)),
                ("options", models.JSONField(blank=True, default=list)),
                ("comment", models.TextField(blank=True)),
                (
                    "ruleset",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rules",
                        to="clusters.hbaruleset",
                    ),
                ),
            ],
            options={
                "ordering": ["ruleset", "position"],
            },
        ),
        migrations.CreateModel(
            name="HbaVersion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.PositiveIntegerField()),
                (
                    "kind",
                    models.CharField(
                        choices=[("apply", "Apply"), ("rollback", "Rollback")],
                        default="apply",
                        max_length=16,
                    ),
                ),
                ("rolled_back_to", models.PositiveIntegerField(blank=True, null=True)),
                ("rules", models.JSONField(default=list)),
                ("header", models.TextField(blank=True)),
                ("footer", models.TextField(blank=True)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                ("actor_name", models.CharField(blank=True, max_length=150)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("applied", "Applied"),
                            ("refused", "Refused"),
                            ("failed", "Failed"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
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
                    "ruleset",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="clusters.hbaruleset",
                    ),
                ),
            ],
            options={
                "ordering": ["ruleset", "-number"],
            },
        ),
        migrations.CreateModel(
            name="HbaNodeVersion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("path", models.CharField(blank=True, max_length=1000)),
                ("text", models.TextField()),
                ("sha256", models.CharField(max_length=64)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("applied", "Applied"),
                            ("unchanged", "Unchanged"),
                            ("refused", "Refused"),
                            ("failed", "Failed"),
                            ("skipped", "Skipped"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("errors", models.JSONField(blank=True, default=list)),
                ("backup_path", models.CharField(blank=True, max_length=1000)),
                ("detail", models.TextField(blank=True)),
                ("finished", models.DateTimeField(blank=True, null=True)),
                (
                    "node",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="clusters.node",
                    ),
                ),
                (
                    "version",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="node_files",
                        to="clusters.hbaversion",
                    ),
                ),
            ],
            options={
                "ordering": ["version", "node__name"],
            },
        ),
        migrations.AddConstraint(
            model_name="hbaversion",
            constraint=models.UniqueConstraint(
                fields=("ruleset", "number"), name="hba_version_number"
            ),
        ),
        migrations.AddConstraint(
            model_name="hbanodeversion",
            constraint=models.UniqueConstraint(fields=("version", "node"), name="hba_node_version"),
        ),
    ]
