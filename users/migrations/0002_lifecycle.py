# Account lifecycle actions (issue 6 part 3): the permissions that gate them.
# Filled by hand from `manage.py makemigrations users --dry-run -v 3` (own models only).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("users", "0001_initial")]

    operations = [
        migrations.AlterModelOptions(
            name="databaseaccount",
            options={
                "ordering": ["cluster__name", "name", "host"],
                "permissions": [
                    ("import_accounts", "Can import the accounts of the fleet's servers"),
                    (
                        "manage_account",
                        "Can create, change and drop database accounts on the servers",
                    ),
                    ("lock_account", "Can lock and unlock database accounts"),
                ],
            },
        ),
    ]
