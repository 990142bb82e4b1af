"""The audit chain: action names, appending entries, and verifying the chain.

Every entry's hash is SHA-256 over the previous entry's hash and the entry's own fields in a
canonical JSON form. Appends take a lock (a PostgreSQL advisory lock; on SQLite the IMMEDIATE
transaction) so that entries from several processes still form one chain in id order.
"""

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC

from django.db import connection, transaction
from django.utils import timezone

from console.models import AuditEntry

# Action names: "<area>.<verb>". Later issues add theirs here, one place for all.
AUTH_LOGIN = "auth.login"
AUTH_LOGIN_FAILED = "auth.login_failed"
AUTH_LOCKED_OUT = "auth.locked_out"
AUTH_LOGOUT = "auth.logout"
AUTH_GROUPS_CHANGED = "auth.groups_changed"
AUTH_PERMISSIONS_CHANGED = "auth.permissions_changed"
AUTH_USER_CHANGED = "auth.user_changed"
AUTH_TOKEN_CREATED = "auth.token_created"
AUDIT_VERIFY = "audit.verify"
AUDIT_EXPORT = "audit.export"
JOB_REAPED = "job.reaped"
SECRET_CREATED = "secret.created"
SECRET_ROTATED = "secret.rotated"
REMOTE_COMMAND = "remote.command"
REMOTE_SQL = "remote.sql"

GENESIS_HASH = "0" * 64
_LOCK_KEY = 0x6462636F6E736F  # "dbconso": the advisory lock that serializes appends

# The fields the hash covers, in order. Changing this list breaks every existing chain.
HASHED_FIELDS = (
    "created",
    "actor_id",
    "actor_name",
    "source",
    "action",
    "target",
    "node",
    "command",
    "status",
    "exit_code",
    "output",
    "error",
    "duration_ms",
    "request_id",
    "job_id",
    "intent_id",
)


def digest(prev_hash: str, values: tuple) -> str:
    """SHA-256 of the previous hash and an entry's HASHED_FIELDS values."""
    created, *rest = values
    payload = json.dumps(
        [created.astimezone(UTC).isoformat(), *rest], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


def append(
    action: str,
    *,
    actor=None,
    actor_name: str | None = None,
    source: str,
    status: str = AuditEntry.Status.SUCCEEDED,
    target: str = "",
    node: str = "",
    command: str = "",
    exit_code: int | None = None,
    output: str = "",
    error: str = "",
    duration_ms: int | None = None,
    request_id: str = "",
    job_id: int | None = None,
    intent_id: int | None = None,
) -> AuditEntry:
    """Append one entry to the chain and return it.

    Runs in the caller's transaction when there is one (a console change and its entry commit
    together); callers that must survive a rollback, like the executor, call it outside any.
    Secrets must already be redacted from command, output and error.
    """
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if actor_name is None:
        actor_name = actor.get_username() if actor is not None else ""
    entry = AuditEntry(
        actor=actor,
        actor_name=actor_name[:150],
        source=source,
        action=action,
        target=target[:255],
        node=node[:255],
        command=command,
        status=status,
        exit_code=exit_code,
        output=output,
        error=error,
        duration_ms=duration_ms,
        request_id=request_id[:64],
        job_id=job_id,
        intent_id=intent_id,
    )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
        entry.prev_hash = last or GENESIS_HASH
        entry.created = timezone.now()
        entry.hash = digest(entry.prev_hash, tuple(getattr(entry, f) for f in HASHED_FIELDS))
        entry.save(force_insert=True)
    return entry


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    head_hash: str
    broken_id: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_id is None


def _rows(batch: int) -> Iterator[tuple]:
    last_id = 0
    while True:
        rows = list(
            AuditEntry.objects.filter(id__gt=last_id)
            .order_by("id")
            .values_list("id", "prev_hash", "hash", *HASHED_FIELDS)[:batch]
        )
        if not rows:
            return
        yield from rows
        last_id = rows[-1][0]


def verify(*, batch: int = 20000, progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Recompute the chain from the first entry; stop at the first broken link."""
    expected_prev = GENESIS_HASH
    checked = 0
    for row in _rows(batch):
        entry_id, prev_hash, stored_hash, *values = row
        if prev_hash != expected_prev:
            return VerifyResult(
                checked,
                expected_prev,
                entry_id,
                "the entry before it was changed or removed (previous hash does not match)",
            )
        if digest(prev_hash, tuple(values)) != stored_hash:
            return VerifyResult(checked, expected_prev, entry_id, "its contents were changed")
        expected_prev = stored_hash
        checked += 1
        if progress is not None and checked % batch == 0:
            progress(checked)
    return VerifyResult(checked, expected_prev)
