# Reserved for backup reports; filled by hand from `manage.py makemigrations backups --dry-run -v 3`
# (own models only). Keep this name and these dependencies.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0004_assurance"),
    ]

    operations: list = []
