# Placeholder reserved for H-hba: pg_hba rule sets, rules and applied versions.
# Filled by hand from `manage.py makemigrations clusters --dry-run -v 3` (own models only).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("clusters", "0005_alert_defaults")]

    operations = []
