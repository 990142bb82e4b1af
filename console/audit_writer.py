"""Linking new entries at the head of the audit chain, for `console.audit.append`.

Appends are optimistic: prev_hash is unique, so two writers that read the same head cannot both
insert after it; the loser reads the new head and tries again. Entries from several processes
therefore form one chain in id order. The threads of one process append together (group
commit) instead of racing each other. Separate from console.audit, which holds the action names
and builds the entry, because this is the concurrency of the chain: how an entry gets its place.
"""

import os
import threading

import psycopg
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from console.audit_chain import GENESIS_HASH, HASHED_FIELDS, digest
from console.models import AuditEntry

_APPEND_ATTEMPTS = 100


class AuditChainBusy(RuntimeError):
    """Appends kept losing the race for the head of the chain."""


def write_entry(entry: AuditEntry) -> None:
    """Insert `entry` at the head of the chain: in the caller's transaction when there is one;
    outside any on PostgreSQL, together with the entries other threads of this process append
    at the same moment (_GroupCommit)."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        _group.append(entry)
    else:
        _append_chain([entry])


def _append_chain(entries: list[AuditEntry]) -> None:
    """Insert `entries`, chained in their order, after the current head.

    Optimistic: read the head, insert after it. prev_hash is unique, so of two writers that
    read the same head one insert fails and that writer reads the new head and tries again.
    Outside a transaction this is two statements; inside one, a savepoint guards the retry.
    """
    for _attempt in range(_APPEND_ATTEMPTS):
        try:
            if connection.in_atomic_block:
                with transaction.atomic():
                    _insert_after_head(entries)
            else:
                _insert_after_head(entries)
            return
        except (IntegrityError, psycopg.errors.UniqueViolation):
            for entry in entries:
                entry.pk = None
    raise AuditChainBusy(f"no place in the audit chain after {_APPEND_ATTEMPTS} attempts")


class _Pending:
    """One entry waiting in _GroupCommit; `state` is set before `done` is."""

    __slots__ = ("entry", "state", "done")

    def __init__(self, entry: AuditEntry) -> None:
        self.entry = entry
        self.state = ""  # "written", "failed", or "lead": write the queue now
        self.done = threading.Event()


class _GroupCommit:
    """Appends made at the same moment by the threads of one process, outside any transaction
    on PostgreSQL, written together.

    The collector's workers append two entries per remote call; racing each other for the head,
    most of their attempts lost and were retried (2 to 3 failed inserts per entry at 16 threads).
    Here one thread at a time writes: it takes every entry queued by then and inserts them,
    chained in queue order, with one head read and one multi-row INSERT (one statement: all or
    none, ids in chain order), then wakes their threads and hands the lead to the first entry
    queued meanwhile. A thread returns only once its own entry is committed, so the executor
    still records an intent before it touches a host. Should a batch fail (the writing thread's
    connection broke), each other thread of the batch appends its own entry alone, on its own
    connection, and meets its own error. Other processes still race optimistically through
    the unique prev_hash.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._writing = False

    def append(self, entry: AuditEntry) -> None:
        mine = _Pending(entry)
        with self._lock:
            self._queue.append(mine)
            lead = not self._writing
            self._writing = True
        if not lead:
            mine.done.wait()
            if mine.state == "written":
                return
            if mine.state == "failed":
                _append_chain([entry])
                return
        self._write_queue()

    def _write_queue(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        state = "failed"
        try:
            _append_chain([pending.entry for pending in batch])
            state = "written"
        finally:
            with self._lock:
                following = self._queue[0] if self._queue else None
                self._writing = following is not None
            for pending in batch:
                pending.state = state
                pending.done.set()
            if following is not None:
                following.state = "lead"
                following.done.set()


_group = _GroupCommit()


def _new_group_after_fork() -> None:
    # A process forked while one of its threads was writing (a Celery pool forks its workers)
    # must not inherit a writer that will never hand over: the child starts with an empty queue.
    global _group
    _group = _GroupCommit()


os.register_at_fork(after_in_child=_new_group_after_fork)


_SQL_HEAD = "SELECT hash FROM console_auditentry ORDER BY id DESC LIMIT 1"
_COLUMNS = ", ".join(("prev_hash", "hash", *HASHED_FIELDS))
_ROW = f"({', '.join(['%s'] * (len(HASHED_FIELDS) + 2))})"


def _sql_insert(rows: int) -> str:
    # Built from the constant field names only.
    values = ", ".join([_ROW] * rows)
    return f"INSERT INTO console_auditentry ({_COLUMNS}) VALUES {values} RETURNING id, hash"  # noqa: S608


_SQL_INSERT = _sql_insert(1)


def _insert_after_head(entries: list[AuditEntry]) -> None:
    """Link `entries` to the current head, each to the one before, and insert them.

    On PostgreSQL: the head read and one INSERT of all the rows on the connection's own psycopg
    cursor, half the time of the ORM's, since every remote call appends two entries. The rows
    of one INSERT take their ids from the sequence in VALUES order, so ids follow the chain.
    """
    if connection.vendor != "postgresql":
        for entry in entries:
            head = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
            _seal(entry, head)
            entry.save(force_insert=True)
        return
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute(_SQL_HEAD, prepare=True)
        row = cursor.fetchone()
        head, params = (row[0] if row else None), []
        for entry in entries:
            values = _seal(entry, head)
            params += [entry.prev_hash, entry.hash, *values]
            head = entry.hash
        sql = _SQL_INSERT if len(entries) == 1 else _sql_insert(len(entries))
        cursor.execute(sql, params, prepare=len(entries) == 1)
        ids = {digest: pk for pk, digest in cursor.fetchall()}
    for entry in entries:
        entry.pk = ids[entry.hash]
        entry._state.adding = False
        entry._state.db = connection.alias


def _seal(entry: AuditEntry, head: str | None) -> tuple:
    """Set the entry's time, prev_hash and hash; return its HASHED_FIELDS values."""
    entry.prev_hash = head or GENESIS_HASH
    entry.created = timezone.now()
    values = tuple(getattr(entry, f) for f in HASHED_FIELDS)
    entry.hash = digest(entry.prev_hash, values)
    return values
