# Offboarding runs and their per-account steps (issue 6 part 4).
# Filled by hand from `manage.py makemigrations users --dry-run -v 3` (own models only).
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0004_audit_prev_hash_unique"),
        ("users", "0002_lifecycle"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="OffboardingRun",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("awaiting_approval", "awaiting approval"),
                            ("requested", "Requested"),
                            ("running", "Running"),
                            ("incomplete", "Incomplete"),
                            ("offboarded", "Offboarded"),
                            ("undone", "Undone"),
                        ],
                        max_length=20,
                    ),
                ),
                ("reason", models.TextField(blank=True)),
                ("source", models.CharField(blank=True, max_length=16)),
                ("requested_by_name", models.CharField(blank=True, max_length=150)),
                ("requested_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("approval_required", models.BooleanField(default=False)),
                ("approved_by_name", models.CharField(blank=True, max_length=150)),
                ("approved_at", models.DateTimeField(blank=True, null=True)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("last_attempt_at", models.DateTimeField(blank=True, null=True)),
                ("next_retry_at", models.DateTimeField(blank=True, null=True)),
                ("completed_at", models.DateTimeField(blank=True, null=True)),
                ("undone_by_name", models.CharField(blank=True, max_length=150)),
                ("undone_at", models.DateTimeField(blank=True, null=True)),
                (
                    "approved_by",
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
                    "person",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="offboardings",
                        to="users.person",
                    ),
                ),
                (
                    "requested_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "undone_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-requested_at", "-pk"],
                "permissions": [("view_offboarding_evidence", "Can download offboarding evidence")],
            },
        ),
        migrations.CreateModel(
            name="OffboardingStep",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("lock", "Lock"), ("handover", "hand-over")], max_length=10
                    ),
                ),
                ("cluster_name", models.CharField(max_length=255)),
                ("engine", models.CharField(max_length=16)),
                ("login", models.CharField(max_length=600)),
                (
                    "result",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("verified", "Verified"),
                            ("failed", "Failed"),
                            ("listed", "Listed"),
                            ("unlocked", "Unlocked"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("locked_before", models.BooleanField(null=True)),
                ("locked_at", models.DateTimeField(blank=True, null=True)),
                ("sessions_ended", models.PositiveIntegerField(default=0)),
                ("verified_at", models.DateTimeField(blank=True, null=True)),
                ("servers", models.CharField(blank=True, max_length=255)),
                ("evidence", models.TextField(blank=True)),
                ("error", models.TextField(blank=True)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("unlocked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="users.databaseaccount",
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="steps",
                        to="users.offboardingrun",
                    ),
                ),
            ],
            options={
                "ordering": ["kind", "cluster_name", "login"],
            },
        ),
        migrations.AddConstraint(
            model_name="offboardingrun",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "undone"), _negated=True),
                fields=("person",),
                name="users_one_offboarding_per_person",
            ),
        ),
        migrations.AddConstraint(
            model_name="offboardingstep",
            constraint=models.UniqueConstraint(
                fields=("run", "account"), name="users_offboarding_step_once"
            ),
        ),
    ]
