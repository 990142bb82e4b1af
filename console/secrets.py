"""Actions on stored secrets (Credential): store or replace one, re-encrypt all with the newest key.

The clear value exists only in memory: it is encrypted before it reaches the database, read back
with `Credential.reveal()` by the executor, and never written to an audit entry or a log.
"""

import hmac

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from console import audit, crypto
from console.crypto import SecretUnreadable
from console.models import AuditEntry, Credential


def store_credential(
    name: str,
    kind: str,
    secret: str,
    *,
    actor,
    username: str = "",
    source: str = AuditEntry.Source.UI,
) -> Credential:
    """Create the credential `name`, or replace its secret, kind and user name; audited.

    Guarantees: the secret is stored only as a Fernet token under the newest key; the audit
    entry (SECRET_CREATED, in the same transaction) names the credential, never the secret.
    Idempotent: storing the same values again changes nothing and writes no entry.
    """
    if kind not in Credential.Kind.values:
        raise ValueError(f"unknown credential kind: {kind}")
    if not name or not secret:
        raise ValueError("a credential needs a name and a secret")
    with transaction.atomic():
        credential = Credential.objects.select_for_update().filter(name=name).first()
        if credential is not None and _unchanged(credential, kind, username, secret):
            return credential
        token = crypto.encrypt(secret)
        if credential is None:
            credential = Credential.objects.create(
                name=name, kind=kind, username=username, secret_token=token
            )
            what = f"stored new {kind} credential"
        else:
            credential.kind, credential.username, credential.secret_token = kind, username, token
            credential.save(update_fields=["kind", "username", "secret_token"])
            what = f"replaced the secret of the {kind} credential"
        audit.append(
            audit.SECRET_CREATED,
            actor=actor,
            source=source,
            target=f"credential:{name}",
            output=f"{what} {name}" + (f" (user {username})" if username else ""),
        )
    return credential


def _unchanged(credential: Credential, kind: str, username: str, secret: str) -> bool:
    if credential.kind != kind or credential.username != username:
        return False
    try:
        current = credential.reveal()
    except SecretUnreadable:
        return False
    return hmac.compare_digest(current.encode(), secret.encode())


def _under_newest_key(token: bytes) -> bool:
    try:
        Fernet(settings.CONSOLE_SECRET_KEYS[0]).decrypt(token)
    except InvalidToken:
        return False
    return True


def rotate_credentials(*, actor=None, source: str = AuditEntry.Source.CLI) -> tuple[int, int]:
    """Re-encrypt with the newest key every credential not already under it.

    Returns (re-encrypted, total). One transaction: if any credential cannot be decrypted with
    the configured keys, SecretUnreadable names it and nothing is changed. Idempotent: a second
    run re-encrypts nothing and writes no audit entry; a run that changed something writes one
    SECRET_ROTATED entry.
    """
    with transaction.atomic():
        credentials = list(Credential.objects.select_for_update().order_by("pk"))
        rotated = []
        for credential in credentials:
            token = bytes(credential.secret_token)
            if _under_newest_key(token):
                continue
            try:
                credential.secret_token = crypto.rotate(token)
            except SecretUnreadable:
                raise SecretUnreadable(
                    f"credential {credential.name} cannot be decrypted with any key in "
                    "CONSOLE_SECRET_KEYS; add the key it was encrypted with (after the newest) "
                    "and run the rotation again"
                ) from None
            credential.rotated = timezone.now()
            credential.save(update_fields=["secret_token", "rotated"])
            rotated.append(credential.name)
        if rotated:
            audit.append(
                audit.SECRET_ROTATED,
                actor=actor,
                source=source,
                target="credentials",
                output=f"re-encrypted {len(rotated)} of {len(credentials)} credentials with the "
                f"newest key: {', '.join(rotated)}",
            )
    return len(rotated), len(credentials)
