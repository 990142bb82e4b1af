"""Pre-checks of a restore plan, on the target host over SSH (console.executor), read-only.

Run when the wizard shows the plan, again when the restore is confirmed, and once more by the
job before it touches anything: a restore onto a running server, a directory that is not
PostgreSQL's, too little disk or a repository the host cannot see stops it there. Each check
is a `Check(name, ok, detail)`; every remote call is audited by the executor
(audit.BACKUP_COMMAND, as the postgres OS user).
"""

import json
import posixpath
from dataclasses import asdict, dataclass, field

from backups.drivers import pg_rman, pgbackrest
from backups.models import Engine
from backups.restore_plan import RestorePlan
from console import audit
from console.executor import ExecutorError, run_command

PG_BIN = "/usr/lib/postgresql/15/bin"  # Debian's PostgreSQL 15 binaries, not on PATH
OS_USER = "postgres"


@dataclass(frozen=True)
class Check:
    name: str  # server_stopped, directory, disk, repository, port
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CheckReport:
    """The checks, and what they found that the restore needs: whether the directory holds
    a data directory to restore over (pgBackRest --delta), the newest archived WAL."""

    checks: list[Check] = field(default_factory=list)
    restore_over: bool = False
    wal_max: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def as_list(self) -> list[dict]:
        return [c.as_dict() for c in self.checks]


def run_as_postgres(plan: RestorePlan, argv: list[str], *, actor, job, check=False, **options):
    """`argv` on the plan's node as the postgres OS user, audited as audit.BACKUP_COMMAND: the
    one road of the pre-checks and of backups.restore_server to the target host. A non-zero
    exit is returned, not raised, unless `check`; `options` go to run_command (keep_output,
    job_log, timeout, ok_exits)."""
    return run_command(
        plan.node,
        argv,
        actor=actor,
        job=job,
        action=audit.BACKUP_COMMAND,
        sudo_user=OS_USER,
        check=check,
        **options,
    )


def server_status(plan: RestorePlan, *, actor, job, job_log: bool = True):
    """`pg_ctl status` of the plan's data directory: exit 0 a server runs there, 3 none
    runs, 4 there is no data directory."""
    argv = [f"{PG_BIN}/pg_ctl", "status", "-D", plan.data_directory]
    return run_as_postgres(plan, argv, actor=actor, job=job, job_log=job_log, ok_exits=(0, 3, 4))


def run_prechecks(plan: RestorePlan, *, actor, job=None) -> CheckReport:
    """Every pre-check of `plan` on its node. A host that cannot be reached fails the first
    check with the executor's message and skips the rest."""
    report = CheckReport()
    try:
        report.checks.append(check_server_stopped(plan, actor=actor, job=job))
        directory, report.restore_over = check_directory(plan, actor=actor, job=job)
        report.checks.append(directory)
        report.checks.append(check_disk(plan, report.restore_over, actor=actor, job=job))
        repository, report.wal_max = check_repository(plan, actor=actor, job=job)
        report.checks.append(repository)
        if not plan.in_place:
            report.checks.append(check_port(plan, actor=actor, job=job))
    except ExecutorError as exc:
        report.checks.append(Check("host", False, f"{plan.node.name}: {exc}"))
    return report


def check_server_stopped(plan: RestorePlan, *, actor, job=None) -> Check:
    """`pg_ctl status` of the target directory: 0 is a running server (refused), 3 none
    running, 4 no data directory there (nothing can be running)."""
    result = server_status(plan, actor=actor, job=job)
    if result.exit_code == 0:
        first = result.stdout.strip().splitlines()[0] if result.stdout.strip() else "running"
        return Check(
            "server_stopped",
            False,
            f"PostgreSQL is running on {plan.node.name} in "
            f"{plan.data_directory} ({first}): stop it first; nothing was touched.",
        )
    if result.exit_code in (3, 4):
        what = "no server is running there" if result.exit_code == 3 else "no data directory yet"
        return Check("server_stopped", True, f"{plan.data_directory}: {what}.")
    return Check(
        "server_stopped",
        False,
        f"pg_ctl status failed (exit {result.exit_code}): "
        f"{(result.stderr or result.stdout).strip()}",
    )


def check_directory(plan: RestorePlan, *, actor, job=None) -> tuple[Check, bool]:
    """Empty or missing (its parent writable by postgres) is fine; a PostgreSQL data
    directory is restored over (pgBackRest --delta, pg_rman clears it itself); anything else
    is refused. Returns the check and whether the restore goes over existing files."""
    path = plan.data_directory
    listing = run_as_postgres(
        plan, ["ls", "-A1", "--", path], actor=actor, job=job, keep_output=False
    )
    if listing.exit_code == 0:
        names = listing.stdout.split()
        if not names:
            return Check("directory", True, f"{path} exists and is empty."), False
        if "PG_VERSION" in names:
            how = (
                "files that differ are replaced (pgBackRest --delta)"
                if plan.engine == Engine.PGBACKREST
                else "pg_rman clears it first"
            )
            word = "its own" if plan.in_place else "a"
            return Check(
                "directory",
                True,
                f"{path} holds {word} PostgreSQL data directory: restored in place, {how}.",
            ), True
        return Check(
            "directory",
            False,
            f"{path} is not empty and is not a PostgreSQL data "
            f"directory ({len(names)} entries): choose an empty or new "
            f"directory.",
        ), False
    parent = posixpath.dirname(path.rstrip("/")) or "/"
    writable = run_as_postgres(
        plan, ["test", "-d", parent, "-a", "-w", parent], actor=actor, job=job
    )
    if writable.exit_code == 0:
        return Check("directory", True, f"{path} does not exist; it is created in {parent}."), False
    return Check(
        "directory",
        False,
        f"{path} does not exist and postgres may not create it: "
        f"{parent} is missing or not writable.",
    ), False


def _ancestors(path: str) -> list[str]:
    out = [path]
    while path not in ("/", ""):
        path = posixpath.dirname(path)
        out.append(path or "/")
    return out


def check_disk(plan: RestorePlan, restore_over: bool, *, actor, job=None) -> Check:
    """Free space where the data directory is (or would be) against the backup's database
    size (the data directory it restores). df is given the directory and its ancestors: the
    deepest one that exists names the file system."""
    needed = plan.backup.database_bytes or 0
    result = run_as_postgres(
        plan,
        ["df", "-B1", "--output=avail,file", "--", *_ancestors(plan.data_directory)],
        actor=actor,
        job=job,
    )
    rows = [line.split(None, 1) for line in result.stdout.splitlines()[1:] if line.strip()]
    rows = [(int(avail), name) for avail, name in rows if avail.isdigit()]
    if not rows:
        return Check("disk", False, f"df could not read the free space: {result.stderr.strip()}")
    avail, where = max(rows, key=lambda row: len(row[1]))
    figures = f"{_size(avail)} free in {where}, the backup's database is {_size(needed)}"
    if restore_over:  # the files there are replaced: the space they hold is reused
        return Check("disk", True, f"{figures} (restored over the existing files).")
    if avail < needed:
        return Check("disk", False, f"not enough disk: {figures}.")
    return Check("disk", True, f"{figures}.")


def _size(count: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return str(count)


def check_repository(plan: RestorePlan, *, actor, job=None) -> tuple[Check, str]:
    """The repository (pgBackRest `info`) or catalog (pg_rman `show`), read on the target host
    itself, lists the planned backup. Returns the check and the newest archived WAL."""
    catalog, label = plan.catalog, plan.backup.backup_id
    if plan.engine == Engine.PGBACKREST:
        repo = pgbackrest.Repository(path=catalog.path, stanza=catalog.stanza)
        result = run_as_postgres(
            plan, pgbackrest.info(repo).argv, actor=actor, job=job, keep_output=False
        )
        error = pgbackrest.engine_error(result.exit_code, result.stdout, result.stderr)
        if error is not None:
            return Check(
                "repository",
                False,
                f"{plan.node.name} cannot read the repository {catalog.path}: {error.message}",
            ), ""
        try:
            stanzas = [s for s in pgbackrest.parse_info(result.stdout) if s.name == catalog.stanza]
        except (ValueError, KeyError, json.JSONDecodeError):
            stanzas = []
        labels = {b.label for s in stanzas for b in s.backups}
        wal_max = stanzas[0].wal_max if stanzas else ""
    else:
        result = run_as_postgres(
            plan, pg_rman.show(catalog.path).argv, actor=actor, job=job, keep_output=False
        )
        error = pg_rman.engine_error(result.exit_code, result.stderr)
        if error is not None:
            return Check(
                "repository",
                False,
                f"{plan.node.name} cannot read the catalog {catalog.path}: {error.message}",
            ), ""
        labels = {b.backup_id for b in pg_rman.parse_show(result.stdout)}
        wal_max = ""
    if label not in labels:
        return Check(
            "repository",
            False,
            f"{plan.node.name} reads {catalog.path} but it does "
            f"not list backup {label}: is it the same shared storage?",
        ), wal_max
    last = f"; WAL archived up to {wal_max}" if wal_max else ""
    return Check(
        "repository", True, f"{plan.node.name} sees {catalog.path} and backup {label}{last}."
    ), wal_max


def check_port(plan: RestorePlan, *, actor, job=None) -> Check:
    """Nothing answers on the port the restored server will use (pg_isready exit 2: no
    response). Exits 0-2 are pg_isready's answers, audited as succeeded; 3 is a failure."""
    result = run_as_postgres(
        plan,
        [f"{PG_BIN}/pg_isready", "-h", plan.node.address, "-p", str(plan.port), "-t", "3"],
        actor=actor,
        job=job,
        ok_exits=(0, 1, 2),
    )
    if result.exit_code == 2:
        return Check("port", True, f"nothing answers on {plan.node.address}:{plan.port}.")
    return Check(
        "port",
        False,
        f"a server already answers on {plan.node.address}:{plan.port} "
        f"({result.stdout.strip()}): choose another port.",
    )
