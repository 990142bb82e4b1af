# Reserved for ha provisioning (job steps); filled by hand from `manage.py makemigrations console --dry-run -v 3`
# (own models only). Keep this name and these dependencies.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0004_audit_prev_hash_unique"),
    ]

    operations: list = []
