"""What the node page shows, read on demand from the node itself through the executor.

Every read is one audited executor call (label "node page") with a short timeout, so a page
never waits long on a slow server. A section that cannot be read carries its error instead of
its data ("unreachable: …"); when the database server does not answer the first query, the
other SQL sections are not tried, so a node that is down costs one connection attempt, never a
500. The data directory's disk use is read over SSH with `df`, which works while the database
server is down. `parse_df` is pure and tested with output recorded on the lab's hosts.
"""

import posixpath
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from clusters import logs
from clusters.discovery import stderr_log
from console.executor import ExecutorError, HostUnreachable, run_command, run_sql

TIMEOUT = 5  # seconds, for each statement and command of the page
SEARCH_TIMEOUT = 30  # seconds for a search through a whole server log (grep over SSH)
LABEL = "node page"
PAGE_SIZE = logs.DEFAULT_PAGE  # bytes of log per viewer page
DB_SERVICES = ("postgresql", "mariadb")


@dataclass(frozen=True)
class DiskUse:
    """One line of `df -P -B1`: sizes in bytes."""

    filesystem: str
    size: int
    used: int
    available: int
    capacity: int  # percent, as df rounds it
    mounted_on: str


@dataclass(frozen=True)
class Setting:
    name: str
    value: str
    unit: str = ""
    source: str = ""


@dataclass(frozen=True)
class Facts:
    """The server's state; `in_recovery` is the PostgreSQL standby flag, `read_only` MariaDB's."""

    version: str
    uptime: timedelta
    data_directory: str
    in_recovery: bool | None = None
    timeline: int | None = None
    read_only: bool | None = None
    started: datetime | None = None

    @property
    def uptime_text(self) -> str:
        minutes = int(self.uptime.total_seconds()) // 60
        days, minutes = divmod(minutes, 24 * 60)
        hours, minutes = divmod(minutes, 60)
        return f"{days} d {hours} h {minutes} min" if days else f"{hours} h {minutes} min"


@dataclass
class NodeInfo:
    """The node page's sections. A section that could not be read is None (or empty) and its
    reason is in `errors` under the section's name: facts, connections, databases, settings,
    disk."""

    facts: Facts | None = None
    connections: list[tuple[str, int]] = field(default_factory=list)
    max_connections: int | None = None
    databases: list[tuple[str, int]] = field(default_factory=list)
    settings: list[Setting] = field(default_factory=list)
    disk: DiskUse | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def connections_total(self) -> int:
        return sum(count for _, count in self.connections)


class DfUnparsable(ValueError):
    """`df` printed something that is not its POSIX output."""


def parse_df(output: str) -> DiskUse:
    """The filesystem line of `df -P -B1 -- <path>` output (header first, then one line).

    The mount point is the rest of the line, so one with spaces survives; a filesystem name
    with spaces does not occur on Linux block devices and is not handled."""
    lines = [line for line in output.splitlines() if line.strip()]
    if len(lines) != 2 or not lines[0].startswith("Filesystem"):
        raise DfUnparsable(f"unexpected df output: {output[:200]!r}")
    parts = lines[1].split(None, 5)
    if len(parts) != 6 or not parts[4].endswith("%"):
        raise DfUnparsable(f"unexpected df line: {lines[1][:200]!r}")
    try:
        size, used, available = (int(p) for p in parts[1:4])
        capacity = int(parts[4].rstrip("%"))
    except ValueError:
        raise DfUnparsable(f"unexpected df line: {lines[1][:200]!r}") from None
    return DiskUse(parts[0], size, used, available, capacity, parts[5])


def read_node(node, *, actor=None) -> NodeInfo:
    """The node page's facts of a PostgreSQL or MariaDB node (nothing for other services).

    Guarantees: each remote read is audited by the executor under TIMEOUT seconds; every
    ExecutorError is caught into `errors`, so this never raises for a node that is down."""
    info = NodeInfo()
    if node.service == "postgresql":
        _read_pg(node, info, actor)
    elif node.service == "mariadb":
        _read_mariadb(node, info, actor)
    else:
        return info
    directory = info.facts.data_directory if info.facts else node.data_directory
    if directory:
        try:
            info.disk = disk_use(node, directory, actor=actor)
        except (ExecutorError, DfUnparsable) as e:
            info.errors["disk"] = _reason(e)
    else:
        info.errors["disk"] = "data directory unknown (the server did not answer)"
    return info


def disk_use(node, path: str, *, actor=None) -> DiskUse:
    """Disk use of the filesystem holding `path` on the node, over SSH (one audited call)."""
    result = run_command(node, ["df", "-P", "-B1", "--", path], actor=actor, timeout=TIMEOUT,
                         label=LABEL)  # fmt: skip
    return parse_df(result.stdout)


def _reason(e: Exception) -> str:
    return f"unreachable: {e}" if isinstance(e, HostUnreachable) else str(e)


def _sql(node, name: str, actor):
    target = node.mysql_target() if node.service == "mariadb" else node.pg_target()
    result = run_sql(target, f"clusters:{name}", actor=actor, timeout=TIMEOUT, label=LABEL)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _sections(node, info: NodeInfo, actor, readers: dict) -> None:
    """Run each reader in order; the first failing to connect marks the rest unreachable."""
    down = ""
    for section, reader in readers.items():
        if down:
            info.errors[section] = down
            continue
        try:
            reader()
        except ExecutorError as e:
            info.errors[section] = _reason(e)
            if isinstance(e, HostUnreachable):
                down = info.errors[section]


def _read_pg(node, info: NodeInfo, actor) -> None:
    def facts():
        [row] = _sql(node, "node-pg-facts", actor)
        info.facts = Facts(
            version=row["version"], uptime=row["uptime"], started=row["started"],
            data_directory=row["data_directory"], in_recovery=row["in_recovery"],
            timeline=row["timeline"],
        )  # fmt: skip

    def connections():
        rows = _sql(node, "node-pg-connections", actor)
        info.connections = [(r["state"], r["connections"]) for r in rows]
        info.max_connections = rows[0]["max_connections"] if rows else None

    def databases():
        info.databases = [(r["name"], r["size"]) for r in _sql(node, "node-pg-databases", actor)]

    def settings():
        info.settings = [Setting(**r) for r in _sql(node, "node-pg-settings", actor)]

    readers = {"facts": facts, "connections": connections, "databases": databases}
    _sections(node, info, actor, {**readers, "settings": settings})


def _read_mariadb(node, info: NodeInfo, actor) -> None:
    def facts():
        [row] = _sql(node, "node-mariadb-facts", actor)
        info.facts = Facts(
            version=row["version"], uptime=timedelta(seconds=int(row["uptime"])),
            data_directory=row["data_directory"], read_only=bool(row["read_only"]),
        )  # fmt: skip
        info.connections = [("connected", int(row["threads_connected"]))]

    def databases():
        rows = _sql(node, "node-mariadb-databases", actor)
        info.databases = [(r["name"], int(r["size"])) for r in rows]

    def settings():
        rows = _sql(node, "node-mariadb-variables", actor)
        info.settings = [Setting(r["name"], str(r["value"])) for r in rows]

    _sections(node, info, actor, {"facts": facts, "databases": databases, "settings": settings})


# --- The log viewer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LogLocation:
    """Where the node's server log is, how to read it, and how its lines are classified."""

    path: str
    flavor: str  # clusters.logs.line_kinds flavor
    sudo_user: str | None
    note: str = ""  # why the server was not asked (it did not answer)


def log_location(node, *, actor=None) -> LogLocation | None:
    """The node's current server log (`path` empty when it is not known, `note` saying why
    the server was not asked), or None for a service without a server log here.

    PostgreSQL: `pg_current_logfile()` (joined to the data directory when relative) with the
    logging collector, else Node.log_path, else the file behind the postmaster's stderr.
    MariaDB: Node.log_path, else @@log_error. A server that does not answer leaves
    Node.log_path, so the log of a node that is down can still be read."""
    if node.service not in DB_SERVICES:
        return None
    sudo = {"postgresql": "postgres", "mariadb": "mysql"}[node.service]
    sudo_user = None if node.ssh_user == sudo else sudo
    note, path = "", ""
    try:
        path = _pg_log(node, actor) if node.service == "postgresql" else _mariadb_log(node, actor)
    except ExecutorError as e:
        note = f"the server did not say where it logs ({_reason(e)})"
        path = node.log_path
    return LogLocation(path or "", node.service, sudo_user, note)


def _pg_log(node, actor) -> str:
    [row] = _sql(node, "node-pg-logfile", actor)
    directory = row["data_directory"]
    if row["current_logfile"]:
        return posixpath.join(directory, row["current_logfile"])
    return node.log_path or stderr_log(node, directory, actor=actor)


def _mariadb_log(node, actor) -> str:
    if node.log_path:
        return node.log_path
    [row] = _sql(node, "node-mariadb-facts", actor)
    path = row["log_error"] or ""
    if path in ("", "stderr"):
        return ""
    return posixpath.normpath(posixpath.join(row["data_directory"], path))  # keeps an absolute one


@dataclass(frozen=True)
class ShownLine:
    """A log line for the viewer: its byte offset, line number (search only), text and the
    CSS class of its most severe kind ("log-panic", "log-fatal", "log-error" or "")."""

    offset: int
    text: str
    css: str = ""
    number: int | None = None

    @property
    def page_end(self) -> int:
        """The before_offset of a page ending with this line (a masked credential changes
        the text's length, so such a line may be shown cut or with the next one)."""
        return self.offset + len(self.text.encode("utf-8")) + 1


@dataclass
class LogView:
    """One page of the viewer: the newest lines before `before_offset`, or the search's
    matches. `older` is the before_offset of the previous page (None at the file's start)."""

    location: LogLocation | None = None
    lines: list[ShownLine] = field(default_factory=list)
    older: int | None = None
    size: int | None = None
    error: str = ""


def _css(text: str, flavor: str) -> str:
    kinds = logs.line_kinds(text, flavor)
    for kind in ("panic", "fatal", "error"):
        if kind in kinds:
            return f"log-{kind}"
    return ""


def view_log(
    node, *, term: str | None = None, before_offset: int | None = None, actor=None
) -> LogView:
    """A page of the node's server log, or the lines matching `term` (a fixed string).

    Guarantees: reads go through clusters.logs (audited executor calls); a missing or
    unreadable log, or a node that is down, gives `error`, never an exception."""
    view = LogView(location=log_location(node, actor=actor))
    where = view.location
    if where is None or not where.path:
        view.error = "The console does not know where this node writes its server log"
        view.error += f": {where.note}." if where and where.note else "."
        return view
    call = {"sudo_user": where.sudo_user, "actor": actor, "timeout": TIMEOUT}
    try:
        if term is not None:
            matches = logs.search(node, where.path, term, **{**call, "timeout": SEARCH_TIMEOUT})
            view.lines = [ShownLine(o, t, _css(t, where.flavor), n) for n, o, t in matches]
            return view
        shown = logs.page(node, where.path, before_offset=before_offset, size=PAGE_SIZE, **call)
    except (ExecutorError, logs.LogUnreadable) as e:
        view.error = _reason(e)
        return view
    view.lines = [ShownLine(o, t, _css(t, where.flavor)) for o, t in shown.lines]
    view.older = None if shown.at_start else shown.start
    view.size = shown.size
    return view
