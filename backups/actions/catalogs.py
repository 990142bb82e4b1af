"""Reading catalogs into BackupRun rows: pg_rman (`run_pg_rman`, `read_catalog`) and pgBackRest
(`run_pgbackrest`, `read_repository`), both written by `store_catalog_listing`.

The one road to hosts is console.executor: `run_pg_rman` and `run_pgbackrest` run a driver's
Command there as its OS user (sudo), and the executor audits the call (started, then outcome)
outside any transaction. The readers then write what they read in one transaction with their
own audit entry. Building blocks of the backup and restore jobs; no job logic here.
"""

import zoneinfo
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from backups.drivers import pg_rman, pgbackrest
from backups.drivers.base import Command, EngineError, ParsedBackup
from backups.models import (
    ACTIVE_STATUSES,
    BackupCatalog,
    BackupRun,
    Engine,
    RunStatus,
)
from clusters.models import Node
from console import audit
from console.errors import ExpectedFailure
from console.executor import CommandResult, run_command, run_sql
from console.models import AuditEntry

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
