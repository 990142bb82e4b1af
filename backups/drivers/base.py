"""What every backup engine driver speaks: commands to run, backups parsed, errors explained.

A driver module is pure (no network, no database): it turns validated input into `Command`s
(an argv list and the OS user to run it as) and turns the engine's output into `ParsedBackup`s
and `EngineError`s. backups.actions runs the commands through console.executor and stores what
the parsers return. pg_rman (backups/drivers/pg_rman/) is the first; pgBackRest follows the
same shapes.
"""

import shlex
from dataclasses import dataclass, field
from datetime import datetime


class DriverInputError(ValueError):
    """Input refused before any argv is built. `field` names the form field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Command:
    """One engine invocation: an argv list (never a shell string) and the OS user it runs as."""

    argv: list[str]
    os_user: str = "postgres"

    def __post_init__(self):
        if isinstance(self.argv, (str, bytes)) or not all(isinstance(a, str) for a in self.argv):
            raise TypeError("argv must be a list of str")

    def display(self) -> str:
        """The command as a person would type it (for logs and pages only; never executed)."""
        return shlex.join(self.argv)


@dataclass(frozen=True)
class ParsedBackup:
    """One backup as the engine lists it. Sizes are bytes; `exact` is False when they come
    from a rounded listing (pg_rman's `show` tables print 49MB for 49,760,228 bytes)."""

    backup_id: str  # pg_rman: start time "YYYY-MM-DD HH:MM:SS"; pgBackRest: the label
    mode: str  # lowercase engine mode: full, incremental, archive (pg_rman); full, diff, incr
    status: str  # lowercase engine status: ok, done, running, error, deleting, deleted, corrupt
    started: datetime | None = None  # naive, in the engine host's time zone
    ended: datetime | None = None
    timeline: int | None = None
    parent_timeline: int | None = None
    start_lsn: str = ""
    stop_lsn: str = ""
    data_bytes: int | None = None  # data files read (for an incremental: the changed ones)
    arclog_bytes: int | None = None  # archived WAL read
    srvlog_bytes: int | None = None  # server log files read
    written_bytes: int | None = None  # what landed in the catalog (after compression)
    database_bytes: int | None = None  # the whole data directory at backup time
    compressed: bool | None = None
    with_serverlog: bool | None = None
    recovery_xid: int | None = None
    recovery_time: datetime | None = None  # the latest point this backup alone restores to
    exact: bool = False

    @property
    def total_bytes(self) -> int | None:
        """Data, WAL and server log read, together (None when none of them is known)."""
        parts = [b for b in (self.data_bytes, self.arclog_bytes, self.srvlog_bytes) if b]
        if self.data_bytes is None and self.arclog_bytes is None and self.srvlog_bytes is None:
            return None
        return sum(parts)


@dataclass(frozen=True)
class Message:
    """One message line of the engine (`ERROR: ...`), with its continuation lines joined."""

    level: str  # INFO, NOTICE, WARNING, ERROR, DETAIL, HINT, DEBUG, LOG
    text: str


@dataclass(frozen=True)
class EngineError:
    """A failed engine command explained for a person: what the exit code means, and the
    engine's own ERROR, DETAIL and HINT lines."""

    exit_code: int
    code: str  # the engine's name for the exit code, e.g. ERROR_PG_RUNNING
    summary: str  # what the exit code means, in plain words
    error: str = ""
    detail: str = ""
    hint: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)
    engine_label: str = "pg_rman"

    @property
    def message(self) -> str:
        """The one paragraph shown to the person and stored on the run."""
        parts = [self.summary]
        if self.error:
            parts.append(f"{self.engine_label}: {self.error}")
        if self.detail:
            parts.append(self.detail)
        if self.hint:
            parts.append(f"Hint: {self.hint}")
        return " ".join(p if p.endswith(".") else p + "." for p in parts)
