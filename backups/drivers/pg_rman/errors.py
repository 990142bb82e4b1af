"""What a failed pg_rman 1.3.x run means for the person (pure: no network, no database).

pg_rman's exit codes (pgut.h, pg_rman.h) and the ERROR texts that deserve a plainer summary,
turned with its ERROR/DETAIL/HINT lines (parsers.parse_messages) into an EngineError. Separate
from the parsers of its normal output: this is the one place a run's failure is worded.
"""

import re

from backups.drivers.base import EngineError
from backups.drivers.pg_rman.commands import PG_RMAN
from backups.drivers.pg_rman.parsers import parse_messages

__all__ = ["EXIT_CODES", "engine_error"]

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
