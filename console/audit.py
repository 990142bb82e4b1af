"""The audit chain: action names, appending entries, and verifying the chain.

Every entry's hash is SHA-256 over the previous entry's hash and the entry's own fields in a
canonical JSON form. Appends take a lock (a PostgreSQL advisory lock; on SQLite the IMMEDIATE
transaction) so that entries from several processes still form one chain in id order.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

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


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _field(value) -> str:
    if value is None:
        return "~"
    text = (
        value.astimezone(UTC).strftime(TIME_FORMAT) if isinstance(value, datetime) else str(value)
    )
    return f"{len(text)}:{text}"


def digest(prev_hash: str, values: tuple) -> str:
    """SHA-256 of the previous hash and an entry's HASHED_FIELDS values.

    Each value is written as `<length>:<text>` (NULL as `~`) and joined with `|`: unambiguous, and
    computed the same way by PostgreSQL in `_SQL_PAYLOAD`, so verification can run in the database.
    """
    payload = "|".join(map(_field, values))
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


_SQL_TIME = """to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def _sql_field(name: str) -> str:
    text = _SQL_TIME if name == "created" else f"{name}::text"
    return f"CASE WHEN {name} IS NULL THEN '~' ELSE length({text}) || ':' || {text} END"


# The same payload as digest(), in SQL: PostgreSQL recomputes a million hashes in a few seconds.
_SQL_PAYLOAD = " || '|' || ".join(_sql_field(name) for name in HASHED_FIELDS)
# One row per batch: PostgreSQL recomputes every hash and checks the links inside the batch;
# the caller checks the link between batches. Built from the constant field names above only.
_SQL_VERIFY_BATCH = f"""
    WITH batch AS (
        SELECT id, prev_hash, hash,
               hash = encode(sha256(convert_to(prev_hash || {_SQL_PAYLOAD}, 'UTF8')), 'hex')
                   AS sound,
               lag(hash) OVER (ORDER BY id) AS before
        FROM console_auditentry WHERE id > %s ORDER BY id LIMIT %s
    )
    SELECT count(*), max(id),
           (array_agg(prev_hash ORDER BY id))[1],
           (array_agg(hash ORDER BY id DESC))[1],
           min(id) FILTER (WHERE NOT sound OR prev_hash <> before)
    FROM batch
"""  # noqa: S608


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


def _verify_batch_python(last_id: int, batch: int) -> tuple:
    """The PostgreSQL batch query's answer, computed here (for SQLite)."""
    rows = list(
        AuditEntry.objects.filter(id__gt=last_id)
        .order_by("id")
        .values_list("id", "prev_hash", "hash", *HASHED_FIELDS)[:batch]
    )
    if not rows:
        return 0, None, None, None, None
    bad = None
    before = None
    for entry_id, prev_hash, stored, *values in rows:
        linked = before is None or prev_hash == before
        if not linked or digest(prev_hash, tuple(values)) != stored:
            bad = entry_id
            break
        before = stored
    return len(rows), rows[-1][0], rows[0][1], rows[-1][2], bad


def _verify_batch(last_id: int, batch: int) -> tuple:
    """(count, last id, first prev_hash, last hash, first bad id or None) of the next batch."""
    if connection.vendor != "postgresql":
        return _verify_batch_python(last_id, batch)
    with connection.cursor() as cursor:
        cursor.execute(_SQL_VERIFY_BATCH, [last_id, batch])
        return cursor.fetchone()


def _diagnose(entry_id: int, expected_prev: str) -> tuple[int, str]:
    """Entries before `entry_id` that are intact, and what is wrong with it."""
    checked = AuditEntry.objects.filter(id__lt=entry_id).count()
    prev_hash = AuditEntry.objects.values_list("prev_hash", flat=True).get(pk=entry_id)
    if prev_hash != expected_prev:
        return checked, "the entry before it was changed or removed (previous hash does not match)"
    return checked, "its contents were changed"


def verify(*, batch: int = 100000, progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Recompute the chain from the first entry; stop at the first broken link.

    On PostgreSQL the database recomputes the hashes and checks the links within each batch;
    only the links between batches are checked here. Read-only; safe to run any time.
    """
    expected_prev = GENESIS_HASH
    checked = last_id = 0
    while True:
        count, batch_last_id, first_prev, last_hash, bad_id = _verify_batch(last_id, batch)
        if not count:
            return VerifyResult(checked, expected_prev)
        if first_prev != expected_prev:
            bad_id = AuditEntry.objects.filter(id__gt=last_id).order_by("id").first().pk
        if bad_id is not None:
            before = AuditEntry.objects.filter(id__lt=bad_id).order_by("-id").first()
            intact, reason = _diagnose(bad_id, before.hash if before else GENESIS_HASH)
            return VerifyResult(intact, before.hash if before else GENESIS_HASH, bad_id, reason)
        checked += count
        expected_prev, last_id = last_hash, batch_last_id
        if progress is not None:
            progress(checked)
