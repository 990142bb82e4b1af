# Placeholder reserved for offboarding runs and evidence (issue 6 part 4).
# Filled by hand from `manage.py makemigrations users --dry-run -v 3` (own models only).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("users", "0002_lifecycle")]

    operations = []
