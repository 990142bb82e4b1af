"""pgBackRest driver (pure: no network, no database), written for pgBackRest 2.45 (Debian 12).

Builders turn validated input into `Command`s: every setting the console relies on is passed on
the command line (`--config`, `--stanza`, `--repo1-path`, `--pg1-*`), so no global
/etc/pgbackrest.conf is read or written unless the catalog names it. Repository-only commands
(info, verify, expire) refuse `--pg1-*` options, and restore refuses `--pg1-port`: each builder
passes only what its command accepts. `--log-level-console=info` makes backup print its label;
`--log-level-file=off` keeps pgBackRest from needing /var/log/pgbackrest on the host.

Parsers read `info --output=json` into `RepoBackup`s (a `ParsedBackup` plus the chain it
depends on), `verify --verbose` into per-backup results, and log lines into messages;
`engine_error` maps an exit code (pgBackRest exits with its error code) and the ERROR/HINT lines
to a message for a person. pgBackRest's `verify` exits 0 even when it finds a damaged file: the
result is in its output (`status: error`, `backup: <label>, status: invalid`).
"""

import json
import re
import shlex
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from backups.drivers.base import Command, DriverInputError, EngineError, Message, ParsedBackup
from backups.drivers.pg_rman import check_path, check_positive_int, check_target_time

ENGINE_LABEL = "pgBackRest"
BINARY = "pgbackrest"
MODES = ("full", "diff", "incr")
TARGET_ACTIONS = ("pause", "promote", "shutdown")

# pgBackRest exits with the number of the error it raised (src/common/error/error.yaml).
EXIT_CODES: dict[int, tuple[str, str]] = {
    27: ("ConfigError", "pgBackRest's configuration is wrong (no database reachable with it)"),
    29: ("FormatError", "pgBackRest cannot read a value given to it (a time or a number)"),
    31: ("OptionInvalidError", "pgBackRest was given an option this command does not take"),
    32: ("OptionInvalidValueError", "pgBackRest was given an invalid option value"),
    37: ("OptionRequiredError", "A required pgBackRest option is missing"),
    38: ("PgRunningError", "PostgreSQL is running on the target: restore refused"),
    40: ("PathNotEmptyError", "The restore target directory is not empty"),
    41: ("FileOpenError", "pgBackRest could not open a file"),
    50: ("LockAcquireError", "Another pgBackRest command holds the stanza's lock"),
    55: ("FileMissingError", "The repository has no such stanza (was stanza-create run?)"),
    56: ("DbConnectError", "pgBackRest cannot connect to PostgreSQL"),
    62: ("StopError", "The stanza is stopped (pgbackrest stop)"),
    63: ("TermError", "pgBackRest was interrupted"),
    75: ("BackupSetInvalidError", "No such backup set in the repository"),
    82: ("ArchiveTimeoutError", "WAL was not archived in time: check archive_command"),
    87: ("ArchiveDisabledError", "WAL archiving is disabled (archive_mode / archive_command)"),
    103: ("RepoInvalidError", "The repository is invalid"),
}

_NOT_FOUND_RE = re.compile(r"sudo: pgbackrest: command not found|pgbackrest: (command )?not found")
_LOG_RE = re.compile(
    r"^(?:\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} P\d+\s+)?"
    r"(ERROR|WARN|INFO|DETAIL|DEBUG|TRACE|HINT): (?:\[(\d{3})\]: )?(.*)$"
)
_STANZA_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_LABEL_RE = re.compile(r"\d{8}-\d{6}F(?:_\d{8}-\d{6}[DI])?")
_NEW_LABEL_RE = re.compile(r"new backup label = (\S+)")
_VERIFY_BACKUP_RE = re.compile(
    r"backup: (\S+), status: ([\w-]+)(?:, total files checked: (\d+), total valid files: (\d+))?"
)
_VERIFY_INVALID_RE = re.compile(r"invalid (checksum|size|result|file) '([^']+)'")


def check_stanza(value: str, field_name: str = "stanza") -> str:
    """A stanza name: letters, digits, `_ . -`, not starting like an option."""
    if not isinstance(value, str) or not _STANZA_RE.fullmatch(value):
        raise DriverInputError(
            field_name, f"a stanza name is letters, digits, '_', '.', '-' (1-64): {value!r}."
        )
    return value


def check_label(value: str, field_name: str = "backup") -> str:
    """A backup label as pgBackRest names them: 20261126-000929F[_20261126-000946I|D]."""
    if not isinstance(value, str) or not _LABEL_RE.fullmatch(value):
        raise DriverInputError(
            field_name, f"not a pgBackRest backup label (like 20261126-000929F): {value!r}."
        )
    return value


@dataclass(frozen=True)
class Repository:
    """Where backups go: the repository path (repo1-path) and the stanza; `config` a
    pgbackrest.conf to read (empty: none at all, every setting on the command line);
    `lock_path` where the stanza's lock lives (default /tmp/pgbackrest, shared by every
    stanza on the host)."""

    path: str
    stanza: str
    config: str = ""
    lock_path: str = ""

    def __post_init__(self):
        check_path("path", self.path)
        check_stanza(self.stanza)
        if self.config:
            check_path("config", self.config)
        if self.lock_path:
            check_path("lock_path", self.lock_path)

    def options(self) -> list[str]:
        # Without a config file of its own, --no-config: /etc/pgbackrest.conf is never read.
        argv = [BINARY, f"--config={self.config}" if self.config else "--no-config"]
        argv += [f"--stanza={self.stanza}", f"--repo1-path={self.path}"]
        if self.lock_path:
            argv.append(f"--lock-path={self.lock_path}")
        return argv + ["--log-level-console=info", "--log-level-file=off"]


@dataclass(frozen=True)
class Instance:
    """The PostgreSQL server backed up: its data directory (pg1-path), port and unix socket
    directory (pgBackRest connects over the socket as the OS user)."""

    path: str
    port: int = 5432
    socket_path: str = ""

    def __post_init__(self):
        check_path("data_directory", self.path)
        check_positive_int("port", self.port, maximum=65535)
        if self.socket_path:
            check_path("socket_path", self.socket_path)

    def options(self) -> list[str]:
        argv = [f"--pg1-path={self.path}", f"--pg1-port={self.port}"]
        if self.socket_path:
            argv.append(f"--pg1-socket-path={self.socket_path}")
        return argv


@dataclass(frozen=True)
class Retention:
    """repo1-retention-full / -diff / -archive (counts of backups kept)."""

    full: int | None = None
    diff: int | None = None
    archive: int | None = None

    def options(self) -> list[str]:
        argv = []
        for name in ("full", "diff", "archive"):
            value = getattr(self, name)
            if value is not None:
                value = check_positive_int(f"retention_{name}", value, maximum=9_999_999)
                argv.append(f"--repo1-retention-{name}={value}")
        return argv


@dataclass(frozen=True)
class RestoreTarget:
    """latest (the end of the archived WAL) or a time (`--type=time --target=...`)."""

    kind: str = "latest"
    value: str = ""
    inclusive: bool | None = None

    def options(self) -> list[str]:
        if self.kind == "latest":
            if self.value:
                raise DriverInputError("target_value", "the latest point takes no value.")
            return []
        if self.kind == "time":
            value = check_target_time(self.value, "target_value")
            if value.endswith(("Z", "UTC")):  # PostgreSQL reads them; pgBackRest does not
                raise DriverInputError(
                    "target_value", f"give the zone as an offset (+00 for UTC): {value!r}."
                )
            argv = ["--type=time", f"--target={value}"]
            if self.inclusive is False:
                argv.append("--target-exclusive")
            return argv
        raise DriverInputError("target_kind", f"pgBackRest restores to latest or a time here: "
                                              f"{self.kind!r}.")  # fmt: skip


def stanza_create(repo: Repository, pg: Instance) -> Command:
    return Command(repo.options() + pg.options() + ["stanza-create"])


def check(repo: Repository, pg: Instance, *, archive_timeout: int | None = None) -> Command:
    extra = [f"--archive-timeout={check_positive_int('archive_timeout', archive_timeout)}"] if (
        archive_timeout
    ) else []  # fmt: skip
    return Command(repo.options() + pg.options() + extra + ["check"])


def backup(
    repo: Repository,
    pg: Instance,
    mode: str,
    *,
    retention: Retention | None = None,
    start_fast: bool = True,
    compress: bool | None = None,
) -> Command:
    """`backup --type=full|diff|incr`. `start_fast` asks for an immediate checkpoint;
    `compress` False stores files uncompressed (pgBackRest's default is gz)."""
    if mode not in MODES:
        raise DriverInputError("mode", f"pgBackRest takes {', '.join(MODES)} backups: {mode!r}.")
    argv = repo.options() + pg.options() + (retention.options() if retention else [])
    if start_fast:
        argv.append("--start-fast")
    if compress is False:
        argv.append("--compress-type=none")
    return Command(argv + ["backup", f"--type={mode}"])


def info(repo: Repository) -> Command:
    return Command(repo.options() + ["info", "--output=json"])


def verify(repo: Repository) -> Command:
    return Command(repo.options() + ["verify", "--verbose"])


def expire(repo: Repository, retention: Retention, *, label: str | None = None) -> Command:
    argv = repo.options() + retention.options() + ["expire"]
    if label is not None:
        argv.append(f"--set={check_label(label)}")
    return Command(argv)


def restore(
    repo: Repository,
    data_directory: str,
    target: RestoreTarget = RestoreTarget(),
    *,
    label: str | None = None,
    delta: bool = False,
    target_action: str = "promote",
) -> Command:
    """`restore` into `data_directory` (which must be empty unless `delta`), from the backup
    `label` (default: the newest that fits the target), replaying WAL to the target then
    `target_action` (promote by default: the restored server opens for writes)."""
    argv = repo.options() + [f"--pg1-path={check_path('target_data_directory', data_directory)}"]
    argv.append("restore")
    argv += target.options()
    if label is not None:
        argv.append(f"--set={check_label(label)}")
    if delta:
        argv.append("--delta")
    if target.kind != "latest":
        if target_action not in TARGET_ACTIONS:
            raise DriverInputError("target_action", f"one of {', '.join(TARGET_ACTIONS)}.")
        argv.append(f"--target-action={target_action}")
    return Command(argv)


def archive_command(repo: Repository, data_directory: str) -> str:
    """The archive_command for postgresql.conf (a shell string PostgreSQL runs; %p left as is)."""
    argv = repo.options() + [f"--pg1-path={check_path('data_directory', data_directory)}"]
    return shlex.join(argv + ["archive-push"]) + " %p"


# --- parsers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepoBackup:
    """One backup of `info --output=json`: the console's record, what it depends on (`prior`,
    `references`: the backups whose files it reuses), its WAL range and pgBackRest's error flag
    (files that changed while copied failed their page checksums)."""

    parsed: ParsedBackup
    prior: str | None = None
    references: tuple[str, ...] = ()
    wal_start: str = ""
    wal_stop: str = ""
    error: bool = False

    @property
    def label(self) -> str:
        return self.parsed.backup_id


@dataclass(frozen=True)
class StanzaInfo:
    name: str
    status_code: int
    status: str  # pgBackRest's message: ok, missing stanza path, no valid backups, ...
    backups: list[RepoBackup] = field(default_factory=list)
    wal_min: str = ""
    wal_max: str = ""
    backup_running: bool = False


def _utc(epoch: int | None) -> datetime | None:
    """Naive UTC (the driver's times are naive; the catalog of a pgBackRest repository is UTC)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _timeline(wal: str | None) -> int | None:
    return int(wal[:8], 16) if wal and len(wal) == 24 else None


def parse_info(stdout: str) -> list[StanzaInfo]:
    """`info --output=json` into one StanzaInfo per stanza. A backup's status is `error` when
    pgBackRest flagged it, else `done` (copied, not yet verified); sizes are exact bytes:
    database (the data directory), data (what this backup copied: its delta), written (what
    it added to the repository)."""
    stanzas = []
    for st in json.loads(stdout):
        backups = []
        for b in st.get("backup", []):
            sizes, archive, lsn = b.get("info", {}), b.get("archive") or {}, b.get("lsn") or {}
            started, ended = _utc(b["timestamp"]["start"]), _utc(b["timestamp"]["stop"])
            parsed = ParsedBackup(
                backup_id=b["label"],
                mode=b["type"],
                status="error" if b.get("error") else "done",
                started=started,
                ended=ended,
                timeline=_timeline(archive.get("start")),
                start_lsn=lsn.get("start") or "",
                stop_lsn=lsn.get("stop") or "",
                data_bytes=sizes.get("delta"),
                written_bytes=(sizes.get("repository") or {}).get("delta"),
                database_bytes=sizes.get("size"),
                recovery_time=ended,  # a backup alone is consistent at its stop
                exact=True,
            )
            backups.append(
                RepoBackup(
                    parsed=parsed,
                    prior=b.get("prior"),
                    references=tuple(b.get("reference") or ()),
                    wal_start=archive.get("start") or "",
                    wal_stop=archive.get("stop") or "",
                    error=bool(b.get("error")),
                )
            )
        archives = st.get("archive") or []
        status = st.get("status") or {}
        stanzas.append(
            StanzaInfo(
                name=st["name"],
                status_code=status.get("code", 0),
                status=status.get("message", ""),
                backups=backups,
                wal_min=min((a.get("min") or "" for a in archives), default=""),
                wal_max=max((a.get("max") or "" for a in archives), default=""),
                backup_running=bool(status.get("lock", {}).get("backup", {}).get("held")),
            )
        )
    return stanzas


@dataclass(frozen=True)
class VerifyResult:
    """`verify --verbose`: the stanza's overall status (ok / error), each backup's status
    (valid, invalid, in-progress, ...) with files checked and valid, and the files found
    damaged."""

    status: str
    backups: dict[str, str]
    files_checked: dict[str, tuple[int, int]]
    invalid_files: list[str]

    def sound(self, backup: RepoBackup) -> bool:
        """Verified sound: the backup and every backup it references are valid. verify lists
        a damaged file only under the backup storing it; which files a diff or incr reuses is
        in the manifests, not read here, so any invalid reference counts (conservative)."""
        chain = (backup.label, *backup.references)
        return all(self.backups.get(label) == "valid" for label in chain)


def parse_verify(output: str) -> VerifyResult:
    status, backups, checked, invalid = "", {}, {}, []
    for line in output.splitlines():
        text = line.strip()
        if text.startswith("status:") and not status:
            status = text.removeprefix("status:").strip()
        elif m := _VERIFY_BACKUP_RE.search(text):
            backups[m[1]] = m[2]
            if m[3] is not None:
                checked[m[1]] = (int(m[3]), int(m[4]))
        elif m := _VERIFY_INVALID_RE.search(text):
            invalid.append(m[2])
    return VerifyResult(status, backups, checked, invalid)


def apply_verify(backups: list[RepoBackup], result: VerifyResult) -> list[RepoBackup]:
    """Statuses after a verify: `ok` for a sound backup (usable), `corrupt` for one with a
    damaged file in its chain; a backup pgBackRest flagged `error` stays so."""
    out = []
    for b in backups:
        if b.error or b.label not in result.backups:
            out.append(b)
            continue
        status = "ok" if result.sound(b) else "corrupt"
        out.append(replace(b, parsed=replace(b.parsed, status=status)))
    return out


def parse_messages(output: str) -> list[Message]:
    """Log lines (with or without the timestamp prefix) as messages; indented continuation
    lines are joined to the message above, and `HINT:` continuations become their own."""
    messages: list[Message] = []
    for line in output.splitlines():
        m = _LOG_RE.match(line)
        stripped = line.strip()
        if m:
            messages.append(Message(m[1], m[3].strip()))
        elif stripped.startswith("HINT: "):
            messages.append(Message("HINT", stripped.removeprefix("HINT: ")))
        elif messages and stripped and line[:1].isspace():
            last = messages[-1]
            messages[-1] = Message(last.level, f"{last.text} {stripped}")
    return messages


def new_label(output: str) -> str | None:
    """The label `backup` printed (`new backup label = ...`, at log level info)."""
    m = _NEW_LABEL_RE.search(output)
    return m[1] if m else None


def changed_type(output: str) -> str | None:
    """The type pgBackRest really took when it changed an incr/diff without a prior full."""
    m = re.search(r"no prior backup exists, (\w+) backup has been changed to (\w+)", output)
    return m[2] if m else None


def engine_error(exit_code: int, stdout: str, stderr: str = "") -> EngineError | None:
    """None for exit 0; otherwise the exit code's meaning, pgBackRest's ERROR and HINTs."""
    if exit_code == 0:
        return None
    both = f"{stdout}\n{stderr}"
    if _NOT_FOUND_RE.search(both):
        return EngineError(exit_code, "NOT_INSTALLED",
                           "pgBackRest is not installed on this host", error=both.strip(),
                           engine_label=ENGINE_LABEL)  # fmt: skip
    messages = parse_messages(both)
    errors = [m.text for m in messages if m.level == "ERROR"]
    hints = [m.text for m in messages if m.level == "HINT"]
    warnings = tuple(m.text for m in messages if m.level == "WARN")
    code, summary = EXIT_CODES.get(exit_code, ("Error", f"pgBackRest failed (exit {exit_code})"))
    if errors and errors[-1].endswith("Permission denied"):
        summary = "pgBackRest, as the postgres user, may not read or write there"
    return EngineError(
        exit_code,
        code,
        summary,
        error=errors[-1] if errors else "",
        hint=" ".join(h if h.endswith((".", "?")) else h + "." for h in hints).rstrip("."),
        warnings=warnings,
        engine_label=ENGINE_LABEL,
    )
