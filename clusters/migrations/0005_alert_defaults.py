# Placeholder reserved for H-alerts: default alert rules (RunPython) and any change to the alert models.
# Filled by hand from `manage.py makemigrations clusters --dry-run -v 3` (own models only).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("clusters", "0004_alerts")]

    operations = []
