# Reserved for ha provisioning (job steps); filled by hand from `manage.py makemigrations console --dry-run -v 3`
# (own models only). Keep this name and these dependencies.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0004_audit_prev_hash_unique"),
    ]

    operations = [
        migrations.CreateModel(
            name="JobStep",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.PositiveSmallIntegerField()),
                ("name", models.CharField(max_length=200)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("running", "Running"),
                            ("done", "Done"),
                            ("skipped", "Skipped"),
                            ("failed", "Failed"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("started", models.DateTimeField(blank=True, null=True)),
                ("ended", models.DateTimeField(blank=True, null=True)),
                ("detail", models.TextField(blank=True)),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="steps",
                        to="console.job",
                    ),
                ),
            ],
            options={
                "ordering": ["job", "position"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("job", "position"), name="jobstep_job_position_uniq"
                    )
                ],
            },
        ),
    ]
