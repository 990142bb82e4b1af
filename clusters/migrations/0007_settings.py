# Placeholder reserved for H-settings: server setting changes and their history.
# Filled by hand from `manage.py makemigrations clusters --dry-run -v 3` (own models only).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("clusters", "0006_hba")]

    operations = []
