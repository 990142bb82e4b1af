"""Backup actions: run pg_rman on a node, read a catalog into BackupRun rows.

The one road to hosts is console.executor: `run_pg_rman` runs a driver's Command there as its
OS user (sudo), and the executor audits the call (started, then outcome) outside any
transaction. `read_catalog` then writes what it read in one transaction with its own audit
entry. These are the building blocks the backup and restore jobs call; they hold no schedule
and no job logic themselves.
"""

import logging
import re
import threading
import time
import uuid
import zoneinfo
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from backups.drivers import pg_rman, pgbackrest
from backups.drivers.base import Command, EngineError, ParsedBackup
from backups.models import (
    ACTIVE_STATUSES,
    ENGINE_MODES,
    BackupCatalog,
    BackupPolicy,
    BackupRun,
    Engine,
    RecoveryTargetKind,
    RestoreRun,
    RestoreStatus,
    RunStatus,
)
from clusters.models import Node
from console import audit, jobs
from console.errors import ExpectedFailure
from console.executor import CommandResult, run_command, run_sql
from console.models import AuditEntry

logger = logging.getLogger(__name__)

# A console-started run is matched to the catalog entry pg_rman made for it when that entry
# started at most this long before the run was started (clock skew between hosts).
_MATCH_SLACK_SECONDS = 120


UTC_ZONE = zoneinfo.ZoneInfo("UTC")  # pgBackRest's times are epochs; the driver gives UTC

_SIZES = ("data_bytes", "arclog_bytes", "srvlog_bytes", "total_bytes", "written_bytes",
          "sizes_exact", "with_serverlog")  # fmt: skip


class PgRmanFailed(ExpectedFailure):
    """pg_rman exited non-zero; the message is its exit code's meaning and its own words."""

    def __init__(self, error: EngineError, result: CommandResult):
        super().__init__(error.message)
        self.error = error
        self.result = result


def reader_node(catalog: BackupCatalog) -> Node:
    """The node pg_rman runs on for this catalog: one that sees it, the primary first."""
    nodes = list(catalog.nodes.all()) or list(
        Node.objects.filter(cluster_id=catalog.cluster_id, service=Node.Service.POSTGRESQL)
    )
    if not nodes:
        raise ExpectedFailure(f"No node of {catalog.cluster.name} sees the catalog {catalog.path}.")
    return sorted(nodes, key=lambda n: (n.role != Node.Role.PRIMARY, n.name))[0]


def run_pg_rman(
    node: Node, command: Command, *, actor, job=None, timeout: float | None = None
) -> CommandResult:
    """Run one pg_rman Command on `node` as its OS user. Audited by the executor
    (audit.BACKUP_COMMAND, started then outcome). A non-zero exit raises PgRmanFailed carrying
    pg_rman's explained error and the result."""
    result = run_command(
        node,
        command.argv,
        actor=actor,
        job=job,
        action=audit.BACKUP_COMMAND,
        sudo_user=command.os_user,
        timeout=timeout,
        check=False,
    )
    error = pg_rman.engine_error(result.exit_code, result.stderr)
    if error is not None:
        raise PgRmanFailed(error, result)
    return result


@dataclass(frozen=True)
class CatalogRead:
    created: list[str]  # backup ids new to the console (found outside it)
    updated: list[str]  # backup ids whose status, sizes or validation changed
    matched: list[str]  # console-started runs that got their backup id
    total: int


def catalog_commands(catalog: BackupCatalog) -> list[Command]:
    """What read_catalog runs, in order: the listing with deleted backups, then every
    backup.ini for exact sizes."""
    return [
        pg_rman.show(catalog.path, detail=True, show_all=True),
        pg_rman.read_backup_inis(catalog.path),
    ]


def merge_listing(rows: list[ParsedBackup], inis: list[ParsedBackup]) -> list[ParsedBackup]:
    """The `show detail -a` rows (the engine's view, with parent timelines) completed by the
    exact figures of their backup.ini when it was read."""
    exact = {b.backup_id: b for b in inis}
    merged = []
    for row in rows:
        ini = exact.get(row.backup_id)
        if ini is None:
            merged.append(row)
        else:  # the status is the listing's: both come from backup.ini, the listing is later
            merged.append(replace(ini, status=row.status, parent_timeline=row.parent_timeline))
    return merged


def read_catalog(catalog: BackupCatalog, *, actor, job=None) -> CatalogRead:
    """Read the catalog on its node and bring its BackupRun rows up to date: backups the
    console did not start are created with found_outside_console; a console run still
    without a backup id gets the entry pg_rman made for it. Idempotent: a second read with
    nothing changed changes nothing. Audited: the two remote calls by the executor, the
    change (audit.BACKUP_CATALOG_READ) in the same transaction as the rows."""
    if catalog.engine != Engine.PG_RMAN:
        raise ExpectedFailure(f"{catalog} is not a pg_rman catalog.")
    node = reader_node(catalog)
    show_cmd, inis_cmd = catalog_commands(catalog)
    listing = run_pg_rman(node, show_cmd, actor=actor, job=job)
    # A backup purged between the two calls makes find complain; what it printed still counts.
    inis = run_command(node, inis_cmd.argv, actor=actor, job=job, action=audit.BACKUP_COMMAND,
                       sudo_user=inis_cmd.os_user, check=False, keep_output=False)  # fmt: skip
    backups = merge_listing(pg_rman.parse_show(listing.stdout), _parse_inis(inis.stdout))
    return store_catalog_listing(catalog, backups, actor=actor, job=job, node=node)


def _parse_inis(text: str) -> list[ParsedBackup]:
    try:
        return pg_rman.parse_backup_inis(text)
    except (KeyError, ValueError):  # a file cut short while pg_rman wrote it: use the listing
        return []


def _aware(value: datetime | None, tz: zoneinfo.ZoneInfo) -> datetime | None:
    return value.replace(tzinfo=tz) if value is not None else None


def _fields(parsed: ParsedBackup, tz: zoneinfo.ZoneInfo) -> dict:
    started, ended = _aware(parsed.started, tz), _aware(parsed.ended, tz)
    return {
        "mode": parsed.mode,
        "status": parsed.status,
        "started": started,
        "ended": ended,
        "duration": ended - started if started and ended else None,
        "data_bytes": parsed.data_bytes,
        "arclog_bytes": parsed.arclog_bytes,
        "srvlog_bytes": parsed.srvlog_bytes,
        "total_bytes": parsed.total_bytes,
        "written_bytes": parsed.written_bytes,
        "database_bytes": parsed.database_bytes,
        "sizes_exact": parsed.exact,
        "compressed": bool(parsed.compressed),
        "with_serverlog": bool(parsed.with_serverlog) or bool(parsed.srvlog_bytes),
        "timeline": parsed.timeline or None,
        "parent_timeline": parsed.parent_timeline,
        "start_lsn": parsed.start_lsn,
        "stop_lsn": parsed.stop_lsn,
        "recovery_xid": parsed.recovery_xid,
        "recovery_time": _aware(parsed.recovery_time, tz),
    }


def store_catalog_listing(
    catalog: BackupCatalog, backups: list[ParsedBackup], *, actor, job=None, node=None, tz=None
) -> CatalogRead:
    """Write a parsed listing into BackupRun rows (see read_catalog), in one transaction with
    its audit entry; the entry is written only when something changed. Times are in `tz`
    (default the catalog's time zone: pg_rman's local times)."""
    tz = tz or zoneinfo.ZoneInfo(catalog.time_zone)
    now = timezone.now()
    created, updated, matched = [], [], []
    with transaction.atomic():
        existing = {
            r.backup_id: r
            for r in BackupRun.objects.select_for_update().filter(
                catalog=catalog, backup_id__in=[b.backup_id for b in backups]
            )
        }
        waiting = list(
            BackupRun.objects.select_for_update()
            .filter(catalog=catalog, backup_id="", status__in=ACTIVE_STATUSES)
            .order_by("created")
        )
        for parsed in sorted(backups, key=lambda b: b.backup_id):
            fields = _fields(parsed, tz)
            run = existing.get(parsed.backup_id)
            if run is None:
                run = _claim(waiting, parsed, fields["started"])
                if run is not None:
                    matched.append(parsed.backup_id)
            if run is None:
                run = BackupRun(catalog=catalog, cluster_id=catalog.cluster_id,
                                backup_id=parsed.backup_id, found_outside_console=True)  # fmt: skip
                created.append(parsed.backup_id)
            elif not parsed.exact:
                # A listing lacks LSNs and recovery points, and rounds sizes: it never blanks
                # what a backup.ini gave before, nor overwrites its exact figures.
                for name in [n for n, v in fields.items() if v is None or v == ""]:
                    fields.pop(name)
                if run.sizes_exact:
                    for name in _SIZES:
                        fields.pop(name, None)
            _validation(run, parsed.status, now, fields)
            changed = [name for name, value in fields.items() if getattr(run, name) != value]
            if run.pk is not None and run.backup_id != parsed.backup_id:
                changed.append("backup_id")
            run.backup_id = parsed.backup_id
            for name in changed:
                if name in fields:
                    setattr(run, name, fields[name])
            if run.pk is None:
                run.save()
            elif changed:
                run.save(update_fields=changed)
                if parsed.backup_id not in matched:
                    updated.append(parsed.backup_id)
        BackupCatalog.objects.filter(pk=catalog.pk).update(last_read=now)
        if created or updated or matched:
            audit.append(
                audit.BACKUP_CATALOG_READ,
                actor=actor,
                source=AuditEntry.Source.JOB if job is not None else AuditEntry.Source.UI,
                target=f"backup_catalog:{catalog.pk}",
                node=node.name if node is not None else "",
                job_id=job.pk if job is not None else None,
                output=(
                    f"{catalog}: {len(backups)} backups listed; found outside the console: "
                    f"{', '.join(created) or '-'}; changed: {', '.join(updated) or '-'}; "
                    f"console runs matched: {', '.join(matched) or '-'}"
                ),
            )
    return CatalogRead(created, updated, matched, len(backups))


def _claim(waiting: list[BackupRun], parsed: ParsedBackup, started) -> BackupRun | None:
    """The oldest console run still waiting for its backup id that this entry can be: same
    mode, and the entry started no earlier than the run (less some clock slack)."""
    for run in waiting:
        since = run.started or run.created
        if (
            run.mode == parsed.mode
            and started is not None
            and ((started - since).total_seconds() >= -_MATCH_SLACK_SECONDS)
        ):
            waiting.remove(run)
            return run
    return None


def _validation(run: BackupRun, status: str, now, fields: dict) -> None:
    """OK and CORRUPT are the results of a validation: record that one ran, and when it was
    first seen (pg_rman keeps no validation time)."""
    done = status in (RunStatus.OK, RunStatus.CORRUPT) or (
        run.validated and status in (RunStatus.DELETING, RunStatus.DELETED)
    )
    fields["validated"] = done
    fields["validated_at"] = (run.validated_at or now) if done else None


# --- pgBackRest ---------------------------------------------------------------------------


class PgBackRestFailed(ExpectedFailure):
    """pgBackRest exited non-zero; the message is its exit code's meaning and its own words."""

    def __init__(self, error: EngineError, result: CommandResult):
        super().__init__(error.message)
        self.error = error
        self.result = result


class BackupRefused(ExpectedFailure):
    """A backup was not started (another is running, wrong engine or mode): nothing changed."""


def repository(catalog: BackupCatalog) -> pgbackrest.Repository:
    """The catalog as pgBackRest options: every setting on the command line, no config file."""
    if catalog.engine != Engine.PGBACKREST:
        raise ExpectedFailure(f"{catalog} is not a pgBackRest repository.")
    return pgbackrest.Repository(path=catalog.path, stanza=catalog.stanza)


def pg_instance(node: Node, *, actor, job=None) -> tuple[pgbackrest.Instance, dict]:
    """pg1-path, pg1-port and pg1-socket-path as the server itself reports them (one audited
    query), with its archive settings."""
    (row,) = run_sql(node, "backups:pgbackrest-instance", actor=actor, job=job,
                     action=audit.BACKUP_COMMAND).rows  # fmt: skip
    settings = dict(zip(("data_directory", "port", "socket_directory", "archive_mode",
                         "archive_command"), row, strict=True))  # fmt: skip
    instance = pgbackrest.Instance(path=settings["data_directory"], port=settings["port"],
                                   socket_path=settings["socket_directory"] or "")  # fmt: skip
    return instance, settings


def run_pgbackrest(
    node: Node, command: Command, *, actor, job=None, timeout: float | None = None
) -> CommandResult:
    """Run one pgBackRest Command on `node` as its OS user (postgres), audited by the executor
    (audit.BACKUP_COMMAND, started then outcome). A non-zero exit raises PgBackRestFailed
    carrying pgBackRest's explained error and the result."""
    result = run_command(node, command.argv, actor=actor, job=job, action=audit.BACKUP_COMMAND,
                         sudo_user=command.os_user, timeout=timeout, check=False)  # fmt: skip
    error = pgbackrest.engine_error(result.exit_code, result.stdout, result.stderr)
    if error is not None:
        raise PgBackRestFailed(error, result)
    return result


def read_repository(catalog: BackupCatalog, *, actor, job=None, verify: bool = True) -> CatalogRead:
    """Read the repository (`info --output=json`) and, with `verify`, check every file of it
    (`verify --verbose`): a backup is `ok` (usable) only when it and every backup whose files
    it reuses verified valid, `corrupt` otherwise; pgBackRest's error flag gives `error`.
    Backups the console did not start become runs with found_outside_console. Without
    `verify` a backup verified before keeps its result. Idempotent; audited like
    read_catalog (the remote calls by the executor, the change in one transaction)."""
    node = reader_node(catalog)
    repo = repository(catalog)
    listing = run_pgbackrest(node, pgbackrest.info(repo), actor=actor, job=job)
    stanzas = [s for s in pgbackrest.parse_info(listing.stdout) if s.name == catalog.stanza]
    backups = stanzas[0].backups if stanzas else []
    if verify and backups:
        checked = run_pgbackrest(node, pgbackrest.verify(repo), actor=actor, job=job)
        backups = pgbackrest.apply_verify(backups, pgbackrest.parse_verify(checked.stdout))
    parsed = [b.parsed for b in backups]
    if not verify:
        known = dict(
            BackupRun.objects.filter(
                catalog=catalog, status__in=(RunStatus.OK, RunStatus.CORRUPT)
            ).values_list("backup_id", "status")
        )
        parsed = [replace(p, status=known.get(p.backup_id, p.status)) if p.status == "done"
                  else p for p in parsed]  # fmt: skip
    return store_catalog_listing(catalog, parsed, actor=actor, job=job, node=node, tz=UTC_ZONE)


def start_backup(target, mode: str, *, actor, source: str = AuditEntry.Source.UI) -> BackupRun:
    """Queue a backup of a policy's (or a catalog's) cluster as the job backups.run_backup.
    One console backup at a time per cluster (the database's partial unique index): a second
    is refused with BackupRefused and nothing changes. Audited (audit.BACKUP_START) in the
    same transaction as the pending run and its job."""
    policy = target if isinstance(target, BackupPolicy) else None
    catalog = policy.catalog if policy is not None else target
    if mode not in ENGINE_MODES[catalog.engine]:
        modes = ", ".join(ENGINE_MODES[catalog.engine])
        raise BackupRefused(f"{Engine(catalog.engine).label} takes {modes} backups, not {mode!r}.")
    try:
        with transaction.atomic():
            run = BackupRun.objects.create(
                catalog=catalog, cluster_id=catalog.cluster_id, policy=policy, mode=mode,
                source_node=policy.source_node if policy is not None else None,
                compressed=policy.compress if policy is not None else True,
                with_serverlog=bool(policy and policy.with_serverlog),
            )  # fmt: skip
            job = jobs.enqueue("backups.run_backup", f"{mode} backup of {catalog}", user=actor,
                               source=source, params={"run": run.pk}, target=run)  # fmt: skip
            BackupRun.objects.filter(pk=run.pk).update(job=job)
            run.job = job
            audit.append(audit.BACKUP_START, actor=actor, source=source,
                         target=f"backup_run:{run.pk}", job_id=job.pk,
                         output=f"{mode} backup of {catalog} queued")  # fmt: skip
    except IntegrityError:
        raise BackupRefused(
            f"A backup of {catalog.cluster.name} is already queued or running; one at a time."
        ) from None
    return run


def run_backup(run: BackupRun, *, actor, job=None, log=None, progress=None) -> BackupRun:
    """The body of backups.run_backup. Claims the pending run (a run not pending is left
    alone: a redelivered job does nothing), then, on the source node (the policy's, else the
    primary): checks that the catalog is shared by its nodes, takes the backup with the
    engine, validates it and reads the catalog, so the run gets its id, sizes, times,
    timeline and status (`ok`, usable, only when validated sound). pgBackRest:
    stanza-create, `backup`, `info` + `verify`; pg_rman: `backup` (-b mode, --progress,
    --with-serverlog, --compress-data, retention, from a standby when the source is one),
    `validate`, `show detail` + backup.ini. On failure the run is `failed` with the engine's
    own message and the error is raised again. Ends with a backup.finished audit entry."""
    log = log or (lambda message: None)
    progress = progress or (lambda percent: None)
    claimed = BackupRun.objects.filter(pk=run.pk, status=RunStatus.PENDING).update(
        status=RunStatus.RUNNING, started=timezone.now()
    )
    if not claimed:
        return run
    run.refresh_from_db()
    body = _run_pg_rman if run.catalog.engine == Engine.PG_RMAN else _run_pgbackrest
    try:
        body(run, actor=actor, job=job, log=log, progress=progress)
    except Exception as exc:
        # Expected or not, the run must not stay `running`; a run taken but not verified is
        # `done` already (never usable), a failed one `failed` with the engine's words.
        if BackupRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exists():
            _fail(run, str(exc))
        run.refresh_from_db()
        _finished(run, actor=actor, job=job)
        raise
    run.refresh_from_db()
    if run.status == RunStatus.RUNNING:  # the listing did not have it: say so, never hide it
        _fail(run, f"The engine reported backup {run.backup_id or '(no id)'} taken but its "
                   f"catalog does not list it.")  # fmt: skip
        run.refresh_from_db()
    log(f"backup {run.backup_id}: {run.get_status_display()}"
        + (" (validated, usable)" if run.usable else " (not usable)"))  # fmt: skip
    progress(100)
    _finished(run, actor=actor, job=job)
    return run


def _finished(run: BackupRun, *, actor, job) -> None:
    sizes = ", ".join(f"{name.removesuffix('_bytes')} {getattr(run, name)} B" for name in
                      ("data_bytes", "arclog_bytes", "srvlog_bytes", "total_bytes",
                       "written_bytes") if getattr(run, name) is not None)  # fmt: skip
    audit.append(
        audit.BACKUP_FINISHED, actor=actor, source=_source(job), target=f"backup_run:{run.pk}",
        job_id=job.pk if job else None,
        status=AuditEntry.Status.SUCCEEDED if run.usable else AuditEntry.Status.FAILED,
        output=f"{run.mode} backup {run.backup_id or '-'} of {run.catalog}: {run.status}, "
               f"validated={run.validated}, timeline {run.timeline or '-'}, {sizes or 'no sizes'}",
        error=run.message if not run.usable else "",
    )  # fmt: skip


def check_shared_catalog(catalog: BackupCatalog, writer: Node, *, actor, job=None) -> None:
    """Before a backup of a catalog with several nodes: a marker file written into the
    catalog path (created if missing) as postgres on `writer` must be visible from every
    other node of the catalog (the shared mount). Raises
    ExpectedFailure with the system's own words when it cannot be written there, or naming
    the nodes that do not see it. The marker is removed afterwards. Audited by the executor."""
    others = [n for n in catalog.nodes.all() if n.pk != writer.pk]
    if not others:
        return
    marker = f"{catalog.path.rstrip('/')}/.dbconsole-shared-{uuid.uuid4().hex}"
    # The engine would create the catalog directory itself (pgBackRest does): so may the check.
    run_command(writer, ["mkdir", "-p", "--", catalog.path], actor=actor, job=job,
                action=audit.BACKUP_COMMAND, sudo_user="postgres", check=False)  # fmt: skip
    wrote = run_command(writer, ["touch", "--", marker], actor=actor, job=job,
                        action=audit.BACKUP_COMMAND, sudo_user="postgres", check=False)  # fmt: skip
    if wrote.exit_code != 0:
        raise ExpectedFailure(f"The catalog path {catalog.path} is not writable by postgres on "
                              f"{writer.name}: {wrote.stderr.strip()}")  # fmt: skip
    try:
        blind = [
            n.name for n in others
            if run_command(n, ["test", "-f", marker], actor=actor, job=job,
                           action=audit.BACKUP_COMMAND, sudo_user="postgres",
                           check=False).exit_code != 0
        ]  # fmt: skip
    finally:
        run_command(writer, ["rm", "-f", "--", marker], actor=actor, job=job,
                    action=audit.BACKUP_COMMAND, sudo_user="postgres", check=False)  # fmt: skip
    if blind:
        raise ExpectedFailure(
            f"The catalog {catalog.path} is not shared: a file written there on {writer.name} "
            f"is not visible on {', '.join(blind)}. Mount the same storage on every node of "
            f"the catalog; nothing was backed up."
        )


def _run_pgbackrest(run: BackupRun, *, actor, job, log, progress) -> None:
    catalog = run.catalog
    node = run.source_node or reader_node(catalog)
    repo = repository(catalog)
    instance, _settings = pg_instance(node, actor=actor, job=job)
    check_shared_catalog(catalog, node, actor=actor, job=job)
    log(f"stanza {catalog.stanza} on {node.name}: stanza-create (does nothing when it exists)")
    run_pgbackrest(node, pgbackrest.stanza_create(repo, instance), actor=actor, job=job)
    progress(5)
    # pgBackRest's own log of this run, in a fresh directory of postgres's, followed live.
    made = run_command(node, ["mktemp", "-d", "-t", "dbconsole-backup-XXXXXXXX"], actor=actor,
                       job=job, action=audit.BACKUP_COMMAND, sudo_user="postgres")  # fmt: skip
    log_path = made.stdout.strip()
    command = pgbackrest.backup(repo, instance, run.mode, retention=_retention(run.policy),
                                compress=run.compressed)  # fmt: skip
    command = _logging_to(command, log_path)
    log(f"{run.mode} backup on {node.name}: {command.display()}")
    tail = _LogTail(node, f"{log_path}/{catalog.stanza}-backup.log", actor=actor, job=job,
                    log=log, progress=progress)  # fmt: skip
    try:
        with tail.following():
            result = run_pgbackrest(node, command, actor=actor, job=job, timeout=6 * 3600)
    finally:
        run_command(node, ["rm", "-rf", "--", log_path], actor=actor, job=job,
                    action=audit.BACKUP_COMMAND, sudo_user="postgres", check=False)  # fmt: skip
    if not tail.lines:  # the file could not be read: its console messages, after the fact
        for message in pgbackrest.parse_messages(result.stdout):
            log(f"pgBackRest {message.level}: {message.text}")
    label = pgbackrest.new_label(result.stdout)
    mode = pgbackrest.changed_type(result.stderr) or run.mode
    BackupRun.objects.filter(pk=run.pk).update(backup_id=label or "", mode=mode)
    progress(90)
    log(f"backup {label} ({mode}) taken; verifying the repository")
    try:
        read_repository(catalog, actor=actor, job=job, verify=True)
    except Exception as exc:
        _taken_not_verified(run, label, exc)
        raise


def _logging_to(command: Command, log_path: str) -> Command:
    """The command with pgBackRest's file log on, at `detail` (a line per file copied, with
    the percent done) into `log_path`, which the job follows while it runs."""
    argv = []
    for arg in command.argv:
        argv += (["--log-level-file=detail", f"--log-path={log_path}"]
                 if arg == "--log-level-file=off" else [arg])  # fmt: skip
    return Command(argv, command.os_user)


_PERCENT_RE = re.compile(r"backup file .* \([^,()]+, (\d+(?:\.\d+)?)%\)")


class _LogTail:
    """Follows pgBackRest's log file of a running backup from a thread: new bytes are read
    (`tail -c +N`, audited without their content) first after a second, then ever less often
    (up to 30 s); INFO, WARN and ERROR lines go to the job log as they come, the percent of
    the latest `backup file` line to the job's progress. A read that fails is tried again;
    following never fails the backup."""

    def __init__(self, node: Node, path: str, *, actor, job, log, progress):
        self.node, self.path, self.actor, self.job = node, path, actor, job
        self.log, self.progress = log, progress
        self.offset, self.partial, self.lines = 0, "", 0

    def read(self) -> None:
        result = run_command(self.node, ["tail", "-c", f"+{self.offset + 1}", self.path],
                             actor=self.actor, job=self.job, action=audit.BACKUP_COMMAND,
                             sudo_user="postgres", check=False, keep_output=False,
                             job_log=False)  # fmt: skip
        if result.exit_code != 0 or not result.stdout:
            return
        self.offset += len(result.stdout.encode())
        text, _, self.partial = (self.partial + result.stdout).rpartition("\n")
        percent = None
        for message in pgbackrest.parse_messages(text):
            self.lines += 1
            if message.level in ("INFO", "WARN", "ERROR", "HINT"):
                self.log(f"pgBackRest {message.level}: {message.text}")
            elif m := _PERCENT_RE.match(message.text):
                percent = float(m[1])
        if percent is not None:
            self.progress(5 + int(percent * 0.85))

    @contextmanager
    def following(self):
        stop = threading.Event()

        def follow() -> None:
            wait = 1.0
            try:
                while not stop.wait(wait):
                    self.read()
                    wait = min(wait * 1.5, 30.0)
                self.read()  # what was written since the last read
            except Exception:  # following is a nicety: never fail the backup for it
                logger.exception("following pgBackRest's log %s failed", self.path)
            finally:
                connection.close()

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()


def _taken_not_verified(run: BackupRun, backup_id: str, exc: Exception) -> None:
    """Taken but not validated: `done`, never usable, and the cluster free for the next one."""
    now = timezone.now()
    BackupRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.DONE, ended=now, duration=now - run.started,
        message=f"Backup {backup_id} taken, but the catalog could not be read or validated: "
                f"{exc}",
    )  # fmt: skip


# --- pg_rman runs ---------------------------------------------------------------------------


def pg_rman_retention(policy: BackupPolicy | None) -> pg_rman.Retention | None:
    if policy is None:
        return None
    return pg_rman.Retention(**{name: getattr(policy, name)
                                for name in BackupPolicy.PG_RMAN_RETENTION})  # fmt: skip


def pg_rman_commands(run: BackupRun, pgdata: str, connection: pg_rman.Connection,
                     standby: tuple[str, int] | None = None) -> list[Command]:  # fmt: skip
    """What a pg_rman run executes, in order: the backup (--progress, the policy's
    --with-serverlog, --compress-data and --keep-* options; from a standby: -D its data
    directory, the connection to the primary and --standby-host/--standby-port), then
    `validate`, then the catalog read (`show detail -a`, every backup.ini)."""
    catalog = run.catalog
    backup = pg_rman.backup(
        catalog.path, pgdata, run.mode, connection=connection,
        srvlog_path=catalog.srvlog_path if run.with_serverlog else None,
        with_serverlog=run.with_serverlog, compress=run.compressed, progress=True,
        retention=pg_rman_retention(run.policy),
        standby_host=standby[0] if standby else "", standby_port=standby[1] if standby else None,
    )  # fmt: skip
    return [backup, pg_rman.validate(catalog.path), *catalog_commands(catalog)]


def _pg_rman_source(run: BackupRun, *, actor, job) -> tuple[Node, str, pg_rman.Connection, tuple]:
    """Where pg_rman runs and how it connects: on the primary through its unix socket; on a
    standby source with -D the standby's data directory, the primary over TCP, and the
    standby's socket and port as --standby-host/--standby-port."""
    node = run.source_node or reader_node(run.catalog)
    instance, _settings = pg_instance(node, actor=actor, job=job)
    if node.role != Node.Role.STANDBY:
        return node, instance.path, pg_rman.Connection(host=instance.socket_path,
                                                       port=instance.port), None  # fmt: skip
    primary = Node.objects.filter(cluster_id=node.cluster_id, role=Node.Role.PRIMARY,
                                  service=Node.Service.POSTGRESQL).first()  # fmt: skip
    if primary is None:
        raise ExpectedFailure(f"A backup from the standby {node.name} needs the primary of "
                              f"{node.cluster.name}, and none is known.")  # fmt: skip
    connection = pg_rman.Connection(host=primary.address, port=primary.db_port or 5432)
    return node, instance.path, connection, (instance.socket_path, instance.port)


def _run_pg_rman(run: BackupRun, *, actor, job, log, progress) -> None:
    catalog = run.catalog
    node, pgdata, connection, standby = _pg_rman_source(run, actor=actor, job=job)
    check_shared_catalog(catalog, node, actor=actor, job=job)
    backup, validate, _show, _inis = pg_rman_commands(run, pgdata, connection, standby)
    progress(5)
    log(f"{run.mode} backup on {node.name}" + (" (from the standby)" if standby else "")
        + f": {backup.display()}")  # fmt: skip
    result = run_pg_rman(node, backup, actor=actor, job=job, timeout=6 * 3600)
    for phase in pg_rman.parse_progress(result.stderr):
        log(f"pg_rman copied {phase.phase}: {phase.processed} of {phase.total} files "
            f"({phase.skipped} skipped)")  # fmt: skip
    for message in pg_rman.parse_messages(result.stderr):
        if message.level in ("WARNING", "NOTICE") or "retention" in message.text:
            log(f"pg_rman {message.level}: {message.text}")
    progress(70)
    log(f"validating: {validate.display()}")
    try:
        checked = run_pg_rman(node, validate, actor=actor, job=job, timeout=6 * 3600)
        for backup_id, result_ in pg_rman.parse_validate(checked.stderr).items():
            log(f"backup {backup_id}: {'valid' if result_ == 'ok' else 'CORRUPT'}")
        progress(90)
        read_catalog(catalog, actor=actor, job=job)
    except Exception as exc:
        _taken_not_verified(run, "", exc)
        raise


def _retention(policy: BackupPolicy | None) -> pgbackrest.Retention | None:
    if policy is None:
        return None
    return pgbackrest.Retention(full=policy.retention_full, diff=policy.retention_diff,
                                archive=policy.retention_archive)  # fmt: skip


def _fail(run: BackupRun, message: str) -> None:
    now = timezone.now()
    BackupRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED, ended=now, duration=now - (run.started or now), message=message
    )


# --- restore into a scratch instance (pgBackRest) --------------------------------------------

PG_BIN = "/usr/lib/postgresql/15/bin"  # Debian's PostgreSQL 15 binaries, not on PATH
_RECOVERY_TIMEOUT = 600.0


def restore_to_scratch(
    catalog: BackupCatalog,
    node: Node,
    *,
    data_directory: str,
    port: int,
    target_kind: str = RecoveryTargetKind.LATEST,
    target_value: str = "",
    check_query: str = "",
    actor,
    job=None,
    recovery_timeout: float = _RECOVERY_TIMEOUT,
) -> RestoreRun:
    """Restore the repository into a new `data_directory` on `node` (a scratch instance, never
    a live server's directory), start it on `port` with archiving off and no synchronous
    standby, wait (with a deadline) until recovery reached the target and promoted, run
    `check_query`, then stop it and remove the directory. Recorded as a RestoreRun (test
    restore) with the backup set used, the result of the check and the measured duration (an
    RTO figure). Refused before anything is touched when the directory already exists or the
    target is invalid. Audited: audit.BACKUP_RESTORE with the run, every remote step by the
    executor. Raises the failure after recording it."""
    restore = RestoreRun(cluster_id=catalog.cluster_id, catalog=catalog, target_node=node,
                         target_data_directory=data_directory, target_kind=target_kind,
                         target_value=target_value, target_action="promote", test_restore=True,
                         check_query=check_query, user=actor if actor else None)  # fmt: skip
    restore.full_clean(exclude=["user", "job", "backup"])
    command = pgbackrest.restore(repository(catalog), data_directory,
                                 pgbackrest.RestoreTarget(target_kind, target_value))  # fmt: skip
    exists = run_command(
        node, ["test", "-e", data_directory], actor=actor, job=job,
        action=audit.BACKUP_COMMAND, sudo_user="postgres", check=False,
    )  # fmt: skip
    if exists.exit_code == 0:
        raise ExpectedFailure(f"{data_directory} already exists on {node.name}: a test restore "
                              f"goes into a new directory.")  # fmt: skip
    try:
        with transaction.atomic():
            restore.status, restore.started, restore.job = (RestoreStatus.RUNNING,
                                                            timezone.now(), job)  # fmt: skip
            restore.save()
            audit.append(audit.BACKUP_RESTORE, actor=actor, source=_source(job), node=node.name,
                         target=f"restore_run:{restore.pk}", job_id=job.pk if job else None,
                         output=f"test restore of {catalog} to {restore.target_kind} "
                                f"{restore.target_value} into {data_directory}")  # fmt: skip
    except IntegrityError:
        raise ExpectedFailure(f"A restore onto {node.name} is already running.") from None
    started = False
    try:
        result = run_pgbackrest(node, command, actor=actor, job=job, timeout=6 * 3600)
        label = _restored_set(result.stdout)
        backup = BackupRun.objects.filter(catalog=catalog, backup_id=label).first()
        options = (f"-c port={port} -c archive_mode=off -c synchronous_standby_names='' "
                   f"-c unix_socket_directories='{data_directory}'")  # fmt: skip
        run_command(node, [f"{PG_BIN}/pg_ctl", "-D", data_directory, "-l",
                           f"{data_directory}/restore.log", "-o", options, "-w", "-t", "120",
                           "start"], actor=actor, job=job, action=audit.BACKUP_COMMAND,
                    sudo_user="postgres", timeout=150)  # fmt: skip
        started = True
        scratch = replace(node.pg_target(), name=f"{node.name}:{port}", port=port)
        _wait_for_promotion(scratch, recovery_timeout, actor=actor, job=job)
        check_result, check_ok = _check(scratch, check_query, actor=actor, job=job)
    except ExpectedFailure as exc:
        _end_restore(restore, RestoreStatus.FAILED, message=str(exc))
        raise
    finally:
        _remove_scratch(node, data_directory, started, actor=actor, job=job)
    status = RestoreStatus.SUCCEEDED if check_ok is not False else RestoreStatus.FAILED
    _end_restore(restore, status, backup=backup, check_result=check_result, check_ok=check_ok,
                 message=f"restored from backup set {label}")  # fmt: skip
    return restore


def _source(job) -> str:
    return AuditEntry.Source.JOB if job is not None else AuditEntry.Source.UI


def _restored_set(stdout: str) -> str:
    for message in pgbackrest.parse_messages(stdout):
        if "restore backup set " in message.text:
            return message.text.split("restore backup set ", 1)[1].split(",", 1)[0]
    return ""


def _wait_for_promotion(target, timeout: float, *, actor, job) -> None:
    deadline = time.monotonic() + timeout
    while True:
        rows = run_sql(target, "backups:restore-recovery", actor=actor, job=job,
                       action=audit.BACKUP_COMMAND, job_log=False).rows  # fmt: skip
        if rows and rows[0][0] is False:
            return
        if time.monotonic() > deadline:
            raise ExpectedFailure(f"Recovery did not reach its target within {timeout:.0f} s.")
        time.sleep(0.25)  # polling interval; the deadline decides


def _check(target, query: str, *, actor, job) -> tuple[str, bool | None]:
    """The check query's first column of its first row as text; ok unless it is false, NULL
    or there is no row. No query: nothing checked (None)."""
    if not query:
        return "", None
    rows = run_sql(target, query, actor=actor, job=job, action=audit.BACKUP_COMMAND).rows
    value = rows[0][0] if rows else None
    return ("" if value is None else str(value)), value not in (None, False)


def _remove_scratch(node: Node, data_directory: str, started: bool, *, actor, job) -> None:
    if started:
        run_command(node, [f"{PG_BIN}/pg_ctl", "-D", data_directory, "-m", "fast", "-w", "stop"],
                    actor=actor, job=job, action=audit.BACKUP_COMMAND, sudo_user="postgres",
                    check=False)  # fmt: skip
    run_command(
        node, ["rm", "-rf", "--one-file-system", "--", data_directory], actor=actor, job=job,
        action=audit.BACKUP_COMMAND, sudo_user="postgres", check=False,
    )  # fmt: skip


def _end_restore(restore: RestoreRun, status: str, **fields) -> None:
    now = timezone.now()
    fields.update(status=status, ended=now, duration=now - restore.started)
    for name, value in fields.items():
        setattr(restore, name, value)
    restore.save(update_fields=list(fields))
