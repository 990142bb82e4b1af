"""Parsers of what pg_rman 1.3.x prints (pure: no network, no database).

pg_rman has no machine-readable output: these read its `show` tables (fixed columns, sizes
rounded by its pretty_size), the `show DATE` ini dump (exact bytes, the same format as each
backup's backup.ini), the INFO/WARNING/ERROR/DETAIL/HINT lines it writes to stderr (and what
validate, delete, purge, retention and restore say there), and the catalog's own files.
Separate from the builders (commands.py): they are tested against the captured outputs alone.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime

from backups.drivers.base import Message, ParsedBackup
from backups.drivers.pg_rman.commands import _TIMESTAMP_RE, TIMESTAMP_FORMAT

__all__ = [
    "DeleteResult",
    "Progress",
    "RestorePlan",
    "RetentionResult",
    "parse_backup_ini",
    "parse_backup_inis",
    "parse_delete",
    "parse_file_list",
    "parse_ini",
    "parse_init",
    "parse_messages",
    "parse_progress",
    "parse_purged",
    "parse_restore",
    "parse_retention",
    "parse_show",
    "parse_size",
    "parse_timeline_history",
    "parse_validate",
    "parse_version",
]

_MESSAGE_RE = re.compile(r"(DEBUG|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT): (.*)")
_SIZE_RE = re.compile(r"(\d+)(B|kB|MB|GB|TB|PB)")
_SIZE_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}
_MODES = {"FULL": "full", "INCR": "incremental", "INCREMENTAL": "incremental",
          "ARCH": "archive", "ARCHIVE": "archive"}  # fmt: skip


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
