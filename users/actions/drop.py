"""Dropping an account (issue 6, part 3), the one lifecycle action that must first find out what
the account owns: `owned_objects` reads it, `describe_owned` says it in one line for a person,
and `drop_account` refuses before any change when the drop would lose objects, else drops in the
safe order. Apart from users.actions.lifecycle (create, rotate, the jobs that run them all)
because reading ownership across every database of a server is a concern of its own.

Same guarantees as users.actions.lifecycle: through the executor on the account's server (each
statement audited there, intent then outcome), the server read first and nothing done, saying
so, when the account is already gone; the console side (the row marked gone) recorded with its
audit entry in one transaction.
"""

from django.utils import timezone
from psycopg import sql

from console import audit
from console.errors import ExpectedFailure
from console.executor import run_sql
from users import dbops
from users.actions._records import executor_kw as _kw
from users.actions._records import record as _record
from users.dbops import AccountRefused
from users.models import DatabaseAccount

_CATALOGS = {
    "pg_class": "relation",
    "pg_namespace": "schema",
    "pg_proc": "function",
    "pg_type": "type",
    "pg_database": "database",
    "pg_tablespace": "tablespace",
    "pg_default_acl": "default privileges",
}


def owned_objects(account: DatabaseAccount, *, actor=None, job=None) -> dict:
    """What the account owns, read before a drop. PostgreSQL: {"databases": {db: {"owned":
    n, "privileges": n, "objects": [(kind, name)...], "connectable": bool}}, "shared": [owned
    databases, tablespaces]}; MariaDB: {"definer_of": [(kind, name)]}."""
    node = dbops.server_node(account)
    kw = _kw(account, audit.ACCOUNT_OWNED_READ, actor=actor, job=job)
    if not dbops.is_postgres(account):
        definer = f"{account.name}@{account.host or '%'}"
        result = run_sql(node.mysql_target(), "users:account-mariadb-definer", (definer,) * 4, **kw)
        return {"definer_of": [tuple(r) for r in result.rows]}
    result = run_sql(node.pg_target(), "users:account-pg-owned", {"role": account.name}, **kw)
    databases: dict[str, dict] = {}
    shared: list[str] = []
    for database, connectable, catalog, deptype, count, names in result.rows:
        if not database:
            if deptype == "o":
                kind = _CATALOGS.get(catalog, catalog)
                shared.append(f"{kind} {names}" if names else f"{count} {kind}(s)")
            continue
        entry = databases.setdefault(
            database, {"owned": 0, "privileges": 0, "objects": [], "connectable": connectable}
        )
        entry["owned" if deptype == "o" else "privileges"] += count
    for database, entry in databases.items():
        if entry["owned"] and entry["connectable"]:
            listed = run_sql(
                node.pg_target(database),
                "users:account-pg-owned-objects",
                {"role": account.name},
                **kw,
            )
            entry["objects"] = [tuple(r) for r in listed.rows]
    return {"databases": databases, "shared": shared}


_NAMED = 10  # objects named per database in a report line


def describe_owned(owned: dict) -> str:
    """One line for a person: what a drop would have to hand over."""
    if "definer_of" in owned:
        return ", ".join(f"{kind} {name}" for kind, name in owned["definer_of"])
    parts = []
    for db, e in owned["databases"].items():
        if not e["owned"]:
            continue
        named = ", ".join(f"{kind} {name}" for kind, name in e["objects"][:_NAMED])
        more = e["owned"] - min(len(e["objects"]), _NAMED)
        parts.append(
            f"{e['owned']} object(s) in {db}"
            + (f" ({named}" if named else "")
            + (f" and {more} more" if named and more > 0 else "")
            + (")" if named else "")
        )
    return "; ".join(parts + [f"owns {s}" for s in owned["shared"]])


def drop_account(
    account: DatabaseAccount, *, reassign_to: str = "", actor=None, job=None
) -> dbops.Done:
    """Drop the login in the safe order. PostgreSQL: refuse, before any change, when the role
    owns objects and no role to reassign them to is named (they would be lost); else lock it
    (no new session), terminate its sessions, and in every database where it owns or holds
    something: REASSIGN OWNED BY it TO the chosen role, then DROP OWNED BY it (its privileges
    only, once nothing is owned), then DROP ROLE. MariaDB: refuse while views, routines,
    triggers or events run as it (DEFINER); else lock, kill its sessions, DROP USER.
    The report of what it owned is returned and kept in the audit entry. Safe to retry: an
    account already gone from the server is only marked gone."""
    node = dbops.server_node(account)
    state = dbops.account_state(account, actor=actor, job=job, node=node)
    if not state["exists"]:
        if account.gone_at is None:
            _record(
                audit.ACCOUNT_DROPPED,
                account,
                f"{account.login} was already gone from {node.name}",
                actor=actor,
                job=job,
                gone_at=timezone.now(),
            )
        return dbops.Done(False, f"{account.login} does not exist on {node.name}: nothing to drop")
    owned = owned_objects(account, actor=actor, job=job)
    report = describe_owned(owned)
    if dbops.is_postgres(account):
        _check_reassign(account, owned, reassign_to, node, actor=actor, job=job)
    elif owned["definer_of"]:
        raise AccountRefused(
            f"{account.login} is the DEFINER of {report}: they would stop "
            "working. Change their DEFINER first."
        )
    dbops.lock_account(account, actor=actor, job=job)
    ended = dbops.terminate_sessions(account, actor=actor, job=job)
    _drop_on_server(account, owned, reassign_to, node, actor=actor, job=job)
    if dbops.account_state(account, actor=actor, job=job, node=node)["exists"]:
        raise ExpectedFailure(f"{account.login} is still on {node.name} after the drop")
    message = (
        f"dropped {account.login} on {node.name}; {ended} session(s) ended; "
        + (f"owned: {report}" if report else "it owned nothing")
        + (f"; reassigned to {reassign_to}" if reassign_to and report else "")
    )
    _record(
        audit.ACCOUNT_DROPPED,
        account,
        message,
        actor=actor,
        job=job,
        gone_at=timezone.now(),
        locked=True,
    )
    return dbops.Done(True, message, {"owned": owned, "sessions": ended})


def _drop_on_server(account, owned: dict, reassign_to: str, node, *, actor, job) -> None:
    """The drop's statements, once the account is locked and its sessions ended. PostgreSQL: in
    every database where it owns or holds something (else in postgres), REASSIGN OWNED BY it TO
    the chosen role when one is named, then DROP OWNED BY it; then DROP ROLE. MariaDB: DROP USER.
    """
    kw = _kw(account, audit.ACCOUNT_DROPPED, actor=actor, job=job)
    if dbops.is_postgres(account):
        role = dbops.role_identifier(account)
        databases = [db for db, e in owned["databases"].items() if e["connectable"]]
        for database in databases or ["postgres"]:
            target = node.pg_target(database)
            if reassign_to:
                run_sql(
                    target,
                    sql.SQL("REASSIGN OWNED BY {} TO {}").format(role, sql.Identifier(reassign_to)),
                    **kw,
                )
            run_sql(target, sql.SQL("DROP OWNED BY {}").format(role), **kw)
        run_sql(node.pg_target(), sql.SQL("DROP ROLE {}").format(role), **kw)
    else:
        run_sql(node.mysql_target(), f"DROP USER {dbops.mysql_account(account)}", **kw)


def _check_reassign(account, owned: dict, reassign_to: str, node, *, actor, job) -> None:
    owns = any(e["owned"] for e in owned["databases"].values()) or owned["shared"]
    if owns and not reassign_to:
        raise AccountRefused(
            f"{account.login} owns {describe_owned(owned)}: dropping it would "
            "lose them. Choose a role to reassign them to.",
            "reassign_to",
        )
    closed = [db for db, e in owned["databases"].items() if not e["connectable"]]
    if closed:
        raise AccountRefused(
            f"{account.login} has objects or privileges in databases that "
            f"allow no connections ({', '.join(closed)}): clean them by hand"
        )
    if not reassign_to:
        return
    if reassign_to == account.name:
        raise AccountRefused("reassign the objects to another role", "reassign_to")
    dbops.check_account_name(reassign_to, "postgresql")
    probe = DatabaseAccount(cluster=account.cluster, name=reassign_to)
    if not dbops.account_state(probe, actor=actor, job=job, node=node)["exists"]:
        raise AccountRefused(f"there is no role {reassign_to} on {node.name}", "reassign_to")
