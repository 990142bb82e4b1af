"""Server settings: reading a node's parameters and changing one on a node or a whole cluster.

PostgreSQL: `ALTER SYSTEM SET name = value` (psycopg.sql Identifier and Literals), then
`pg_reload_conf()`, then the parameter is read back once the server has reloaded (its
pg_conf_load_time moved): applied, or pending_restart (restart needed), or refused by the server
(an error on its postgresql.auto.conf entry, or errors in the configuration files) — then the
previous entry is written back and reloaded, so the server is left as it was.

MariaDB: the option is written in the [mysqld] group (or the server group already setting it)
of the option file the server read it from (else Node.config_file, else the file most of its
options came from), over SSH: a dated backup copy next to it, the new text written to a
temporary copy and renamed over the file (comments and other lines kept, clusters.mycnf); a
dynamic variable is also SET GLOBAL and read back, a read-only one is "restart needed". A
failure puts the file back from the backup and the old value back with SET GLOBAL.

A change to a cluster goes to each database node (primary first, then standbys, so a failover
keeps it): every node is read and the value checked against each before anything is sent, and
when one node fails, the nodes already changed are put back. Every remote call is audited by the
executor (changes as setting.changed); the history rows and one setting.changed entry for the
whole request are written in one transaction.
"""

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from psycopg import sql

from clusters import mycnf
from clusters.models import Cluster, Node, SettingChange
from clusters.serversettings import (
    ADDRESS_SETTINGS,
    PG_LIST_QUOTE,
    PG_REFUSED,
    SettingRefused,
    check_mariadb_name,
    check_mariadb_value,
    check_pg_value,
    lost_access,
    parse_address_list,
    pg_literals_of_file_value,
    pg_shown,
)
from console import audit
from console.errors import ExpectedFailure
from console.executor import ExecutorError, run_command, run_sql
from console.executor.redact import redact
from console.executor.sql import quote_mysql_identifier
from console.models import AuditEntry

LABEL = "settings"
READ_TIMEOUT = 10  # seconds, for each read of the settings pages
RELOAD_DEADLINE = 10.0  # seconds the server is given to reload its configuration
SERVICES = (Node.Service.POSTGRESQL, Node.Service.MARIADB)
# The option groups mariadbd reads (10.11); an option in any of them applies to the server.
MARIADB_GROUPS = ("mysqld", "server", "mariadb", "mariadbd", "mysqld-10.11", "mariadb-10.11")
PENDING_NOT_APPLIED = "setting could not be applied"


class ChangeRefused(ExpectedFailure):
    """The change was not sent: the value or the parameter is not acceptable, or a node could
    not be read first. The message says why, for a person."""

    def __init__(self, message: str, field: str = "value"):
        super().__init__(message)
        self.field = field


class AccessWouldBeLost(ChangeRefused):
    """The new listen_addresses/bind_address/port would shut the console out after a restart."""

    def __init__(self, message: str):
        super().__init__(message, field="confirm_access")


@dataclass
class NodeOutcome:
    node: Node
    status: str = SettingChange.Status.FAILED
    old_value: str = ""
    new_value: str = ""
    unit: str = ""
    context: str = ""
    config_file: str = ""
    backup_file: str = ""
    error: str = ""
    undo: dict = field(default_factory=dict)  # what putting it back needs


# --- Reading ----------------------------------------------------------------------------------


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


def _sudo(node: Node) -> str | None:
    return None if node.ssh_user == "root" else "root"


def read_option_file(node: Node, path: str, *, actor=None, job=None) -> str:
    """The text of a MariaDB option file over SSH (its content is not kept in the audit entry:
    a [client] group may hold a password)."""
    result = run_command(
        node, ["cat", "--", path], actor=actor, job=job, label=LABEL, sudo_user=_sudo(node),
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


# --- Checking (before anything is sent) -------------------------------------------------------


def check_change(node: Node, row: dict | None, name: str, value: str | None, *,
                 confirmed: bool = False):  # fmt: skip
    """Check a proposed change against the node's row for the parameter; return the checked
    value (None for a reset). Raises ChangeRefused (field "value" or "name") or
    AccessWouldBeLost (field "confirm_access") unless `confirmed`."""
    if row is None:
        raise ChangeRefused(f"{node.name} has no parameter named {name!r}.", field="name")
    if row.get("config_errors"):
        raise ChangeRefused(
            f"{node.name}'s configuration files hold errors, so a reload would apply no change: "
            f"{row['config_errors']}. Fix them first.",
            field="",
        )
    if value is None:
        _check_reset(node, row, name)
        return None
    origin = row.get("source") or (row.get("origin") or "").lower().replace("-", " ")
    if origin in ("command line", "environment variable", "environment"):
        raise ChangeRefused(
            f"{node.name} takes {name} from its {origin}, which wins over the configuration "
            "files: change it where the server is started."
        )
    try:
        if node.service == Node.Service.POSTGRESQL:
            checked = check_pg_value(row, value)
        else:
            checked = check_mariadb_value(row, value)
    except SettingRefused as e:
        raise ChangeRefused(str(e)) from None
    if not confirmed:
        _check_access(node, name, checked.text)
    return checked


def _check_reset(node: Node, row: dict, name: str) -> None:
    if node.service == Node.Service.POSTGRESQL:
        if name in PG_REFUSED or row.get("context") == "internal":
            raise ChangeRefused(f"{name} cannot be reset here: it is not set by ALTER SYSTEM.")
    elif row.get("read_only") and not row.get("option"):
        raise ChangeRefused(f"{name} is read-only: the server reports it, nobody sets it.")


def _check_access(node: Node, name: str, text: str) -> None:
    if name == ADDRESS_SETTINGS.get(node.service):
        addresses = parse_address_list(text, name)
        if lost_access(addresses, node.address):
            raise AccessWouldBeLost(
                f"After a restart {node.name} would no longer listen on {node.address}, the "
                f"address the console reaches it at: the console would lose its access. "
                "Confirm to change it anyway."
            )
    used = node.db_port or (5432 if node.service == Node.Service.POSTGRESQL else 3306)
    if name == "port" and str(used) != text.strip():
        raise AccessWouldBeLost(
            f"After a restart {node.name} would listen on port {text.strip()}, not on "
            f"{used}, the port the console uses. Confirm to change it anyway."
        )


def check_libraries(node: Node, names: tuple[str, ...], *, actor=None, job=None) -> None:
    """Refuse (ChangeRefused) libraries the PostgreSQL server cannot find: a missing one in
    shared_preload_libraries passes ALTER SYSTEM and the reload, and stops the next start."""
    result = run_sql(node.pg_target(), "clusters:settings-pg-libraries", {"names": list(names)},
                     actor=actor, job=job, label=LABEL, timeout=READ_TIMEOUT)  # fmt: skip
    missing = [name for name, found in result.rows if not found]
    if missing:
        raise ChangeRefused(
            f"{node.name} has no library {', '.join(missing)} in its library directory: the "
            "server would not start with it."
        )


def _read_row(node: Node, name: str, *, actor, job) -> dict | None:
    if node.service == Node.Service.POSTGRESQL:
        rows = read_pg_settings(node, actor=actor, name=name, job=job)
        return rows[0] if rows else None
    rows = read_mariadb_settings(node, actor=actor, job=job)
    row = next((r for r in rows if r["name"] == name), None)
    if row is not None:
        row["config_file"] = mariadb_config_file(node, rows, name)
    return row


def read_row(node: Node, name: str, *, actor=None) -> dict | None:
    """The node's row for one parameter (PostgreSQL) or variable (MariaDB), or None."""
    return _read_row(node, name, actor=actor, job=None)


# --- Changing ---------------------------------------------------------------------------------


def active_change(node: Node):
    """The pending or running change job on this node or its cluster, if any: one change at a
    time, so two jobs never interleave their ALTER SYSTEM, reloads and put-backs."""
    from django.db.models import Q

    from console.models import Job

    where = Q(params__node=node.pk)
    if node.cluster_id:
        where |= Q(params__cluster=node.cluster_id)
    active = (Job.Status.PENDING, Job.Status.RUNNING)
    jobs = Job.objects.filter(where, kind="clusters.change_setting", status__in=active)
    return jobs.order_by("pk").first()


def enqueue_change(node: Node, name: str, value: str | None, *, cluster_wide: bool,
                   confirmed: bool, actor, source: str = AuditEntry.Source.UI):  # fmt: skip
    """Queue the clusters.change_setting job for a change the form accepted (pages and API)."""
    from console import jobs

    target = node.cluster if cluster_wide and node.cluster is not None else node
    key = "cluster" if isinstance(target, Cluster) else "node"
    what = "Reset" if value is None else "Change"
    return jobs.enqueue(
        "clusters.change_setting", f"{what} {name} on {target}", user=actor, source=source,
        params={key: target.pk, "name": name, "value": value, "confirmed": confirmed},
        target=target,
    )  # fmt: skip


def target_nodes(target: Node | Cluster) -> list[Node]:
    """The database nodes a change goes to: the node itself, or the cluster's primary first,
    then its standbys and replicas."""
    if isinstance(target, Node):
        return [target]
    nodes = list(target.nodes.filter(service__in=SERVICES))
    return sorted(nodes, key=lambda n: (n.role != Node.Role.PRIMARY, n.name))


def change_setting(target: Node | Cluster, name: str, value: str | None, *, actor,
                   job=None, confirmed: bool = False,
                   source: str = AuditEntry.Source.UI) -> list[SettingChange]:  # fmt: skip
    """Set parameter `name` to `value` (None: reset it to its default) on a node or on every
    database node of a cluster; return the history rows written (one per node).

    Guarantees: nothing is sent unless every node was read and the value checked against its
    row (ChangeRefused/AccessWouldBeLost otherwise, with a failed history row per node and a
    failed audit entry); a node whose server refuses the value, or does not reload, is put back
    as it was, and so are the nodes changed before it; every remote call is audited by the
    executor; the history rows and the request's setting.changed entry commit together.
    """
    nodes = target_nodes(target)
    if not nodes:
        raise ChangeRefused(f"{target} has no database node to change.", field="name")
    request_id = uuid.uuid4()
    log = _logger(job)
    outcomes: list[NodeOutcome] = []
    try:
        rows = {}
        for node in nodes:
            rows[node.pk] = _read_row(node, name, actor=actor, job=job)
            checked = check_change(node, rows[node.pk], name, value, confirmed=confirmed)
            if name in PG_LIST_QUOTE and name.endswith("_libraries") and checked is not None:
                check_libraries(node, checked.literals, actor=actor, job=job)
    except (ExecutorError, ChangeRefused) as e:
        message = f"Nothing was changed: {e}"
        outcomes = [_refused(node, rows.get(node.pk), message) for node in nodes]
        _record(target, name, value, outcomes, actor=actor, job=job, source=source,
                request_id=request_id)  # fmt: skip
        if isinstance(e, ChangeRefused):
            raise
        raise ChangeRefused(message, field="") from None
    for node in nodes:
        log(f"{node.name}: {'resetting' if value is None else 'setting'} {name}")
        outcome = _apply(node, rows[node.pk], name, value, actor=actor, job=job)
        outcomes.append(outcome)
        log(f"{node.name}: {outcome.status}{': ' + outcome.error if outcome.error else ''}")
        if outcome.status == SettingChange.Status.FAILED:
            for done in reversed(outcomes[:-1]):
                _undo(done, name, actor=actor, job=job)
                done.status = SettingChange.Status.FAILED
                done.error = (f"put back as it was because {node.name} failed: "
                              f"{outcome.error}{done.error}")  # fmt: skip
            break
    for node in nodes[len(outcomes) :]:
        outcomes.append(_refused(node, rows[node.pk], "not tried: an earlier node failed"))
    return _record(target, name, value, outcomes, actor=actor, job=job, source=source,
                   request_id=request_id)  # fmt: skip


def _logger(job):
    if job is None:
        return lambda message: None
    from console.models import JobLogLine

    return lambda message: JobLogLine.objects.create(job=job, message=redact(message))


def _refused(node: Node, row: dict | None, message: str) -> NodeOutcome:
    outcome = NodeOutcome(node=node, error=message)
    if row:
        outcome.old_value = _shown(node, row)
        outcome.unit = row.get("unit", "") or ""
        outcome.context = _context(node, row)
    return outcome


def _shown(node: Node, row: dict) -> str:
    if node.service == Node.Service.POSTGRESQL:
        return redact(row.get("shown") or row.get("setting") or "")
    return redact(row.get("value", ""))


def _context(node: Node, row: dict) -> str:
    if node.service == Node.Service.POSTGRESQL:
        return row.get("context", "")
    return "static" if row.get("read_only") else "dynamic"


def _apply(node: Node, row: dict, name: str, value: str | None, *, actor, job) -> NodeOutcome:
    checked = check_change(node, row, name, value, confirmed=True)
    outcome = _refused(node, row, "")
    outcome.new_value = "" if checked is None else redact(checked.text)
    if node.service == Node.Service.POSTGRESQL:
        _apply_pg(outcome, row, name, checked, actor=actor, job=job)
    else:
        _apply_mariadb(outcome, row, name, checked, actor=actor, job=job)
    return outcome


def _undo(outcome: NodeOutcome, name: str, *, actor, job) -> None:
    """Put a node that was changed back as it was (best effort; says so when it fails)."""
    try:
        if outcome.node.service == Node.Service.POSTGRESQL:
            _undo_pg(outcome.node, name, outcome.undo, actor=actor, job=job)
        else:
            _undo_mariadb(outcome.node, name, outcome.undo, actor=actor, job=job)
    except ExecutorError as e:
        outcome.error += f"; PUTTING IT BACK FAILED, check the server: {e}"


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_alter(node: Node, name: str, literals: tuple[str, ...] | None, *, actor, job) -> None:
    if literals is None:
        query = sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name))
    else:
        values = sql.SQL(", ").join(sql.Literal(v) for v in literals)
        query = sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), values)
    run_sql(node.pg_target(), query, actor=actor, job=job, action=audit.SETTING_CHANGED,
            label=LABEL, timeout=READ_TIMEOUT)  # fmt: skip


def _pg_reload(node: Node, name: str, loaded_before, *, actor, job) -> dict:
    """pg_reload_conf(), then the parameter's row once the server has reloaded."""
    run_sql(node.pg_target(), "SELECT pg_reload_conf()", actor=actor, job=job,
            action=audit.SETTING_CHANGED, label=LABEL, timeout=READ_TIMEOUT)  # fmt: skip
    deadline = time.monotonic() + RELOAD_DEADLINE
    while True:
        [row] = read_pg_settings(node, actor=actor, name=name, job=job)
        if row["loaded"] > loaded_before:
            return row
        if time.monotonic() > deadline:
            raise ExecutorError(
                f"{node.name} did not reload its configuration within {RELOAD_DEADLINE:g} s"
            )
        time.sleep(0.1)  # polling the server under a deadline, not waiting for a guess


def _pg_verdict(after: dict, reset: bool) -> tuple[str, str]:
    """(status, error) of the parameter's row read after the reload."""
    error = after.get("auto_error")
    if error and error != PENDING_NOT_APPLIED:
        return SettingChange.Status.FAILED, f"the server refused the value: {error}"
    if after.get("config_errors"):
        return SettingChange.Status.FAILED, (
            "the server's configuration files hold errors, so it applied no change: "
            f"{after['config_errors']}"
        )
    if after["pending_restart"]:
        return SettingChange.Status.RESTART_NEEDED, ""
    if not reset and after.get("auto_setting") is None:
        return SettingChange.Status.FAILED, "the server's postgresql.auto.conf lost the entry"
    return SettingChange.Status.APPLIED, ""


def _apply_pg(outcome: NodeOutcome, row: dict, name: str, checked, *, actor, job) -> None:
    node = outcome.node
    outcome.undo = {"auto_setting": row.get("auto_setting")}
    literals = None if checked is None else checked.literals
    try:
        _pg_alter(node, name, literals, actor=actor, job=job)
    except ExecutorError as e:
        outcome.error = f"the server refused the change, nothing was changed: {e}"
        return
    try:
        after = _pg_reload(node, name, row["loaded"], actor=actor, job=job)
    except ExecutorError as e:
        status, error = SettingChange.Status.FAILED, str(e)
    else:
        status, error = _pg_verdict(after, checked is None)
        if status == SettingChange.Status.APPLIED:
            outcome.new_value = redact(after.get("shown") or "")
    outcome.status = status
    if status == SettingChange.Status.FAILED:
        outcome.error = error
        try:
            _undo_pg(node, name, outcome.undo, actor=actor, job=job, loaded_before=None)
            outcome.error += "; the previous value was put back"
        except ExecutorError as e:
            outcome.error += f"; PUTTING IT BACK FAILED, check the server: {e}"


def _undo_pg(node: Node, name: str, undo: dict, *, actor, job, loaded_before=None) -> None:
    previous = undo.get("auto_setting")
    literals = None if previous is None else pg_literals_of_file_value(name, previous)
    if loaded_before is None:
        [row] = read_pg_settings(node, actor=actor, name=name, job=job)
        loaded_before = row["loaded"]
    _pg_alter(node, name, literals, actor=actor, job=job)
    _pg_reload(node, name, loaded_before, actor=actor, job=job)


# --- MariaDB ----------------------------------------------------------------------------------


def _server_group(text: str, name: str) -> str:
    """The server group whose line sets `name` last in this file, else mysqld."""
    group = "mysqld"
    for option in mycnf.parse(text):
        section = (option.section or "").lower()
        if section in MARIADB_GROUPS:
            if mycnf.normalize(option.name).removeprefix("loose-") == mycnf.normalize(name):
                group = option.section
    return group


def _write_option_file(node: Node, path: str, text: str, stamp: str, *, actor, job) -> str:
    """Back the file up, write `text` to a copy with the file's owner and mode, rename it over
    the file; return the backup's path. Each step is one audited command."""
    backup = f"{path}.dbconsole-{stamp}.bak"  # not *.cnf: !includedir does not read it
    temp = f"{path}.dbconsole-{stamp}.tmp"
    call = {"actor": actor, "job": job, "label": LABEL, "sudo_user": _sudo(node),
            "action": audit.SETTING_CHANGED, "timeout": READ_TIMEOUT}  # fmt: skip
    run_command(node, ["cp", "-p", "--", path, backup], **call)
    try:
        run_command(node, ["cp", "-p", "--", path, temp], **call)
        run_command(node, ["dd", f"of={temp}", "status=none"], input=text, keep_output=False,
                    **call)  # fmt: skip
        run_command(node, ["mv", "-f", "--", temp, path], **call)
    except ExecutorError:
        run_command(node, ["rm", "-f", "--", temp], check=False, **call)
        raise
    return backup


def _restore_option_file(node: Node, path: str, backup: str, *, actor, job) -> None:
    run_command(node, ["cp", "-p", "--", backup, path], actor=actor, job=job, label=LABEL,
                sudo_user=_sudo(node), action=audit.SETTING_CHANGED,
                timeout=READ_TIMEOUT)  # fmt: skip


def _set_global(node: Node, name: str, value, *, actor, job) -> None:
    statement = f"SET GLOBAL {quote_mysql_identifier(check_mariadb_name(name))} = "
    params = None
    if value is None:
        statement += "DEFAULT"
    else:
        statement += "%s"
        params = (value,)
    run_sql(node.mysql_target(), statement, params, actor=actor, job=job,
            action=audit.SETTING_CHANGED, label=LABEL, timeout=READ_TIMEOUT)  # fmt: skip


def _old_sql_value(row: dict):
    try:
        return check_mariadb_value({**row, "min": "", "max": "", "block_size": ""},
                                   row["value"]).sql  # fmt: skip
    except SettingRefused:
        return row["value"]


def _apply_mariadb(outcome: NodeOutcome, row: dict, name: str, checked, *, actor, job) -> None:
    node = outcome.node
    path = row.get("config_file") or ""
    if not path:
        outcome.error = (f"the console does not know {node.name}'s option file (set the node's "
                         "config file); nothing was changed")  # fmt: skip
        return
    outcome.config_file = path
    try:
        text = read_option_file(node, path, actor=actor, job=job)
    except ExecutorError as e:
        outcome.error = f"cannot read {path}, nothing was changed: {e}"
        return
    group = _server_group(text, name)
    if checked is None:
        new_text = text
        for section in MARIADB_GROUPS:
            new_text = mycnf.remove_option(new_text, section, name)
    else:
        new_text = mycnf.set_option(text, group, name, checked.config)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S%f")
    if new_text != text:  # else the file already says so: nothing to write
        try:
            outcome.backup_file = _write_option_file(node, path, new_text, stamp, actor=actor,
                                                     job=job)  # fmt: skip
        except ExecutorError as e:  # the rename is the only step that changes the file
            outcome.error = f"cannot write {path}, it was left as it was: {e}"
            return
    outcome.undo = {"path": path, "backup": outcome.backup_file}
    if row["read_only"]:
        outcome.status = SettingChange.Status.RESTART_NEEDED
        return
    outcome.undo["old"] = _old_sql_value(row)
    try:
        _set_global(node, name, None if checked is None else checked.sql, actor=actor, job=job)
        after = _read_row(node, name, actor=actor, job=job)
    except ExecutorError as e:
        outcome.error = f"the server refused the value: {e}"
        after = None
    if after is not None:
        wanted = row["default_value"] if checked is None else checked.config
        if same_mariadb_value(after, wanted):
            outcome.status = SettingChange.Status.APPLIED
            outcome.new_value = redact(after["value"])
            return
        outcome.error = f"the server runs {after['value']!r}, not {wanted!r}"
    try:
        _undo_mariadb(node, name, outcome.undo, actor=actor, job=job)
        outcome.error += "; the file and the value were put back"
    except ExecutorError as e:
        outcome.error += f"; PUTTING IT BACK FAILED, check the server: {e}"


def _undo_mariadb(node: Node, name: str, undo: dict, *, actor, job) -> None:
    if undo.get("backup"):
        _restore_option_file(node, undo["path"], undo["backup"], actor=actor, job=job)
    if "old" in undo:
        _set_global(node, name, undo["old"], actor=actor, job=job)


# --- The record -------------------------------------------------------------------------------


def _record(target, name: str, value: str | None, outcomes: list[NodeOutcome], *, actor, job,
            source: str, request_id) -> list[SettingChange]:  # fmt: skip
    scope = SettingChange.Scope.CLUSTER if isinstance(target, Cluster) else SettingChange.Scope.NODE
    actor = actor if getattr(actor, "is_authenticated", False) else None
    failed = any(o.status == SettingChange.Status.FAILED for o in outcomes)
    shown = "reset to default" if value is None else f"= {redact(value)}"
    with transaction.atomic():
        rows = [
            SettingChange.objects.create(
                request_id=request_id,
                scope=scope,
                node=o.node,
                node_name=o.node.name,
                cluster=o.node.cluster,
                engine=o.node.service,
                name=name,
                operation=SettingChange.Operation.RESET if value is None else "set",
                old_value=o.old_value,
                new_value=o.new_value,
                unit=o.unit,
                context=o.context,
                config_file=o.config_file,
                backup_file=o.backup_file,
                status=o.status,
                error=redact(o.error),
                actor=actor,
                actor_name=actor.get_username() if actor else "",
                job=job,
            )  # fmt: skip
            for o in outcomes
        ]
        audit.append(
            audit.SETTING_CHANGED, actor=actor, source=source,
            target=f"{scope}:{target}", node=", ".join(o.node.name for o in outcomes),
            command=f"{name} {shown}",
            status=AuditEntry.Status.FAILED if failed else AuditEntry.Status.SUCCEEDED,
            output="; ".join(f"{o.node.name}: {o.status}" for o in outcomes),
            error="; ".join(f"{o.node.name}: {redact(o.error)}" for o in outcomes if o.error),
            job_id=job.pk if job else None,
        )  # fmt: skip
    return rows


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
