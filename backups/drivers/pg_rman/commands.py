"""pg_rman 1.3.x command builders and the input checks they apply (pure).

Every builder checks its input first and raises DriverInputError naming the field, so nothing
malformed ever reaches an argv. Option spellings are those of `pg_rman --help` (1.3.19); the
argv shapes are those of the captured runs in tests/backups/fixtures/pg_rman/, which the
tests rebuild exactly. Separate from what pg_rman prints (parsers.py) and what its exit codes
mean (errors.py): the checks are also used by the models, the pgBackRest driver and the forms.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from backups.drivers.base import Command, DriverInputError

__all__ = [
    "BACKUP_MODES",
    "OS_USER",
    "PG_RMAN",
    "STATUSES",
    "TARGET_ACTIONS",
    "TIMESTAMP_FORMAT",
    "Connection",
    "RecoveryTarget",
    "Retention",
    "backup",
    "backup_directory",
    "check_backup_id",
    "check_date_prefix",
    "check_name",
    "check_path",
    "check_positive_int",
    "check_target_time",
    "delete",
    "init",
    "purge",
    "read_backup_inis",
    "restore",
    "show",
    "validate",
]

PG_RMAN = "pg_rman"
OS_USER = "postgres"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"  # a backup's id: its start time, to the second
BACKUP_MODES = ("full", "incremental", "archive")
TARGET_ACTIONS = ("pause", "promote", "shutdown")
STATUSES = ("ok", "done", "running", "error", "deleting", "deleted", "corrupt")
_TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_DATE_PREFIX_RE = re.compile(r"\d{4}(-\d{2}(-\d{2}( \d{2}(:\d{2}(:\d{2})?)?)?)?)?")
_TARGET_TIME_RE = re.compile(
    r"(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?P<frac>\.\d{1,6})?"
    r"(?P<zone> ?(Z|UTC|[+-]\d{2}(:?\d{2})?))?"
)


# --- Input checks ------------------------------------------------------------------------------


def check_path(field_name: str, value: str) -> str:
    """An absolute path, as pg_rman requires for -B, -D, -A, -S."""
    if not isinstance(value, str) or not value:
        raise DriverInputError(field_name, "a path is required.")
    if any(c in value for c in "\0\n\r"):
        raise DriverInputError(field_name, "the path contains a control character.")
    if not value.startswith("/"):
        raise DriverInputError(
            field_name, f"must be an absolute path (starting with /): {value!r}."
        )
    return value


def check_backup_id(value: str, field_name: str = "backup") -> str:
    """A backup's id: its start time "YYYY-MM-DD HH:MM:SS", a real date and time."""
    if not isinstance(value, str) or not _TIMESTAMP_RE.fullmatch(value):
        raise DriverInputError(
            field_name,
            f"a pg_rman backup is named by its start time YYYY-MM-DD HH:MM:SS: {value!r}.",
        )
    try:
        datetime.strptime(value, TIMESTAMP_FORMAT)
    except ValueError:
        raise DriverInputError(field_name, f"not a real date and time: {value!r}.") from None
    return value


def check_date_prefix(value: str, field_name: str = "date") -> str:
    """A start time or its prefix (2026, 2026-11, 2026-11-25 20…): pg_rman's DATE for show."""
    if not isinstance(value, str) or not _DATE_PREFIX_RE.fullmatch(value):
        raise DriverInputError(field_name, f"expected YYYY[-MM[-DD[ HH[:MM[:SS]]]]]: {value!r}.")
    if _TIMESTAMP_RE.fullmatch(value):
        check_backup_id(value, field_name)
    return value


def check_target_time(value: str, field_name: str = "recovery_target_time") -> str:
    """A recovery target time PostgreSQL will read: "YYYY-MM-DD HH:MM:SS[.ffffff][ zone]"."""
    m = _TARGET_TIME_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not m:
        raise DriverInputError(
            field_name,
            f"expected a time as YYYY-MM-DD HH:MM:SS, optionally with fractions of a second and "
            f"a UTC offset such as +09:00: {value!r}.",
        )
    try:
        datetime.strptime(m["ts"].replace("T", " "), TIMESTAMP_FORMAT)
    except ValueError:
        raise DriverInputError(field_name, f"not a real date and time: {value!r}.") from None
    return value.strip()


def check_positive_int(field_name: str, value, *, maximum: int = 2**63 - 1) -> int:
    if isinstance(value, bool):
        raise DriverInputError(field_name, "must be a whole number.")
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise DriverInputError(field_name, f"must be a whole number: {value!r}.") from None
    if not 1 <= number <= maximum:
        raise DriverInputError(field_name, f"must be between 1 and {maximum}: {number}.")
    return number


def check_name(field_name: str, value: str) -> str:
    """A host, user or database name passed as one argument (never read as an option)."""
    if not isinstance(value, str) or not value.strip():
        raise DriverInputError(field_name, "a value is required.")
    if value.startswith("-") or any(c.isspace() or c == "\0" for c in value):
        raise DriverInputError(field_name, f"not a valid name: {value!r}.")
    return value


# --- Command builders --------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """How pg_rman reaches PostgreSQL (-h, -p, -U, -d); empty fields are left to libpq."""

    host: str = ""
    port: int | None = None
    user: str = ""
    dbname: str = ""

    def argv(self) -> list[str]:
        args = []
        if self.host:
            # A socket directory is a path, a host a name: both one argument.
            args += ["-h", check_path("host", self.host) if self.host.startswith("/")
                     else check_name("host", self.host)]  # fmt: skip
        if self.port is not None:
            args += ["-p", str(check_positive_int("port", self.port, maximum=65535))]
        if self.user:
            args += ["-U", check_name("user", self.user)]
        if self.dbname:
            args += ["-d", check_name("dbname", self.dbname)]
        return args


@dataclass(frozen=True)
class Retention:
    """pg_rman's retention options, named as its flags; None leaves a flag out."""

    keep_data_generations: int | None = None
    keep_data_days: int | None = None
    keep_arclog_files: int | None = None
    keep_arclog_days: int | None = None
    keep_srvlog_files: int | None = None
    keep_srvlog_days: int | None = None

    def argv(self) -> list[str]:
        args = []
        for name in ("keep_data_generations", "keep_data_days", "keep_arclog_files",
                     "keep_arclog_days", "keep_srvlog_files", "keep_srvlog_days"):  # fmt: skip
            value = getattr(self, name)
            if value is not None:
                flag = name.replace("_", "-")
                args.append(f"--{flag}={check_positive_int(name, value, maximum=2**31 - 1)}")
        return args


@dataclass(frozen=True)
class RecoveryTarget:
    """Where a restore stops: the latest point, a time, an xid, or the end of a timeline."""

    kind: str = "latest"  # latest, time, xid, timeline
    value: str = ""
    inclusive: bool | None = None  # time and xid only
    timeline: int | None = None  # with time or xid: the timeline to follow

    def argv(self) -> list[str]:
        if self.kind == "latest":
            if self.value:
                raise DriverInputError("recovery_target", "the latest point takes no value.")
            args = []
        elif self.kind == "time":
            args = ["--recovery-target-time", check_target_time(self.value)]
        elif self.kind == "xid":
            xid = check_positive_int("recovery_target_xid", self.value, maximum=2**64 - 1)
            args = ["--recovery-target-xid", str(xid)]
        elif self.kind == "timeline":
            tli = check_positive_int("recovery_target_timeline", self.value, maximum=2**32 - 1)
            return ["--recovery-target-timeline", str(tli)]
        else:
            raise DriverInputError(
                "recovery_target_kind", f"one of latest, time, xid, timeline: {self.kind!r}."
            )
        if self.timeline is not None:
            tli = check_positive_int("recovery_target_timeline", self.timeline, maximum=2**32 - 1)
            args += ["--recovery-target-timeline", str(tli)]
        if self.inclusive is not None:
            if self.kind == "latest":
                raise DriverInputError("inclusive", "only a time or an xid can be inclusive.")
            args.append(f"--recovery-target-inclusive={'true' if self.inclusive else 'false'}")
        return args


def _catalog(backup_path: str) -> list[str]:
    return ["-B", check_path("backup_path", backup_path)]


def _paths(arclog_path: str | None, srvlog_path: str | None) -> list[str]:
    args = []
    if arclog_path:
        args += ["-A", check_path("arclog_path", arclog_path)]
    if srvlog_path:
        args += ["-S", check_path("srvlog_path", srvlog_path)]
    return args


def init(backup_path: str, pgdata: str, *, arclog_path: str | None = None,
         srvlog_path: str | None = None) -> Command:  # fmt: skip
    """`pg_rman init`: create the catalog; -A/-S are written into its pg_rman.ini."""
    return Command([PG_RMAN, "init", *_catalog(backup_path), "-D", check_path("pgdata", pgdata),
                    *_paths(arclog_path, srvlog_path)], OS_USER)  # fmt: skip


def backup(
    backup_path: str,
    pgdata: str,
    mode: str,
    *,
    connection: Connection | None = None,
    arclog_path: str | None = None,
    srvlog_path: str | None = None,
    with_serverlog: bool = False,
    compress: bool = False,
    smooth_checkpoint: bool = False,
    full_backup_on_error: bool = False,
    progress: bool = False,
    retention: Retention | None = None,
    standby_host: str = "",
    standby_port: int | None = None,
) -> Command:
    """`pg_rman backup -b MODE`. From a standby: run it on the standby host with -D its data
    directory, the connection to the primary, and --standby-host/--standby-port the standby."""
    if mode not in BACKUP_MODES:
        raise DriverInputError("mode", f"one of {', '.join(BACKUP_MODES)}: {mode!r}.")
    if full_backup_on_error and mode == "full":
        raise DriverInputError("full_backup_on_error", "only for incremental or archive mode.")
    if bool(standby_host) != (standby_port is not None):
        raise DriverInputError("standby_host", "a standby needs both its host and its port.")
    argv = [PG_RMAN, "backup", *_catalog(backup_path), "-D", check_path("pgdata", pgdata),
            *_paths(arclog_path, srvlog_path), *(connection or Connection()).argv(),
            "-b", mode]  # fmt: skip
    argv += ["-F"] if full_backup_on_error else []
    argv += ["--with-serverlog"] if with_serverlog else []
    argv += ["--compress-data"] if compress else []
    argv += ["--smooth-checkpoint"] if smooth_checkpoint else []
    argv += ["--progress"] if progress else []
    argv += (retention or Retention()).argv()
    if standby_host:
        host = standby_host
        host = (
            check_path("standby_host", host)
            if host.startswith("/")
            else check_name("standby_host", host)
        )
        port = check_positive_int("standby_port", standby_port, maximum=65535)
        argv += [f"--standby-host={host}", f"--standby-port={port}"]
    return Command(argv, OS_USER)


def validate(backup_path: str, backup_id: str | None = None) -> Command:
    """`pg_rman validate [DATE]`: check every unvalidated backup (or one) by CRC."""
    date = [check_backup_id(backup_id)] if backup_id else []
    return Command([PG_RMAN, "validate", *date, *_catalog(backup_path)], OS_USER)


def show(backup_path: str, *, detail: bool = False, date: str | None = None,
         show_all: bool = False) -> Command:  # fmt: skip
    """`pg_rman show [detail] [DATE] [-a]`: a table, or one backup's ini dump for a full
    start time. `show_all` adds DELETED backups."""
    argv = [PG_RMAN, "show"] + (["detail"] if detail else [])
    argv += [check_date_prefix(date)] if date else []
    argv += ["-a"] if show_all else []
    return Command([*argv, *_catalog(backup_path)], OS_USER)


def delete(backup_path: str, backup_id: str, *, force: bool = False,
           check: bool = False) -> Command:  # fmt: skip
    """`pg_rman delete DATE`: mark the backups older than DATE deleted, keeping what a
    restore still needs unless `force`. `check` only says what would be deleted."""
    argv = [PG_RMAN, "delete"] + (["-f"] if force else []) + [check_backup_id(backup_id)]
    return Command([*argv, *_catalog(backup_path), *(["--check"] if check else [])], OS_USER)


def purge(backup_path: str) -> Command:
    """`pg_rman purge`: remove the files of DELETED backups from the catalog."""
    return Command([PG_RMAN, "purge", *_catalog(backup_path)], OS_USER)


def restore(
    backup_path: str,
    pgdata: str,
    target: RecoveryTarget | None = None,
    *,
    arclog_path: str | None = None,
    srvlog_path: str | None = None,
    target_action: str | None = None,
    hard_copy: bool = False,
    check: bool = False,
) -> Command:
    """`pg_rman restore` into a stopped server's data directory; `check` is a dry run that
    lists the WAL it would use."""
    argv = [PG_RMAN, "restore", *_catalog(backup_path), "-D", check_path("pgdata", pgdata),
            *_paths(arclog_path, srvlog_path), *(target or RecoveryTarget()).argv()]  # fmt: skip
    if target_action is not None:
        if target_action not in TARGET_ACTIONS:
            raise DriverInputError("target_action", f"one of {', '.join(TARGET_ACTIONS)}.")
        argv.append(f"--recovery-target-action={target_action}")
    argv += ["--hard-copy"] if hard_copy else []
    argv += ["--check"] if check else []
    return Command(argv, OS_USER)


def read_backup_inis(backup_path: str) -> Command:
    """Print every backup.ini of the catalog (<catalog>/YYYYMMDD/HHMMSS/backup.ini) in one
    call: the exact byte counts that `show` rounds. It starts in / because find, run as
    postgres from a directory postgres may not enter (root's home over SSH), lists everything
    and still exits 1 ("Failed to restore initial working directory")."""
    path = check_path("backup_path", backup_path)
    return Command(["env", "--chdir=/", "find", path, "-mindepth", "3", "-maxdepth", "3",
                    "-name", "backup.ini", "-exec", "cat", "{}", "+"], OS_USER)  # fmt: skip


def backup_directory(backup_path: str, backup_id: str) -> str:
    """Where a backup's files are in the catalog: <catalog>/YYYYMMDD/HHMMSS."""
    ts = datetime.strptime(check_backup_id(backup_id), TIMESTAMP_FORMAT)
    return f"{check_path('backup_path', backup_path).rstrip('/')}/{ts:%Y%m%d}/{ts:%H%M%S}"
