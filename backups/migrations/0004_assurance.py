# Reserved for backup assurance; filled by hand from `manage.py makemigrations backups --dry-run -v 3`
# (own models only). Keep this name and these dependencies.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0003_restore"),
    ]

    operations: list = []
