"""Reading a node's server settings: pg_settings and information_schema.SYSTEM_VARIABLES rows,
a MariaDB option file and the values it sets, one parameter's row, and the rows a node's
settings page shows (clusters.views.settings, clusters.api.settings).

Reads only, each audited by the executor (remote.sql / remote.command, label "settings"). Kept
apart from the change (clusters.actions.settings) because the pages read without changing
anything, and the change reads through these same functions before and after it sends.
"""

from collections import Counter
from dataclasses import dataclass, field

from clusters import mycnf
from clusters.models import Node
from clusters.serversettings import SettingRefused, check_mariadb_value, pg_shown
from console.executor import ExecutorError, run_command, run_sql
from console.executor.redact import redact

LABEL = "settings"
READ_TIMEOUT = 10  # seconds, for each read of the settings pages
# The option groups mariadbd reads (10.11); an option in any of them applies to the server.
MARIADB_GROUPS = ("mysqld", "server", "mariadb", "mariadbd", "mysqld-10.11", "mariadb-10.11")


def read_pg_settings(node: Node, *, actor=None, name: str | None = None, job=None) -> list[dict]:
    """pg_settings rows (every parameter, or the one named) with their auto.conf entry."""
    result = run_sql(node.pg_target(), "clusters:settings-pg-read", {"name": name}, actor=actor,
                     job=job, label=LABEL, timeout=READ_TIMEOUT)  # fmt: skip
    rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    for row in rows:
        row["enumvals"] = list(row["enumvals"] or [])
    return rows


def read_mariadb_settings(node: Node, *, actor=None, name: str | None = None, job=None):
    """SYSTEM_VARIABLES rows (every global variable, or the one named)."""
    result = run_sql(node.mysql_target(), "clusters:settings-mariadb-read", (name, name),
                     actor=actor, job=job, label=LABEL, timeout=READ_TIMEOUT)  # fmt: skip
    rows = []
    for values in result.rows:
        row = dict(zip(result.columns, values, strict=True))
        row["read_only"] = bool(row.pop("is_read_only"))
        row["option"] = bool(row.pop("is_option"))
        for key in ("value", "default_value", "min", "max", "block_size", "enum_values"):
            row[key] = "" if row[key] is None else str(row[key])
        rows.append(row)
    return rows


def mariadb_config_file(node: Node, rows: list[dict], name: str | None = None) -> str:
    """The option file to edit for `name`: the one the server read it from, else
    Node.config_file, else the file most of the server's options came from; "" if none."""
    by_name = {r["name"]: r for r in rows}
    row = by_name.get(name or "")
    if row and row["origin"] == "CONFIG" and row["path"]:
        return row["path"]
    if node.config_file:
        return node.config_file
    paths = Counter(r["path"] for r in rows if r["origin"] == "CONFIG" and r["path"])
    return paths.most_common(1)[0][0] if paths else ""


def sudo_user(node: Node) -> str | None:
    return None if node.ssh_user == "root" else "root"


def read_option_file(node: Node, path: str, *, actor=None, job=None) -> str:
    """The text of a MariaDB option file over SSH (its content is not kept in the audit entry:
    a [client] group may hold a password)."""
    result = run_command(
        node, ["cat", "--", path], actor=actor, job=job, label=LABEL, sudo_user=sudo_user(node),
        timeout=READ_TIMEOUT, keep_output=False,
    )  # fmt: skip
    return result.stdout


def mariadb_file_values(text: str, rows: list[dict]) -> dict[str, str]:
    """The value each variable has in the option file text (server groups; last line wins)."""
    values = {}
    for row in rows:
        value = mycnf.get_effective(text, MARIADB_GROUPS, row["name"])
        if value is not None:
            values[row["name"]] = value
    return values


def same_mariadb_value(row: dict, file_value: str) -> bool:
    """Whether the option file's value is the value the server runs (units and ON/1 aside)."""
    try:
        checked = check_mariadb_value(row, file_value if file_value != "" else "ON")
    except SettingRefused:
        return file_value == row["value"]
    running = row["value"]
    if isinstance(checked.sql, (int, float)):
        try:
            return float(running) == float(checked.sql)
        except ValueError:
            return False
    if (row.get("type") or "").upper() in ("BOOLEAN", "ENUM", "SET", "FLAGSET"):
        return checked.config.lower() == running.lower()
    return checked.config.rstrip("/") == running.rstrip("/")  # datadir is shown with a /


def read_row(node: Node, name: str, *, actor=None, job=None) -> dict | None:
    """The node's row for one parameter (PostgreSQL) or variable (MariaDB), or None."""
    if node.service == Node.Service.POSTGRESQL:
        rows = read_pg_settings(node, actor=actor, name=name, job=job)
        return rows[0] if rows else None
    rows = read_mariadb_settings(node, actor=actor, job=job)
    row = next((r for r in rows if r["name"] == name), None)
    if row is not None:
        row["config_file"] = mariadb_config_file(node, rows, name)
    return row


# --- The settings page ------------------------------------------------------------------------


@dataclass
class SettingsList:
    """What a node's settings page shows: every parameter as a dict with the keys both engines
    share (name, value, unit, category, description, context, source, default, pending,
    changed, file_value), the raw rows by name (for the change form), and errors."""

    rows: list[dict] = field(default_factory=list)
    raw: dict[str, dict] = field(default_factory=dict)
    config_file: str = ""
    error: str = ""
    file_error: str = ""


def list_settings(node: Node, *, actor=None) -> SettingsList:
    """Read a node's parameters for its settings page (audited reads; never raises for a node
    that is down: the error is in `error`). MariaDB: the option file is read over SSH too, to
    show each variable's value there and when it differs from the running one (a restart is
    pending for it)."""
    found = SettingsList()
    try:
        if node.service == Node.Service.POSTGRESQL:
            raw = read_pg_settings(node, actor=actor)
            found.rows = [_pg_shown(r) for r in raw]
        elif node.service == Node.Service.MARIADB:
            raw = read_mariadb_settings(node, actor=actor)
            found.config_file = mariadb_config_file(node, raw)
            file_values = _file_values(node, found, raw, actor)
            for r in raw:
                r["config_file"] = mariadb_config_file(node, raw, r["name"])
            found.rows = [_mariadb_shown(r, file_values.get(r["name"])) for r in raw]
        else:
            return found
    except ExecutorError as e:
        found.error = str(e)
        return found
    found.raw = {r["name"]: r for r in raw}
    return found


def _file_values(node: Node, found: SettingsList, raw: list[dict], actor) -> dict[str, str]:
    if not found.config_file:
        found.file_error = "the server names no option file it read"
        return {}
    try:
        text = read_option_file(node, found.config_file, actor=actor)
    except ExecutorError as e:
        found.file_error = str(e)
        return {}
    return mariadb_file_values(text, raw)


_PG_OURS = ("default", "override", "client", "session")


def _pg_shown(r: dict) -> dict:
    return {
        "name": r["name"], "value": redact(r["shown"] or r["setting"] or ""),
        "setting": redact(r["setting"] or ""), "unit": r["unit"], "category": r["category"],
        "description": r["short_desc"], "context": r["context"], "vartype": r["vartype"],
        "source": r["source"], "sourcefile": r["sourcefile"],
        "default": redact(pg_shown(r["boot_val"], r["unit"])),
        "pending": bool(r["pending_restart"]), "changed": r["source"] not in _PG_OURS,
        "auto": None if r["auto_setting"] is None else redact(r["auto_setting"]),
        "file_value": None, "enumvals": r["enumvals"], "min": r["min_val"], "max": r["max_val"],
    }  # fmt: skip


def _mariadb_shown(r: dict, file_value: str | None) -> dict:
    pending = file_value is not None and not same_mariadb_value(r, file_value)
    source = r["origin"].lower() + (f" ({r['path']})" if r["path"] else "")
    return {
        "name": r["name"], "value": redact(r["value"]), "setting": redact(r["value"]),
        "unit": "", "category": "", "description": r["description"] or "",
        "context": "static" if r["read_only"] else "dynamic", "vartype": r["type"],
        "source": source, "sourcefile": r["path"], "default": redact(r["default_value"]),
        "pending": pending, "changed": r["origin"] not in ("COMPILE-TIME", "AUTO"),
        "auto": None, "file_value": None if file_value is None else redact(file_value),
        "enumvals": [c for c in r["enum_values"].split(",") if c], "min": r["min"],
        "max": r["max"],
    }  # fmt: skip
