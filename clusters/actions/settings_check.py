"""Checking a proposed setting change before anything is sent: the parameter exists on the
node, the server takes it from a file the console may change, the value passes the server's
own type, limits and choices (clusters.serversettings), the console keeps its access after a
restart, and the libraries a *_libraries list names exist on the server.

Separate from the change itself because two roads use it: the change form refuses a value
with no remote call at all (clusters.forms.settings), and the change job checks every node
again, against the row it has just read, before it sends anything (clusters.actions.settings).
"""

from clusters.actions.settings_read import LABEL, READ_TIMEOUT
from clusters.models import Node
from clusters.serversettings import (
    ADDRESS_SETTINGS,
    PG_REFUSED,
    SettingRefused,
    check_mariadb_value,
    check_pg_value,
    lost_access,
    parse_address_list,
)
from console.errors import ExpectedFailure
from console.executor import run_sql


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
