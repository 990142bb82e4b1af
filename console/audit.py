"""The audit chain: action names, appending entries, and verifying the chain.

Every entry's hash is SHA-256 over the previous entry's hash and the entry's own fields in a
length-prefixed canonical form. Appends are optimistic: prev_hash is unique, so two writers that
read the same head cannot both insert after it; the loser reads the new head and tries again.
Entries from several processes therefore form one chain in id order.
"""

import hashlib
import os
import threading
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

# People and database accounts (users)
DIRECTORY_SYNCED = "directory.synced"
DIRECTORY_SYNC_HELD = "directory.sync_held"
DIRECTORY_SYNC_CONFIRMED = "directory.sync_confirmed"
DIRECTORY_SYNC_DISMISSED = "directory.sync_dismissed"
PERSON_SYNCED = "person.synced"
PERSON_LEFT = "person.left"
ACCOUNTS_IMPORTED = "accounts.imported"
ACCOUNT_CLASSIFIED = "account.classified"
ACCOUNT_LINKED = "account.linked"
# Account lifecycle (users.dbops, users.actions.lifecycle)
ACCOUNT_STATE_READ = "account.state_read"
ACCOUNT_CREATED = "account.created"
ACCOUNT_LOCKED = "account.locked"
ACCOUNT_UNLOCKED = "account.unlocked"
ACCOUNT_SESSIONS_TERMINATED = "account.sessions_terminated"
ACCOUNT_GRANTED = "account.granted"
ACCOUNT_REVOKED = "account.revoked"
ACCOUNT_EXPIRY_SET = "account.expiry_set"
ACCOUNT_PASSWORD_ROTATED = "account.password_rotated"
ACCOUNT_PASSWORD_SHOWN = "account.password_shown"
ACCOUNT_OWNED_READ = "account.owned_read"
ACCOUNT_DROPPED = "account.dropped"
# Offboarding (users.actions.offboarding, issue 6 part 4)
OFFBOARDING_REQUESTED = "offboarding.requested"
OFFBOARDING_APPROVED = "offboarding.approved"
OFFBOARDING_ACCOUNT = "offboarding.account"
OFFBOARDING_COMPLETED = "offboarding.completed"
OFFBOARDING_INCOMPLETE = "offboarding.incomplete"
OFFBOARDING_UNDONE = "offboarding.undone"
OFFBOARDING_EVIDENCE_EXPORTED = "offboarding.evidence_exported"
# Backups (backups.actions, issue 7)
BACKUP_COMMAND = "backup.command"
BACKUP_CATALOG_READ = "backup.catalog_read"
# Backup catalogs made and changed by DBAs (backups.catalog_admin, issue 7)
BACKUP_CATALOG_CREATED = "backup.catalog_created"
BACKUP_CATALOG_CHANGED = "backup.catalog_changed"
BACKUP_CATALOG_CHECKED = "backup.catalog_checked"
BACKUP_CATALOG_DELETED = "backup.catalog_deleted"
BACKUP_START = "backup.start"
BACKUP_RESTORE = "backup.restore"
# Backup assurance (backups.assurance, issue 7 part 5): test restores and WAL continuity
BACKUP_TEST_RESTORE_POLICY = "backup.test_restore_policy"
BACKUP_TEST_RESTORE_START = "backup.test_restore_start"
BACKUP_TEST_RESTORE = "backup.test_restore"
BACKUP_ARCHIVE_CHECK = "backup.archive_check"
# Backup policies and their schedules (backups.schedule, issue 7 parts 2, 3, 7)
BACKUP_POLICY_CREATED = "backup.policy_created"
BACKUP_POLICY_CHANGED = "backup.policy_changed"
BACKUP_POLICY_ENABLED = "backup.policy_enabled"
BACKUP_POLICY_DISABLED = "backup.policy_disabled"
BACKUP_POLICY_DELETED = "backup.policy_deleted"
BACKUP_SCHEDULE_SKIPPED = "backup.schedule_skipped"
BACKUP_MISSED = "backup.missed"
BACKUP_FINISHED = "backup.finished"
# The weekly backup report by mail (backups.report_mail, issue 7 part 6)
BACKUP_REPORT_MAILED = "backup.report_mailed"

# High availability (clusters.ha, issue 8 parts 3-4): pgpool-II, switchover, failover, fencing
HA_PGPOOL_DEPLOYED = "ha.pgpool_deployed"
HA_REQUESTED = "ha.requested"
HA_SETUP_SAVED = "ha.setup_saved"  # a DBA created or changed a cluster's HaSetup (the page)
HA_SWITCHOVER = "ha.switchover"
HA_FAILOVER = "ha.failover"
HA_FENCED = "ha.fenced"
HA_REBUILT = "ha.rebuilt"
HA_PCP = "ha.pcp"

# MariaDB provisioning on a bare host (clusters.provision.mariadb, issue 8 part 5)
PROVISION_MARIADB_REQUESTED = "provision.mariadb_requested"

# PostgreSQL provisioning on bare hosts (clusters.provision.pg and .standby, issue 8 parts 1-2)
PROVISION_REQUESTED = "provision.requested"
PROVISION_COMMAND = "provision.command"
PROVISION_SQL = "provision.sql"
PROVISION_PG_DONE = "provision.pg_done"
PROVISION_STANDBY_DONE = "provision.standby_done"

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
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        _group.append(entry)
    else:
        _append_chain([entry])
    return entry


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
