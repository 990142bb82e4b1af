"""`manage.py ensure_admin`: make sure the first superuser exists, once.

Idempotent: an existing account of that name is left exactly as it is. A new account takes its
password from CONSOLE_ADMIN_PASSWORD (or the file named by CONSOLE_ADMIN_PASSWORD_FILE); without
one a random password is generated and printed once. The creation is audited (source cli) without
the password, and the account joins the dba persona.
"""

import getpass
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from console import audit
from console.conf.env import env_str
from console.models import AuditEntry


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid, as in some containers
        return ""


class Command(BaseCommand):
    help = "Create the console's admin superuser if it does not exist (idempotent, audited)."

    def handle(self, *args, **options) -> None:
        username = env_str("CONSOLE_ADMIN_USERNAME") or "admin"
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"admin account {username!r} exists; left unchanged")
            return
        password = env_str("CONSOLE_ADMIN_PASSWORD") or ""
        origin = "CONSOLE_ADMIN_PASSWORD"
        if not password:
            password, origin = secrets.token_urlsafe(18), "generated"
        else:
            try:
                validate_password(password, User(username=username))
            except ValidationError as e:
                raise CommandError(f"CONSOLE_ADMIN_PASSWORD: {' '.join(e.messages)}") from None
        try:
            dba = Group.objects.get(name="dba")
        except Group.DoesNotExist:
            raise CommandError(
                "the dba persona group is missing: run `manage.py migrate` first"
            ) from None
        with transaction.atomic():
            user = User.objects.create_superuser(username=username, email="", password=password)
            user.groups.add(dba)
            audit.append(
                audit.AUTH_USER_CHANGED,
                actor_name=_os_user(),
                source=AuditEntry.Source.CLI,
                target=f"user:{username}",
                output=f"created superuser (ensure_admin); groups: dba; password: {origin}",
            )
        self.stdout.write(f"admin account {username!r} created")
        if origin == "generated":
            self.stdout.write(f"admin password (shown once): {password}")
