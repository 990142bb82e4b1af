"""The audit chain: action names, appending entries, and verifying the chain.

Every entry's hash is SHA-256 over the previous entry's hash and the entry's own fields in a
length-prefixed canonical form. Appends are optimistic: prev_hash is unique, so two writers that
read the same head cannot both insert after it; the loser reads the new head and tries again.
Entries from several processes therefore form one chain in id order.
"""

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import starmap

import psycopg
from django.db import IntegrityError, connection, models, transaction
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
CLUSTER_REGISTERED = "cluster.registered"
NODE_REGISTERED = "node.registered"
CLUSTER_DISCOVERED = "cluster.discovered"
CLUSTER_DRIFT = "cluster.drift"
# Alerting (clusters.alerts)
ALERT_RAISED = "alert.raised"
ALERT_CLEARED = "alert.cleared"
ALERT_NOTIFIED = "alert.notified"
ALERT_RULE_CHANGED = "alert.rule_changed"
MAINTENANCE_CREATED = "maintenance.created"
MAINTENANCE_ENDED = "maintenance.ended"
# pg_hba.conf (clusters.hba)
HBA_IMPORTED = "hba.imported"
HBA_CHANGED = "hba.changed"
HBA_APPLIED = "hba.applied"
HBA_APPLY_REFUSED = "hba.apply_refused"
HBA_ROLLED_BACK = "hba.rolled_back"
# Server settings (clusters.settings)
SETTING_CHANGED = "setting.changed"
# Security baseline (clusters.baseline)
BASELINE_CHECKED = "baseline.checked"
BASELINE_FIXED = "baseline.fixed"

GENESIS_HASH = "0" * 64
_APPEND_ATTEMPTS = 100


class AuditChainBusy(RuntimeError):
    """Appends kept losing the race for the head of the chain."""


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
# One row per range of ids: PostgreSQL recomputes every hash and checks the links inside the
# range; verify() checks the links between ranges. Built from the constant field names above only.
_SQL_VERIFY_RANGE = f"""
    WITH batch AS (
        SELECT id, prev_hash, hash,
               hash = encode(sha256(convert_to(prev_hash || {_SQL_PAYLOAD}, 'UTF8')), 'hex')
                   AS sound,
               lag(hash) OVER (ORDER BY id) AS before
        FROM console_auditentry WHERE id > %s AND id <= %s
    )
    SELECT count(*), min(id), max(id), min(id) FILTER (WHERE NOT sound OR prev_hash <> before)
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
    # Optimistic: read the head, insert after it. prev_hash is unique, so of two writers that
    # read the same head one insert fails and that writer reads the new head and tries again.
    # Outside a transaction this is two statements; inside one, a savepoint guards the retry.
    for _attempt in range(_APPEND_ATTEMPTS):
        try:
            if connection.in_atomic_block:
                with transaction.atomic():
                    _insert_after_head(entry)
            else:
                _insert_after_head(entry)
            return entry
        except (IntegrityError, psycopg.errors.UniqueViolation):
            entry.pk = None
    raise AuditChainBusy(f"no place in the audit chain after {_APPEND_ATTEMPTS} attempts")


_SQL_HEAD = "SELECT hash FROM console_auditentry ORDER BY id DESC LIMIT 1"
_SQL_INSERT = (
    f"INSERT INTO console_auditentry (prev_hash, hash, {', '.join(HASHED_FIELDS)}) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * (len(HASHED_FIELDS) + 2))}) RETURNING id"
)


def _insert_after_head(entry: AuditEntry) -> None:
    """Link `entry` to the current head and insert it.

    On PostgreSQL: two prepared statements on the connection's own psycopg cursor, half the
    time of the ORM's, since every remote call appends two entries.
    """
    if connection.vendor != "postgresql":
        head = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
        _seal(entry, head)
        entry.save(force_insert=True)
        return
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute(_SQL_HEAD, prepare=True)
        row = cursor.fetchone()
        values = _seal(entry, row[0] if row else None)
        cursor.execute(_SQL_INSERT, [entry.prev_hash, entry.hash, *values], prepare=True)
        entry.pk = cursor.fetchone()[0]
    entry._state.adding = False
    entry._state.db = connection.alias


def _seal(entry: AuditEntry, head: str | None) -> tuple:
    """Set the entry's time, prev_hash and hash; return its HASHED_FIELDS values."""
    entry.prev_hash = head or GENESIS_HASH
    entry.created = timezone.now()
    values = tuple(getattr(entry, f) for f in HASHED_FIELDS)
    entry.hash = digest(entry.prev_hash, values)
    return values


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    head_hash: str
    broken_id: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_id is None


@dataclass(frozen=True)
class _Range:
    """What verifying the entries with ids in (after, upto] found."""

    count: int
    first_id: int | None = None
    last_id: int | None = None
    bad_id: int | None = None  # first entry whose hash or link inside the range is wrong
    first_prev: str = ""
    last_hash: str = ""


def _verify_range_python(after: int, upto: int) -> _Range:
    rows = (
        AuditEntry.objects.filter(id__gt=after, id__lte=upto)
        .order_by("id")
        .values_list("id", "prev_hash", "hash", *HASHED_FIELDS)
    )
    count, first_id, first_prev, before, bad_id = 0, None, "", None, None
    for entry_id, prev_hash, stored, *values in rows.iterator(chunk_size=5000):
        if first_id is None:
            first_id, first_prev = entry_id, prev_hash
        elif prev_hash != before and bad_id is None:
            bad_id = entry_id
        if bad_id is None and digest(prev_hash, tuple(values)) != stored:
            bad_id = entry_id
        count, before = count + 1, stored
    return _Range(count, first_id, entry_id if count else None, bad_id, first_prev, before or "")


def _verify_range(after: int, upto: int) -> _Range:
    if connection.vendor != "postgresql":
        return _verify_range_python(after, upto)
    with connection.cursor() as cursor:
        cursor.execute(_SQL_VERIFY_RANGE, [after, upto])
        count, first_id, last_id, bad_id = cursor.fetchone()
        if not count:
            return _Range(0)
        cursor.execute(
            "SELECT (SELECT prev_hash FROM console_auditentry WHERE id = %s),"
            " (SELECT hash FROM console_auditentry WHERE id = %s)",
            [first_id, last_id],
        )
        first_prev, last_hash = cursor.fetchone()
    return _Range(count, first_id, last_id, bad_id, first_prev, last_hash)


def _verify_range_in_thread(bounds: tuple[int, int]) -> _Range:
    try:
        return _verify_range(*bounds)
    finally:
        connection.close()  # this thread's own connection


def _diagnose(entry_id: int) -> VerifyResult:
    before = AuditEntry.objects.filter(id__lt=entry_id).order_by("-id").first()
    expected_prev = before.hash if before else GENESIS_HASH
    intact = AuditEntry.objects.filter(id__lt=entry_id).count()
    prev_hash = AuditEntry.objects.values_list("prev_hash", flat=True).get(pk=entry_id)
    if prev_hash != expected_prev:
        reason = "the entry before it was changed or removed (previous hash does not match)"
    else:
        reason = "its contents were changed"
    return VerifyResult(intact, expected_prev, entry_id, reason)


def verify(
    *, span: int = 100_000, workers: int = 2, progress: Callable[[int], None] | None = None
) -> VerifyResult:
    """Recompute the chain from the first entry and name the first broken link. Read-only.

    The ids are cut into ranges of `span`; on PostgreSQL each range is checked by the database
    (hashes and links inside it), `workers` ranges at a time on connections of their own unless
    the caller is inside a transaction (then on its connection, to see what it sees).
    """
    bounds = AuditEntry.objects.aggregate(lo=models.Min("id"), hi=models.Max("id"))
    if bounds["lo"] is None:
        return VerifyResult(0, GENESIS_HASH)
    edges = list(range(bounds["lo"] - 1, bounds["hi"], span)) + [bounds["hi"]]
    ranges = list(zip(edges, edges[1:], strict=False))
    parallel = connection.vendor == "postgresql" and not connection.in_atomic_block
    pool = ThreadPoolExecutor(max_workers=workers) if parallel else None
    try:
        results = (
            pool.map(_verify_range_in_thread, ranges) if pool else starmap(_verify_range, ranges)
        )
        expected_prev, checked = GENESIS_HASH, 0
        for found in results:
            if not found.count:
                continue
            if found.first_prev != expected_prev:
                return _diagnose(found.first_id)
            if found.bad_id is not None:
                return _diagnose(found.bad_id)
            checked, expected_prev = checked + found.count, found.last_hash
            if progress is not None:
                progress(checked)
        return VerifyResult(checked, expected_prev)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
