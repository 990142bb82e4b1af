"""Applying a checked setting change on one node, verifying it, and putting it back.

PostgreSQL: `ALTER SYSTEM SET name = value` (psycopg.sql Identifier and Literals), then
`pg_reload_conf()`, then the parameter is read back once the server has reloaded (its
pg_conf_load_time moved): applied, or pending_restart (restart needed), or refused by the
server (an error on its postgresql.auto.conf entry, or errors in the configuration files) —
then the previous entry is written back and reloaded, so the server is left as it was.

MariaDB: the option is written in the [mysqld] group (or the server group already setting it)
of the option file the server read it from (else Node.config_file, else the file most of its
options came from), over SSH: a dated backup copy next to it, the new text written to a
temporary copy and renamed over the file (comments and other lines kept, clusters.mycnf); a
dynamic variable is also SET GLOBAL and read back, a read-only one is "restart needed". A
failure puts the file back from the backup and the old value back with SET GLOBAL.

What happens on one node, apart from the request that runs it on a node or on each node of a
cluster, puts back the nodes changed before one that failed and records the outcomes
(clusters.actions.settings). Every remote change is audited by the executor as
setting.changed.
"""

import time
from dataclasses import dataclass, field

from django.utils import timezone
from psycopg import sql

from clusters import mycnf
from clusters.actions.settings_check import check_change
from clusters.actions.settings_read import (
    LABEL,
    MARIADB_GROUPS,
    READ_TIMEOUT,
    read_option_file,
    read_pg_settings,
    read_row,
    same_mariadb_value,
    sudo_user,
)
from clusters.models import Node, SettingChange
from clusters.serversettings import (
    SettingRefused,
    check_mariadb_name,
    check_mariadb_value,
    pg_literals_of_file_value,
)
from console import audit
from console.executor import ExecutorError, run_command, run_sql
from console.executor.redact import redact
from console.executor.sql import quote_mysql_identifier

RELOAD_DEADLINE = 10.0  # seconds the server is given to reload its configuration
PENDING_NOT_APPLIED = "setting could not be applied"


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


# --- One node ---------------------------------------------------------------------------------


def refused_outcome(node: Node, row: dict | None, message: str) -> NodeOutcome:
    """A failed outcome for `node` with `message`, its old value, unit and context from `row`."""
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


def apply_change(node: Node, row: dict, name: str, value: str | None, *, actor,
                 job) -> NodeOutcome:  # fmt: skip
    """Send the change to one node whose row was read and checked; a node whose server refuses
    it is put back as it was (the outcome says so)."""
    checked = check_change(node, row, name, value, confirmed=True)
    outcome = refused_outcome(node, row, "")
    outcome.new_value = "" if checked is None else redact(checked.text)
    if node.service == Node.Service.POSTGRESQL:
        _apply_pg(outcome, row, name, checked, actor=actor, job=job)
    else:
        _apply_mariadb(outcome, row, name, checked, actor=actor, job=job)
    return outcome


def undo_change(outcome: NodeOutcome, name: str, *, actor, job) -> None:
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
    call = {"actor": actor, "job": job, "label": LABEL, "sudo_user": sudo_user(node),
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
                sudo_user=sudo_user(node), action=audit.SETTING_CHANGED,
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


def _rewrite_option_file(outcome: NodeOutcome, row: dict, name: str, checked, *, actor,
                         job) -> bool:  # fmt: skip
    """Write the change into the node's option file (nothing written when the file already
    says so); False, the error in `outcome` and the file as it was, when it cannot."""
    node = outcome.node
    path = row.get("config_file") or ""
    if not path:
        outcome.error = (f"the console does not know {node.name}'s option file (set the node's "
                         "config file); nothing was changed")  # fmt: skip
        return False
    outcome.config_file = path
    try:
        text = read_option_file(node, path, actor=actor, job=job)
    except ExecutorError as e:
        outcome.error = f"cannot read {path}, nothing was changed: {e}"
        return False
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
            return False
    outcome.undo = {"path": path, "backup": outcome.backup_file}
    return True


def _apply_mariadb(outcome: NodeOutcome, row: dict, name: str, checked, *, actor, job) -> None:
    node = outcome.node
    if not _rewrite_option_file(outcome, row, name, checked, actor=actor, job=job):
        return
    if row["read_only"]:
        outcome.status = SettingChange.Status.RESTART_NEEDED
        return
    outcome.undo["old"] = _old_sql_value(row)
    try:
        _set_global(node, name, None if checked is None else checked.sql, actor=actor, job=job)
        after = read_row(node, name, actor=actor, job=job)
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
