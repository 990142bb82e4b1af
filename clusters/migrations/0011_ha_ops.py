# Reserved for ha pgpool and operations; filled by hand from `manage.py makemigrations clusters --dry-run -v 3`
# (own models only). Keep this name and these dependencies.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0010_provision"),
    ]

    operations: list = []
