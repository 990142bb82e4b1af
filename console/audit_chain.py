"""The audit chain's hash format, and verifying the chain.

Every entry's hash is SHA-256 over the previous entry's hash and the entry's own fields in a
length-prefixed canonical form (`digest`); the same payload is written in SQL, so `verify()` lets
PostgreSQL recompute the hashes. What the chain is and how it is checked stand here together,
apart from the action names and `append()` (console.audit, which every action imports) and from
how an entry is linked at the head (console.audit_writer): a change to this format breaks every
existing chain.
"""

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import starmap

from django.db import connection, models

from console.models import AuditEntry

GENESIS_HASH = "0" * 64

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
