"""pg_rman 1.3.x: argv builders, input checks and parsers (pure: no network, no database).

Every builder checks its input first and raises DriverInputError naming the field, so nothing
malformed ever reaches an argv. Option spellings are those of `pg_rman --help` (1.3.19); the
argv shapes are those of the captured runs in tests/backups/fixtures/pg_rman/, which the
tests rebuild exactly. pg_rman has no machine-readable output: the parsers read its `show`
tables (fixed columns, sizes rounded by its pretty_size), the `show DATE` ini dump (exact
bytes, the same format as each backup's backup.ini), and the INFO/WARNING/ERROR/DETAIL/HINT
lines it writes to stderr.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime

from backups.drivers.base import Command, DriverInputError, EngineError, Message, ParsedBackup

PG_RMAN = "pg_rman"
OS_USER = "postgres"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"  # a backup's id: its start time, to the second
BACKUP_MODES = ("full", "incremental", "archive")
TARGET_ACTIONS = ("pause", "promote", "shutdown")
STATUSES = ("ok", "done", "running", "error", "deleting", "deleted", "corrupt")

# Exit codes of pg_rman 1.3 (pgut.h and pg_rman.h), with what they mean for the person.
EXIT_CODES: dict[int, tuple[str, str]] = {
    0: ("SUCCESS", "pg_rman succeeded"),
    1: ("HELP", "pg_rman printed its usage or version and did nothing"),
    2: ("ERROR", "pg_rman refused the request"),
    10: ("ERROR_SYSTEM", "pg_rman hit a system error (a file or directory could not be used)"),
    11: ("ERROR_NOMEM", "pg_rman ran out of memory"),
    12: ("ERROR_ARGS", "pg_rman refused its arguments"),
    13: ("ERROR_INTERRUPTED", "pg_rman was interrupted before it finished"),
    14: ("ERROR_PG_COMMAND", "a statement pg_rman sent to PostgreSQL failed"),
    15: ("ERROR_PG_CONNECT", "pg_rman could not connect to PostgreSQL"),
    20: ("ERROR_ARCHIVE_FAILED", "WAL archiving failed during the backup"),
    21: ("ERROR_NO_BACKUP", "there is no validated backup usable for this request"),
    22: ("ERROR_CORRUPTED", "the backup catalog is corrupted"),
    23: ("ERROR_ALREADY_RUNNING", "another pg_rman is already working on this catalog"),
    24: ("ERROR_PG_INCOMPATIBLE", "this pg_rman does not match the PostgreSQL server"),
    25: ("ERROR_PG_RUNNING", "PostgreSQL is running on the target: a restore needs it stopped"),
    26: ("ERROR_PID_BROKEN", "the server's postmaster.pid file is broken"),
    # Not pg_rman's: what the host's command runner says when there is no pg_rman to run.
    126: ("NOT_EXECUTABLE", "pg_rman cannot be executed on this host"),
    127: ("NOT_INSTALLED", "pg_rman is not installed on this host (command not found)"),
}

# pg_rman's own ERROR texts that deserve a plainer summary than their exit code's.
_KNOWN_ERRORS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"backup catalog already exist"),
     "the catalog directory already holds a catalog (init needs an empty directory)"),
    (re.compile(r"cannot take an incremental backup"),
     "an incremental backup needs a validated full backup on the current timeline"),
    (re.compile(r"could not get list of backup"),
     "the backup catalog could not be read (missing, not initialised or not readable)"),
    (re.compile(r"could not create recovery\.conf or add recovery-related options"),
     "pg_rman refused the recovery target"),
    (re.compile(r"must be an absolute path"), "a path given to pg_rman is not absolute"),
]  # fmt: skip

# How sudo and coreutils timeout (the executor's wrappers) say there is no pg_rman to run.
_NOT_FOUND_RE = re.compile(
    r"^(sudo: pg_rman: command not found|timeout: failed to run command .pg_rman.: No such file)",
    re.MULTILINE,
)
_TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_DATE_PREFIX_RE = re.compile(r"\d{4}(-\d{2}(-\d{2}( \d{2}(:\d{2}(:\d{2})?)?)?)?)?")
_TARGET_TIME_RE = re.compile(
    r"(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?P<frac>\.\d{1,6})?"
    r"(?P<zone> ?(Z|UTC|[+-]\d{2}(:?\d{2})?))?"
)
_MESSAGE_RE = re.compile(r"(DEBUG|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT): (.*)")
_SIZE_RE = re.compile(r"(\d+)(B|kB|MB|GB|TB|PB)")
_SIZE_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}
_MODES = {"FULL": "full", "INCR": "incremental", "INCREMENTAL": "incremental",
          "ARCH": "archive", "ARCHIVE": "archive"}  # fmt: skip


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


# --- Parsers -----------------------------------------------------------------------------------


def parse_size(text: str) -> int | None:
    """A size as pg_rman prints it ("49MB", "3072kB", "1481B"; "----" for none) in bytes.
    pg_rman divides by 1000 while the number exceeds 9999 and truncates, so this is a lower
    bound: "23MB" is 23,000,000 to 23,999,999 bytes. `show DATE` gives exact figures."""
    text = text.strip()
    if text in ("----", ""):
        return None
    m = _SIZE_RE.fullmatch(text)
    if not m:
        raise ValueError(f"not a pg_rman size: {text!r}")
    return int(m[1]) * _SIZE_UNITS[m[2]]


def _time(text: str) -> datetime | None:
    text = text.strip().strip("'")
    return datetime.strptime(text, TIMESTAMP_FORMAT) if _TIMESTAMP_RE.fullmatch(text) else None


def parse_show(stdout: str) -> list[ParsedBackup]:
    """`show` or `show detail` tables (newest first, as printed), or the ini dump `show DATE`
    prints for an exact start time. An empty output (no backup) gives []."""
    if stdout.lstrip().startswith("# configuration"):
        return parse_backup_inis(stdout)
    rows = []
    detail = False
    for line in stdout.splitlines():
        if not line.strip() or line.startswith("="):
            continue
        if line.startswith(" StartTime"):
            detail = "ArcLog" in line
            continue
        # Fixed columns for the times (an unfinished backup has no end time), words after.
        started, ended, rest = line[:19], line[21:40], line[40:].split()
        if detail:
            mode, data, arclog, srvlog, total, compressed, tli, parent, status = rest
        else:
            mode, total, tli, status = rest
            data = arclog = srvlog = compressed = parent = None
        rows.append(
            ParsedBackup(
                backup_id=started.strip(),
                mode=_MODES[mode],
                status=status.lower(),
                started=_time(started),
                ended=_time(ended),
                timeline=int(tli),
                parent_timeline=int(parent) if parent is not None else None,
                data_bytes=parse_size(data) if data is not None else None,
                arclog_bytes=parse_size(arclog) if arclog is not None else None,
                srvlog_bytes=parse_size(srvlog) if srvlog is not None else None,
                written_bytes=parse_size(total),
                compressed={"true": True, "false": False}.get(compressed or ""),
                exact=False,
            )
        )
    return rows


def parse_ini(text: str) -> dict[str, str]:
    """KEY=VALUE lines (quotes removed), comments and blank lines skipped: backup.ini,
    pg_rman.ini, system_identifier."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _int(values: dict, key: str) -> int | None:
    return int(values[key]) if values.get(key, "") != "" else None


def parse_backup_ini(text: str) -> ParsedBackup:
    """One backup.ini (or the `show DATE` dump): exact bytes, LSNs, recovery point."""
    v = parse_ini(text)
    started = _time(v.get("START_TIME", ""))
    if started is None:
        raise ValueError("backup.ini without START_TIME")
    recovery_xid = _int(v, "RECOVERY_XID")
    return ParsedBackup(
        backup_id=v["START_TIME"],
        mode=_MODES[v["BACKUP_MODE"].upper()],
        status=v["STATUS"].lower(),
        started=started,
        ended=_time(v.get("END_TIME", "")),
        timeline=_int(v, "TIMELINEID"),
        start_lsn=v.get("START_LSN", "").upper(),
        stop_lsn=v.get("STOP_LSN", "").upper(),
        data_bytes=_int(v, "READ_DATA_BYTES"),
        arclog_bytes=_int(v, "READ_ARCLOG_BYTES"),
        srvlog_bytes=_int(v, "READ_SRVLOG_BYTES"),
        written_bytes=_int(v, "WRITE_BYTES"),
        database_bytes=_int(v, "TOTAL_DATA_BYTES"),
        compressed=v.get("COMPRESS_DATA") == "true",
        with_serverlog=v.get("WITH_SERVERLOG") == "true",
        recovery_xid=recovery_xid or None,  # 0: the backup never reached a recovery point
        recovery_time=_time(v.get("RECOVERY_TIME", "")),
        exact=True,
    )


def parse_backup_inis(text: str) -> list[ParsedBackup]:
    """Several backup.ini files printed one after the other (each opens '# configuration')."""
    chunks = re.split(r"(?m)^(?=# configuration$)", text)
    return [parse_backup_ini(chunk) for chunk in chunks if "START_TIME=" in chunk]


def parse_messages(stderr: str) -> list[Message]:
    """pg_rman's message lines in order; tab-indented lines continue the previous message.
    Other lines (progress, the --verbose config dump) are not messages and are skipped."""
    messages: list[Message] = []
    for line in stderr.replace("\r", "\n").split("\n"):
        m = _MESSAGE_RE.fullmatch(line)
        if m:
            messages.append(Message(m[1], m[2]))
        elif line.startswith("\t") and messages:
            last = messages[-1]
            messages[-1] = Message(last.level, f"{last.text} {line.strip()}")
    return messages


def engine_error(exit_code: int, stderr: str) -> EngineError | None:
    """None for exit 0; else the exit code's meaning and pg_rman's ERROR with its DETAIL and
    HINT (the ones that follow it), and every WARNING."""
    if exit_code == 0:
        return None
    code, summary = EXIT_CODES.get(exit_code, ("UNKNOWN", f"pg_rman exited with code {exit_code}"))
    if _NOT_FOUND_RE.search(stderr):  # sudo exits 1, timeout 127: neither is pg_rman's
        code, summary = EXIT_CODES[127]
    messages = parse_messages(stderr)
    error = detail = hint = ""
    seen_error = False
    for message in messages:
        if message.level in ("ERROR", "FATAL", "PANIC") and not seen_error:
            error, seen_error = message.text, True
        elif seen_error and message.level == "DETAIL" and not detail:
            detail = message.text
        elif seen_error and message.level == "HINT" and not hint:
            hint = message.text
    for pattern, plain in _KNOWN_ERRORS:
        if error and pattern.search(error):
            summary = plain
            break
    warnings = tuple(m.text for m in messages if m.level == "WARNING")
    if not summary.startswith(PG_RMAN):  # a sentence, but pg_rman is always lowercase
        summary = summary[0].upper() + summary[1:]
    return EngineError(exit_code, code, summary, error, detail, hint, warnings)


@dataclass(frozen=True)
class Progress:
    phase: str  # "database files", "archived WAL files", "server log files"
    processed: int
    total: int
    skipped: int


_PROGRESS_RE = re.compile(r"Processed (\d+) of (\d+) files, skipped (\d+)")


def parse_progress(stderr: str) -> list[Progress]:
    """The last `--progress` count of each copy phase (updates are separated by \\r)."""
    phases: dict[str, Progress] = {}
    phase = ""
    for line in stderr.split("\n"):
        m = _MESSAGE_RE.fullmatch(line)
        if m and m[2].startswith("copying "):
            phase = m[2].removeprefix("copying ")
            continue
        counts = _PROGRESS_RE.findall(line)
        if counts and phase:
            processed, total, skipped = (int(n) for n in counts[-1])
            phases[phase] = Progress(phase, processed, total, skipped)
    return list(phases.values())


def parse_validate(stderr: str) -> dict[str, str]:
    """{backup id: "ok" | "corrupt"} for each backup this `validate` checked."""
    results = {}
    for m in re.finditer(r'backup "([^"]+)" is (valid|corrupted)', stderr):
        results[m[1]] = "ok" if m[2] == "valid" else "corrupt"
    return results


@dataclass(frozen=True)
class DeleteResult:
    deleted: list[str] = field(default_factory=list)  # or "would delete" for --check
    kept: dict[str, str] = field(default_factory=dict)  # id -> pg_rman's reason


def parse_delete(stderr: str) -> DeleteResult:
    """`delete` (and its --check): the backups marked deleted, and those it refused to."""
    result = DeleteResult()
    messages = parse_messages(stderr)
    for i, message in enumerate(messages):
        m = re.match(r'(?:will )?delete the backup with start time: "([^"]+)"', message.text)
        if m:
            result.deleted.append(m[1])
        m = re.match(r'cannot delete backup with start time "([^"]+)"', message.text)
        if m:
            following = messages[i + 1] if i + 1 < len(messages) else None
            reason = following.text if following and following.level == "DETAIL" else ""
            result.kept[m[1]] = reason
    return result


def parse_purged(stderr: str) -> list[str]:
    """`purge`: the DELETED backups whose files were removed."""
    return re.findall(r'DELETED backup "([^"]+)" is purged', stderr)


@dataclass(frozen=True)
class RetentionResult:
    """What a backup with --keep-* options removed after it finished."""

    wal_files: list[str] = field(default_factory=list)
    srvlog_files: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)


def parse_retention(stderr: str) -> RetentionResult:
    result = RetentionResult()
    current: list[str] | None = None
    for message in parse_messages(stderr):
        text = message.text
        if text.startswith("start deleting old archived WAL files"):
            current = result.wal_files
        elif text.startswith("start deleting old server files"):
            current = result.srvlog_files
        elif text.startswith("start deleting old backup"):
            current = None
        elif (m := re.fullmatch(r'delete "([^"]+)"', text)) and current is not None:
            current.append(m[1])
        elif m := re.fullmatch(r'delete the backup with start time: "([^"]+)"', text):
            result.backups.append(m[1])
    return result


@dataclass(frozen=True)
class RestorePlan:
    """What `restore` (or `restore --check`) says it uses."""

    timeline: int | None
    base_backup: str  # the full backup restored first
    incremental_backups: list[str]
    wal_backups: list[str]  # backups whose archived WAL is restored
    wal_segments: list[tuple[str, str]]  # (first, last) ranges, --check only
    complete: bool  # "restore complete" was printed
    hint: str


def parse_restore(stdout: str, stderr: str) -> RestorePlan:
    timeline = base = hint = ""
    incremental, wal = [], []
    for message in parse_messages(stderr):
        text = message.text
        if m := re.search(r"as recovery target: (\d+)", text):
            timeline = m[1]
        elif m := re.search(r'can be used as base in recovery: "([^"]+)"', text):
            base = m[1]
        elif m := re.fullmatch(r'restoring database files from the incremental mode backup "([^"]+)"', text):  # fmt: skip # noqa: E501
            incremental.append(m[1])
        elif m := re.fullmatch(r'restoring WAL files from backup "([^"]+)"', text):
            wal.append(m[1])
        elif message.level == "HINT":
            hint = text
    segments = []
    for line in stdout.splitlines():
        parts = [p.strip() for p in line.split(" - ")]
        if parts and re.fullmatch(r"[0-9A-F]{24}", parts[0]):
            segments.append((parts[0], parts[-1]))
    return RestorePlan(
        timeline=int(timeline) if timeline else None,
        base_backup=base,
        incremental_backups=incremental,
        wal_backups=wal,
        wal_segments=segments,
        complete=any(m.text == "restore complete" for m in parse_messages(stderr)),
        hint=hint,
    )


def parse_init(stderr: str) -> dict[str, str]:
    """`init`: the ARCLOG_PATH and SRVLOG_PATH pg_rman wrote into pg_rman.ini."""
    return dict(re.findall(r"INFO: (ARCLOG_PATH|SRVLOG_PATH) is set to '([^']*)'", stderr))


def parse_version(text: str) -> str:
    """`pg_rman --version` (printed on stderr): "1.3.19"."""
    m = re.search(r"pg_rman (\d+(?:\.\d+)+)", text)
    return m[1] if m else ""


_NOT_COPIED = 2**64 - 1  # file_*.txt size of a file this backup did not copy


def parse_file_list(text: str) -> list[tuple[str, int | None]]:
    """A backup's file_database.txt / file_arclog.txt / file_srvlog.txt: (path, bytes), None
    for a file this backup did not copy (pg_rman writes 2^64-1)."""
    files = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 6:
            size = int(parts[-5])
            files.append((" ".join(parts[:-6]) or parts[0], None if size == _NOT_COPIED else size))
    return files


def parse_timeline_history(text: str) -> list[tuple[int, str]]:
    """A timeline history file: (parent timeline, switch LSN) per line."""
    rows = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].strip().isdigit():
            rows.append((int(parts[0]), parts[1].strip()))
    return rows
