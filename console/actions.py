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


def issue_api_token(user, *, source: str = AuditEntry.Source.API) -> tuple[Token, bool]:
    """The user's API token, created (and audited) when they have none yet.

    Idempotent: a user who already has a token gets the same one and nothing is audited. The
    token's key never goes into the audit entry.
    """
    with transaction.atomic():
        token, created = Token.objects.get_or_create(user=user)
        if created:
            audit.append(
                audit.AUTH_TOKEN_CREATED,
                actor=user,
                source=source,
                target=f"user:{user.get_username()}",
            )
    return token, created
