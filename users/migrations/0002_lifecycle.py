# Placeholder reserved for account lifecycle actions (issue 6 part 3).
# Filled by hand from `manage.py makemigrations users --dry-run -v 3` (own models only).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("users", "0001_initial")]

    operations = []
