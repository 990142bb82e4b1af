"""Actions of the console app: changes with their audit entry, called by views and the API."""

import json

from django.db import transaction
from rest_framework.authtoken.models import Token

from console import audit
from console.models import AuditEntry


def record_audit_export(*, actor, source: str, fmt: str, filters: dict[str, str]) -> AuditEntry:
    """Audit an export of audit entries before it is streamed; returns the new entry.

    The entry holds the format and the filters, never the exported rows. The export then reads
    only entries older than this one, so what was exported is fixed by this record.
    """
    return audit.append(
        audit.AUDIT_EXPORT,
        actor=actor,
        source=source,
        target="audit-log",
        output=json.dumps({"format": fmt, "filters": filters}, sort_keys=True),
    )


def issue_api_token(
    user, *, client: str = "", request_id: str = "", source: str = AuditEntry.Source.API
) -> tuple[Token, bool]:
    """The user's API token after a password sign-in; created when they have none yet.

    Always audited: AUTH_TOKEN_CREATED for a new token, AUTH_LOGIN when the existing one is
    handed out again. The token's key never goes into the audit entry.
    """
    with transaction.atomic():
        token, created = Token.objects.get_or_create(user=user)
        audit.append(
            audit.AUTH_TOKEN_CREATED if created else audit.AUTH_LOGIN,
            actor=user,
            source=source,
            target=f"user:{user.get_username()}",
            output=f"{client}; API token {'created' if created else 'handed out'}",
            request_id=request_id,
        )
    return token, created


def record_token_refused(
    name: str, *, locked_out: bool, client: str = "", request_id: str = "", reason: str = ""
) -> AuditEntry:
    """Audit a refused API token request: a failed sign-in, or one refused by the lock-out.

    Only the name that was typed is kept (cut to 150 characters), never the password.
    """
    name = name[:150]
    return audit.append(
        audit.AUTH_LOCKED_OUT if locked_out else audit.AUTH_LOGIN_FAILED,
        actor_name=name,
        source=AuditEntry.Source.API,
        status=AuditEntry.Status.FAILED,
        target=f"user:{name}",
        output=f"{client}; reason: {reason}" if reason else client,
        request_id=request_id,
    )
