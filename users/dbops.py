"""Engine primitives on database accounts, through the executor only (issue 6, parts 3 and 4).

Each primitive takes a `users.DatabaseAccount`, runs on the right server (PostgreSQL: the
cluster's primary, as roles are cluster-wide and replicate to the standbys; MariaDB/MySQL: the
account's node, else the cluster's primary), reads the server's state first and does nothing
when the work is already done (it says so), and returns what it did. Every statement is audited
by the executor (intent, then outcome) under the action constant given.

Names are never pasted into SQL: PostgreSQL role names are `psycopg.sql.Identifier`s or bound
parameters; MySQL accounts go through `console.executor.sql.quote_mysql_account`. A name the
server would truncate or refuse is refused here, before anything is sent (`check_account_name`).

After a successful change the primitive mirrors the server fact it changed (`locked`) on the
DatabaseAccount row, as the account import would on its next run.
"""

import json
from dataclasses import dataclass, field

from psycopg import sql

from clusters.models import Node
from console import audit
from console.errors import ExpectedFailure
from console.executor import ExecutorError, SqlFailed, run_sql
from console.executor.sql import quote_mysql_account
from users.models import DatabaseAccount

PG_NAME_MAX_BYTES = 63  # NAMEDATALEN - 1: a longer name is silently truncated by the server
PG_RESERVED = {"public", "none", "current_role", "current_user", "session_user"}
MYSQL_UNKNOWN_THREAD = 1094


class AccountRefused(ExpectedFailure):
    """The account or name cannot be acted on; nothing was sent. The message names why."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class AccountMissing(ExpectedFailure):
    """The account does not exist on the server (dropped by hand, or never created)."""


@dataclass(frozen=True)
class Done:
    """What a primitive did: `changed` False means the server was already so (and `message`
    says it); `detail` carries figures (sessions ended, per node)."""

    changed: bool
    message: str
    detail: dict = field(default_factory=dict)


def is_postgres(account: DatabaseAccount) -> bool:
    return account.cluster.kind == "postgresql"


def check_account_name(name: str, kind: str, host: str = "") -> None:
    """Refuse, with a message, a name the server would misread, truncate or refuse. `kind` is the
    cluster kind. Quotes, spaces, upper case, unicode and SQL text are all fine: they are
    composed as identifiers."""
    if not name:
        raise AccountRefused("the account name cannot be empty", "name")
    if "\x00" in name:
        raise AccountRefused("the account name cannot contain a NUL character", "name")
    if kind == "postgresql":
        size = len(name.encode("utf-8"))
        if size > PG_NAME_MAX_BYTES:
            raise AccountRefused(
                f"a PostgreSQL role name is at most {PG_NAME_MAX_BYTES} bytes "
                f"(UTF-8); this one has {size}, and the server would cut it",
                "name",
            )
        if name.startswith("pg_"):
            raise AccountRefused("role names starting with pg_ are reserved by PostgreSQL", "name")
        if name.lower() in PG_RESERVED:
            raise AccountRefused(f'"{name}" is a reserved role name in PostgreSQL', "name")
        return
    try:
        quote_mysql_account(name, host or "%")
    except ValueError as e:
        raise AccountRefused(str(e), "host" if " host " in str(e) else "name") from None


def server_node(account: DatabaseAccount) -> Node:
    """The node that changes the account: PostgreSQL the cluster's primary (never a standby:
    it is read-only and receives roles by replication); MariaDB the account's node, else the
    cluster's primary, else its only server."""
    cluster = account.cluster
    servers = cluster.nodes.select_related("db_credential")  # the target needs the credential
    if is_postgres(account):
        node = servers.filter(service=Node.Service.POSTGRESQL, role=Node.Role.PRIMARY).first()
        if node is None:
            raise ExpectedFailure(f"cluster {cluster.name} has no primary to change roles on")
        return node
    if account.node_id and account.node.service == Node.Service.MARIADB:
        return account.node
    nodes = list(servers.filter(service=Node.Service.MARIADB).order_by("name"))
    primary = [n for n in nodes if n.role == Node.Role.PRIMARY]
    if primary:
        return primary[0]
    if len(nodes) == 1:
        return nodes[0]
    raise ExpectedFailure(f"cluster {cluster.name} has no MariaDB primary to change accounts on")


def target(account: DatabaseAccount, node: Node | None = None):
    node = node or server_node(account)
    return node.pg_target() if is_postgres(account) else node.mysql_target()


def mysql_account(account: DatabaseAccount) -> str:
    """`user`@`host`, quoted for a run_sql MySQL template (see quote_mysql_account)."""
    try:
        return quote_mysql_account(account.name, account.host or "%")
    except ValueError as e:
        raise AccountRefused(str(e), "name") from None


def role_identifier(account: DatabaseAccount) -> sql.Identifier:
    check_account_name(account.name, "postgresql")
    return sql.Identifier(account.name)


def _kw(actor, job, action: str, account: DatabaseAccount, job_log: bool = True) -> dict:
    return {"actor": actor, "job": job, "action": action, "label": account.login,
            "job_log": job_log}  # fmt: skip


# --- state ------------------------------------------------------------------------------------


def account_state(
    account: DatabaseAccount, *, actor=None, job=None, node: Node | None = None,
    job_log: bool = True,
):  # fmt: skip
    """The account as the server has it now: {"exists", "can_login", "locked", "expired",
    "superuser", "valid_until", "member_of", "sessions", "node"}. `can_login` is False when
    locked or expired. For PostgreSQL `node` may name a standby (to verify replication).
    `job_log=False` keeps the read out of the job's log (still audited, naming the job)."""
    node = node or server_node(account)
    kw = _kw(actor, job, audit.ACCOUNT_STATE_READ, account, job_log)
    if is_postgres(account):
        check_account_name(account.name, "postgresql")
        result = run_sql(node.pg_target(), "users:account-pg-state", {"role": account.name}, **kw)
        if not result.rows:
            return {"exists": False, "can_login": False, "locked": False, "node": node.name}
        row = dict(zip(result.columns, result.rows[0], strict=True))
        locked = not row["can_login"]
        return {
            "exists": True,
            "locked": locked,
            "expired": bool(row["expired"]),
            "can_login": not locked and not row["expired"],
            "superuser": bool(row["superuser"]),
            "valid_until": row["valid_until"],
            "member_of": list(row["member_of"] or []),
            "sessions": int(row["sessions"]),
            "node": node.name,
        }
    mysql_account(account)  # refuses a name the helper cannot quote, before anything is sent
    host = account.host or "%"
    params = (account.name, host, account.name, host)
    result = run_sql(node.mysql_target(), "users:account-mariadb-state", params, **kw)
    if not result.rows:
        return {"exists": False, "can_login": False, "locked": False, "node": node.name}
    row = dict(zip(result.columns, result.rows[0], strict=True))
    locked, expired = bool(row["locked"]), bool(row["password_expired"])
    member_of = row["member_of"]
    if isinstance(member_of, (bytes, str)):
        member_of = json.loads(member_of)
    return {
        "exists": True,
        "locked": locked,
        "expired": expired,
        "can_login": not locked and not expired,
        "superuser": bool(row["superuser"]),
        "valid_until": None,
        "plugin": row["plugin"] or "",
        "password_lifetime": None
        if row["password_lifetime"] is None
        else int(row["password_lifetime"]),
        "member_of": sorted(member_of or []),
        "sessions": int(row["sessions"]),
        "node": node.name,
    }


def existing(account: DatabaseAccount, state: dict) -> dict:
    if not state["exists"]:
        raise AccountMissing(f"{account.login} does not exist on {state['node']}")
    return state


def _mirror(account: DatabaseAccount, **facts) -> None:
    """Keep the inventory row in step with the server fact just changed (no audit entry of its
    own: the executor's entry records the change itself)."""
    DatabaseAccount.objects.filter(pk=account.pk).update(**facts)
    for name, value in facts.items():
        setattr(account, name, value)


# --- lock / unlock -----------------------------------------------------------------------------


def lock_account(
    account: DatabaseAccount, *, actor=None, job=None, node: Node | None = None,
    state: dict | None = None,
) -> Done:  # fmt: skip
    """Lock the account so that no new session can start: PostgreSQL `ALTER ROLE … NOLOGIN`,
    MariaDB/MySQL `ALTER USER … ACCOUNT LOCK`. Open sessions stay (see terminate_sessions).
    Idempotent: a locked account is left alone and the result says so. Raises AccountMissing
    when the account is not on the server. `node` and `state`: the account's server_node and
    what account_state just read there, when the caller has them (they are then not looked up
    and read twice)."""
    return _set_lock(account, True, actor=actor, job=job, node=node, state=state)


def unlock_account(account: DatabaseAccount, *, actor=None, job=None) -> Done:
    """Undo lock_account: PostgreSQL `ALTER ROLE … LOGIN`, MariaDB `ACCOUNT UNLOCK`.
    Idempotent as lock_account. An expired VALID UNTIL or password stays as it is."""
    return _set_lock(account, False, actor=actor, job=job)


def _set_lock(account: DatabaseAccount, lock: bool, *, actor, job, node=None, state=None) -> Done:
    node = node or server_node(account)
    if state is None or state["node"] != node.name:
        state = account_state(account, actor=actor, job=job, node=node)
    state = existing(account, state)
    verb = "locked" if lock else "unlocked"
    if state["locked"] == lock:
        _mirror(account, locked=lock)
        return Done(False, f"{account.login} was already {verb} on {node.name}")
    action = audit.ACCOUNT_LOCKED if lock else audit.ACCOUNT_UNLOCKED
    if is_postgres(account):
        query = sql.SQL("ALTER ROLE {} {}").format(
            role_identifier(account), sql.SQL("NOLOGIN" if lock else "LOGIN")
        )
        run_sql(node.pg_target(), query, **_kw(actor, job, action, account))
    else:
        clause = "ACCOUNT LOCK" if lock else "ACCOUNT UNLOCK"
        query = f"ALTER USER {mysql_account(account)} {clause}"
        run_sql(node.mysql_target(), query, **_kw(actor, job, action, account))
    _mirror(account, locked=lock)
    return Done(True, f"{account.login} {verb} on {node.name}")


# --- sessions ----------------------------------------------------------------------------------


def terminate_sessions(account: DatabaseAccount, *, actor=None, job=None) -> int:
    """End the account's open sessions and return how many were ended. PostgreSQL: every
    server of the cluster (a standby serves read sessions of the same role), waiting for each
    backend to be gone on 14+. MariaDB/MySQL: `KILL CONNECTION` of the user's threads from a
    client host the account's host pattern matches. Idempotent: no session, nothing done, 0.
    A server that cannot be reached raises (ExecutorError) after the others were done."""
    return terminate_sessions_detail(account, actor=actor, job=job).detail["terminated"]


def terminate_sessions_detail(account: DatabaseAccount, *, actor=None, job=None) -> Done:
    """terminate_sessions, with the count per node in `detail["nodes"]`."""
    kw = _kw(actor, job, audit.ACCOUNT_SESSIONS_TERMINATED, account)
    per_node: dict[str, int] = {}
    errors: list[str] = []
    if is_postgres(account):
        check_account_name(account.name, "postgresql")
        primary = server_node(account)
        nodes = [primary, *account.cluster.nodes.select_related("db_credential")
                 .filter(service=Node.Service.POSTGRESQL).exclude(pk=primary.pk)
                 .order_by("name")]  # fmt: skip
        for node in nodes:
            name = (
                "users:account-pg-terminate-nowait"
                if node.version_num and node.version_num < 140000
                else "users:account-pg-terminate"
            )
            try:
                result = run_sql(node.pg_target(), name, {"role": account.name}, **kw)
            except ExecutorError as e:
                errors.append(f"{node.name}: {e}")
                continue
            per_node[node.name] = sum(1 for _pid, ended in result.rows if ended)
    else:
        node = server_node(account)
        mysql_account(account)  # refuses an unquotable name before anything is sent
        params = (account.name, account.host or "%")
        result = run_sql(node.mysql_target(), "users:account-mariadb-sessions", params, **kw)
        ended = 0
        for thread_id, _client in result.rows:
            try:
                run_sql(node.mysql_target(), "KILL CONNECTION %s", (int(thread_id),), **kw)
                ended += 1
            except SqlFailed as e:
                if f"error {MYSQL_UNKNOWN_THREAD}:" not in str(e):
                    raise  # it ended meanwhile otherwise: nothing to do
        per_node[node.name] = ended
    total = sum(per_node.values())
    if errors:
        raise ExecutorError(f"sessions of {account.login}: {total} ended, but " + "; ".join(errors))
    message = (
        f"{total} session(s) of {account.login} ended"
        if total
        else f"{account.login} had no open session"
    )
    return Done(bool(total), message, {"terminated": total, "nodes": per_node})


__all__ = [
    "AccountMissing",
    "AccountRefused",
    "Done",
    "account_state",
    "check_account_name",
    "lock_account",
    "server_node",
    "terminate_sessions",
    "terminate_sessions_detail",
    "unlock_account",
]
