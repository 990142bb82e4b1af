"""Reading a node's server log over SSH: incrementally for monitoring, by pages for the viewer.

Every remote call goes through `console.executor.run_command` (audited, under a host-side
timeout) with a fixed argv of coreutils and grep, never a shell: `stat` for a file's inode and
size, `dd` to read a byte range, `grep -F` to search. Offsets are bytes and stay exact: the
executor decodes output as UTF-8 with replacement, which loses the count of invalid bytes, so
a range that is not valid UTF-8 is read again with `od` as hex. Returned lines show invalid
bytes as U+FFFD and have credentials masked (`console.executor.redact`), as the audit's copy
of the output has. Pass `sudo_user` ("postgres", "mysql") when the SSH user cannot read the
log itself.

`read_new` follows a log from a `LogCursor` (path, inode, offset), which the caller stores
between calls. Handled:
- growth: only complete lines are returned; a partial last line is left for the next call;
- truncation in place (same inode, size below the offset): restart at 0 (a file truncated
  and grown past the offset again between two calls is not noticed);
- rotation by rename (logrotate's default `create`, MariaDB with `FLUSH ERROR LOGS`): the
  cursor's inode is looked for at `<path>.1`, its remainder is read, then reading moves on to
  the new file at 0. Until the new file has content the writer may still append to the old
  one, so the cursor stays there; once it has, the old file is over and a partial last line
  of it counts as a line;
- a writer that moved to another file name (PostgreSQL's logging_collector with a dated
  log_filename): pass `current_path` (from `pg_current_logfile()`); the cursor's file is
  finished by inode at its old name, then `current_path` is read from 0.
Not handled, lines lost: a file deleted and recreated when the filesystem gives the new one
the same inode number (it looks like the same file: read on from the offset, or from 0 if it
is smaller), `copytruncate` rotation (the copy has a new inode: reading restarts
at 0 of the truncated file), a rotated file already compressed or moved elsewhere, and a
rotation between our `stat` and `dd` of the same call (a window of milliseconds). A line
longer than `max_bytes` is returned in pieces, so reading always makes progress.
"""

import re
from collections import Counter, deque
from dataclasses import dataclass, field, replace

from console.errors import ExpectedFailure
from console.executor import run_command
from console.executor.redact import redact

DEFAULT_PAGE = 64 * 1024
MAX_TERM = 200
_MISSING = "No such file or directory"


class LogUnreadable(ExpectedFailure):
    """The log file is missing, unreadable, or the request about it is invalid."""


@dataclass(frozen=True)
class LogCursor:
    """Where reading a log stopped: `offset` bytes into the file `inode` found at `path`.
    `inode=None` means not read yet: the first call adopts the file at `path`."""

    path: str
    inode: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class _File:
    path: str
    inode: int
    size: int


@dataclass(frozen=True)
class _Call:
    """How to reach the node, passed to every remote call."""

    node: object
    sudo_user: str | None
    job: object
    actor: object
    timeout: float | None = None  # None: the executor's default

    def run(self, argv: list[str], check: bool = True, ok_exits=(0,)):
        return run_command(
            self.node,
            argv,
            sudo_user=self.sudo_user,
            job=self.job,
            actor=self.actor,
            check=check,
            timeout=self.timeout,
            keep_output=False,  # log lines may hold personal data: the audit keeps their size
            ok_exits=ok_exits,
        )


def _stat(call: _Call, paths: list[str]) -> dict[str, _File]:
    """The files among `paths` that exist, by path (one remote call). Symlinks are followed."""
    result = call.run(["stat", "-L", "-c", "%i %s %n", "--", *paths], check=False)
    problems = [e for e in result.stderr.splitlines() if e.strip() and _MISSING not in e]
    if result.exit_code != 0 and problems:
        raise LogUnreadable(f"cannot stat {', '.join(paths)}: {problems[-1][-300:]}")
    files = {}
    for line in result.stdout.splitlines():
        inode, size, path = line.split(" ", 2)
        files[path] = _File(path, int(inode), int(size))
    return files


def _read(call: _Call, path: str, offset: int, length: int) -> bytes:
    """Bytes [offset, offset+length) of `path`, fewer at its end (one remote call, two when
    the text is not valid UTF-8)."""
    if length <= 0:
        return b""
    argv = ["dd", f"if={path}", "iflag=skip_bytes,count_bytes", f"skip={offset}"]
    result = call.run([*argv, f"count={length}", "bs=65536", "status=none"], check=False)
    if result.exit_code != 0:
        raise LogUnreadable(f"cannot read {path}: {result.stderr.strip()[-300:]}")
    if "\ufffd" not in result.stdout:  # valid UTF-8: its encoding is the bytes read
        return result.stdout.encode("utf-8")
    # Invalid bytes were replaced, so their count is lost: read the range again as hex. The
    # audit cannot mask a credential in hex, so this is only the fallback.
    argv = ["od", "-A", "n", "-v", "-t", "x1", "-j", str(offset), "-N", str(length), "--", path]
    result = call.run(argv, check=False)
    if result.exit_code != 0:
        if "skip past end" in result.stderr:  # truncated since our stat: the next call sees it
            return b""
        raise LogUnreadable(f"cannot read {path}: {result.stderr.strip()[-300:]}")
    return bytes.fromhex(result.stdout)


def _decode(raw: bytes) -> list[str]:
    """Lines of text, invalid bytes as U+FFFD, credentials masked (`PASSWORD '...'` in a
    logged statement) as the executor masks them in the audit."""
    return [redact(line.decode("utf-8", "replace").removesuffix("\r")) for line in raw.split(b"\n")]


def _split(data: bytes, *, limited: bool, final: bool) -> tuple[list[str], int]:
    """The complete lines in `data` and how many bytes they use. A trailing piece without a
    newline waits for the next call, unless the file is over (`final`) or the read was cut
    by the byte budget with no newline at all (a line longer than the budget)."""
    end = data.rfind(b"\n") + 1
    if end == 0 and data and (final or limited):
        end = len(data)
    elif final and end < len(data):
        end = len(data)
    if end == 0:
        return [], 0
    body = data[:end]
    return _decode(body[:-1] if body.endswith(b"\n") else body), end


def _advance(call: _Call, file: _File, cursor: LogCursor, budget: int, *, final: bool):
    """Read `file` from the cursor's offset within `budget`: (cursor, lines, bytes read)."""
    remaining = file.size - cursor.offset
    length = min(budget, remaining)
    data = _read(call, file.path, cursor.offset, length)
    at_end = length == remaining and len(data) == length
    lines, used = _split(data, limited=budget < remaining, final=final and at_end)
    return replace(cursor, offset=cursor.offset + used), lines, len(data)


def read_new(
    node,
    cursor: LogCursor,
    *,
    max_bytes: int,
    job=None,
    actor=None,
    sudo_user: str | None = None,
    current_path: str | None = None,
) -> tuple[LogCursor, list[str]]:
    """The complete lines written to the log since `cursor`, and the cursor to store next.

    Guarantees: at most `max_bytes` bytes are read in this call (two remote calls, each
    audited; up to four after a rotation, the extra `stat` failing when no rotated file is
    found); the returned cursor advances exactly past the returned lines, so calling again
    with it neither loses nor repeats a line across growth and the rotations listed in the
    module docstring. Raises LogUnreadable when no file is found to read.
    """
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    call = _Call(node, sudo_user, job, actor)
    path = current_path or cursor.path
    current = _stat(call, [path]).get(path)
    if cursor.inode is None:
        if current is None:
            raise LogUnreadable(f"no log file at {path}")
        offset = cursor.offset if cursor.offset <= current.size else 0
        cursor = LogCursor(path, current.inode, offset)
    if current is not None and current.inode == cursor.inode:
        if current.size < cursor.offset:  # truncated in place
            cursor = replace(cursor, offset=0)
        cursor, lines, _ = _advance(
            call, current, replace(cursor, path=path), max_bytes, final=False
        )
        return cursor, lines
    old_name = cursor.path if cursor.path != path else f"{path}.1"
    old = _stat(call, [old_name]).get(old_name)
    if old is not None and old.inode != cursor.inode:
        old = None  # rotated further, or deleted: what was left of it is lost
    return _after_rotation(call, cursor, current, old, max_bytes)


def _after_rotation(
    call: _Call, cursor: LogCursor, current: _File | None, old: _File | None, budget: int
) -> tuple[LogCursor, list[str]]:
    """The file at the log's path is not the cursor's: finish the cursor's file where it was
    moved (`old`), then start the new one (`current`) at 0 once the writer has moved to it."""
    moved_on = current is not None and current.size > 0
    lines: list[str] = []
    if old is not None:
        if cursor.offset > old.size:
            cursor = replace(cursor, offset=0)
        cursor, lines, used = _advance(call, old, cursor, budget, final=moved_on)
        budget -= used
        if cursor.offset < old.size or not moved_on or budget <= 0:
            return cursor, lines
    if current is None:
        if old is None:
            raise LogUnreadable(f"no log file at {cursor.path}")
        return cursor, lines
    cursor = LogCursor(current.path, current.inode, 0)
    cursor, more, _ = _advance(call, current, cursor, budget, final=False)
    return cursor, lines + more


# --- Classification (pure) -------------------------------------------------------------------

KINDS = ("error", "fatal", "panic", "auth_failure")
# PostgreSQL: the severity comes after log_line_prefix, followed by a colon and two spaces.
_PG_SEVERITY = re.compile(
    r"\b(DEBUG[1-5]|INFO|NOTICE|WARNING|ERROR|LOG|FATAL|PANIC|DETAIL|HINT|QUERY|CONTEXT|"
    r"LOCATION|STATEMENT):  "
)
_PG_AUTH = ("authentication failed for user", "no pg_hba.conf entry", "pg_hba.conf rejects")
# MariaDB pads the hour with a space, not a zero: "2026-11-26  0:29:42 25 [Warning] …"
_MY_LEVEL = re.compile(r"^\S+(?: +\S+)? +\d+ \[(ERROR|Warning|Note|System)\] ")
_MY_AUTH = "Access denied for user"


@dataclass(frozen=True)
class LogLine:
    """A counted line and its kinds: ("fatal", "auth_failure") for a refused login."""

    text: str
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class LogSummary:
    """Counts per kind (`KINDS`) and the last classified lines, oldest first."""

    counts: dict[str, int] = field(default_factory=dict)
    recent: list[LogLine] = field(default_factory=list)


def line_kinds(line: str, flavor: str) -> tuple[str, ...]:
    """The kinds of one log line: "postgresql" (severity after log_line_prefix, English
    messages) or "mariadb" (`[ERROR]`, `Access denied for user`). Continuation lines
    (a tab first) and other severities have none."""
    kinds: list[str] = []
    if flavor not in ("postgresql", "mariadb"):
        raise ValueError(f"unknown log flavor {flavor!r}")
    if line.startswith("\t"):  # the rest of a multi-line message (DETAIL, a statement)
        return ()
    if flavor == "postgresql":
        match = _PG_SEVERITY.search(line)
        severity = match.group(1) if match else ""
        if severity in ("ERROR", "FATAL", "PANIC"):
            kinds.append(severity.lower())
        if severity == "FATAL" and any(s in line[match.end() :] for s in _PG_AUTH):
            kinds.append("auth_failure")
    else:
        match = _MY_LEVEL.match(line)
        if match and match.group(1) == "ERROR":
            kinds.append("error")
        if match and _MY_AUTH in line[match.end() :]:
            kinds.append("auth_failure")
    return tuple(kinds)


def classify(lines: list[str], flavor: str, *, keep: int = 50, max_line: int = 2000) -> LogSummary:
    """Count ERROR, FATAL, PANIC and authentication failures in `lines` and keep the last
    `keep` such lines (each cut to `max_line` characters). Every kind is in `counts`."""
    counts = Counter({kind: 0 for kind in KINDS})
    recent: deque[LogLine] = deque(maxlen=keep)
    for line in lines:
        kinds = line_kinds(line, flavor)
        if kinds:
            counts.update(kinds)
            recent.append(LogLine(line[:max_line], kinds))
    return LogSummary(dict(counts), list(recent))


# --- The viewer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LogPage:
    """Lines of `path` as (byte offset, text), oldest first, from `start` to `end`. The
    previous (older) page is `page(..., before_offset=start)`; `at_start` when there is none."""

    path: str
    start: int
    end: int
    size: int
    lines: list[tuple[int, str]]

    @property
    def at_start(self) -> bool:
        return self.start == 0


def page(
    node,
    path: str,
    *,
    before_offset: int | None = None,
    size: int = DEFAULT_PAGE,
    search: str | None = None,
    job=None,
    actor=None,
    sudo_user: str | None = None,
    timeout: float | None = None,
) -> LogPage:
    """The whole lines within the `size` bytes before `before_offset` (the end of the file by
    default). With `search`, only the lines of that window containing it (a fixed string,
    case-insensitive), so paging backwards pages through the matches. Two remote calls."""
    if size <= 0:
        raise ValueError("size must be positive")
    needle = _valid_term(search).casefold() if search is not None else None
    call = _Call(node, sudo_user, job, actor, timeout)
    file = _stat(call, [path]).get(path)
    if file is None:
        raise LogUnreadable(f"no log file at {path}")
    end = file.size if before_offset is None else max(0, min(before_offset, file.size))
    start = max(0, end - size)
    lead = 1 if start > 0 else 0  # one byte more, to see whether `start` begins a line
    data = _read(call, path, start - lead, end - start + lead)
    cut = data.find(b"\n") + 1 if lead else 0  # leave a line cut by the window to the older page
    if cut == 0 or cut >= len(data):  # a line longer than the page: show its piece
        cut = lead
    body = data[cut:]
    lines, offset = [], start - lead + cut
    for raw in body.split(b"\n")[: -1 if body.endswith(b"\n") else None]:
        text = _decode(raw)[0]
        if needle is None or needle in text.casefold():
            lines.append((offset, text))
        offset += len(raw) + 1
    return LogPage(path, start - lead + cut, start - lead + len(data), file.size, lines)


def search(
    node,
    path: str,
    term: str,
    *,
    max_matches: int = 200,
    job=None,
    actor=None,
    sudo_user: str | None = None,
    timeout: float | None = None,
) -> list[tuple[int, int, str]]:
    """The first `max_matches` lines of the whole file containing `term` (a fixed string,
    case-insensitive), as (line number, byte offset, text). `term` reaches grep as one argv
    element after `-e`, so it is never a pattern, an option or shell text. grep exits 1 when
    nothing matches: an answer, audited as succeeded (exit 2 is a failure)."""
    call = _Call(node, sudo_user, job, actor, timeout)
    argv = ["grep", "-a", "-i", "-n", "-b", "-F", "-m", str(max_matches), "-e", _valid_term(term)]
    result = call.run([*argv, "--", path], check=False, ok_exits=(0, 1))
    if result.exit_code not in (0, 1):
        raise LogUnreadable(f"cannot search {path}: {result.stderr.strip()[-300:]}")
    matches = []
    for line in result.stdout.splitlines():
        number, offset, text = line.split(":", 2)
        matches.append((int(number), int(offset), redact(text)))
    return matches


def _valid_term(term: str | None) -> str:
    if not term or "\n" in term or "\r" in term or "\x00" in term or len(term) > MAX_TERM:
        raise LogUnreadable(f"a search term is one line of 1 to {MAX_TERM} characters")
    return term


def cursor_at_end(
    node, path: str, *, job=None, actor=None, sudo_user: str | None = None
) -> LogCursor:
    """A cursor at the current end of `path`, for following a log from now on (one call)."""
    file = _stat(_Call(node, sudo_user, job, actor), [path]).get(path)
    if file is None:
        raise LogUnreadable(f"no log file at {path}")
    return LogCursor(path, file.inode, file.size)
