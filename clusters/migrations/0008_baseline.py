# Placeholder reserved for H-baseline: security baseline checks and results.
# Filled by hand from `manage.py makemigrations clusters --dry-run -v 3` (own models only).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("clusters", "0007_settings")]

    operations = []
