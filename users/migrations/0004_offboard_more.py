# Reserved for offboarding follow-ups; filled by hand from `manage.py makemigrations users --dry-run -v 3`
# (own models only). Keep this name and these dependencies.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0003_offboarding"),
    ]

    operations: list = []
