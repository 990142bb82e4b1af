"""`manage.py rotate_secret_keys`: re-encrypt every stored secret with the newest key.

Run it after putting a new key first in CONSOLE_SECRET_KEYS (keep the old ones after it); once
it reports success, the old keys can be removed.
"""

from django.core.management.base import BaseCommand, CommandError

from console.crypto import SecretUnreadable
from console.secrets import rotate_credentials


class Command(BaseCommand):
    help = "Re-encrypt every stored credential with the newest key of CONSOLE_SECRET_KEYS."

    def handle(self, *args, **options):
        try:
            rotated, total = rotate_credentials()
        except SecretUnreadable as e:
            raise CommandError(f"{e}; nothing was changed", returncode=1) from None
        self.stdout.write(
            f"{rotated} credentials re-encrypted with the newest key "
            f"({total - rotated} of {total} already were)"
        )
