"""Backup runs: `start_backup` queues one (the job backups.run_backup, one at a time per
cluster), `run_backup` is that job's body for both engines (shared-catalog check, the backup,
its validation, the catalog read, the run's record and its backup.finished entry).
"""

import logging
import re
import threading
import uuid
from contextlib import contextmanager

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from backups.actions.catalogs import (
    catalog_commands,
    pg_instance,
    read_catalog,
    read_repository,
    reader_node,
    repository,
    run_pg_rman,
    run_pgbackrest,
)
from backups.drivers import pg_rman, pgbackrest
from backups.drivers.base import Command
from backups.models import (
    ENGINE_MODES,
    BackupCatalog,
    BackupPolicy,
    BackupRun,
    Engine,
    RunStatus,
)
from clusters.models import Node
from console import audit, jobs
from console.errors import ExpectedFailure
from console.executor import run_command
from console.models import AuditEntry

logger = logging.getLogger(__name__)


class BackupRefused(ExpectedFailure):
    """A backup was not started (another is running, wrong engine or mode): nothing changed."""


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


def _source(job) -> str:
    return AuditEntry.Source.JOB if job is not None else AuditEntry.Source.UI
