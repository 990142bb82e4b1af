"""Account lifecycle, continued: roles, privileges and password expiry (issue 6, part 3).

Same guarantees as users.actions.lifecycle: through the executor on the account's server, the
server read first (nothing done, and said, when already so), the change read back, the console
side recorded with its audit entry."""

from datetime import datetime

from django.utils import timezone
from psycopg import sql

from console import audit
from console.errors import ExpectedFailure
from console.executor import run_sql
from console.executor.sql import quote_mysql_identifier
from users import dbops
from users.actions._records import executor_kw as _kw
from users.actions._records import record as _record
from users.dbops import AccountRefused
from users.models import DatabaseAccount

PG_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
PG_PRIVILEGES = ("CONNECT", "USAGE", *PG_TABLE_PRIVILEGES)
MYSQL_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "EXECUTE")
MARIADB_EXPIRY = ("now", "interval", "never", "default")


# --- roles -------------------------------------------------------------------------------------


def _check_role_name(account, role: str) -> None:
    if not role or "\x00" in role:
        raise AccountRefused("name the role to grant or revoke", "role")
    if dbops.is_postgres(account) and len(role.encode("utf-8")) > dbops.PG_NAME_MAX_BYTES:
        raise AccountRefused("a PostgreSQL role name is at most 63 bytes", "role")
    if role == account.name:
        raise AccountRefused("a role cannot be granted to itself", "role")


def _role_statement(account, role: str, grant: bool):
    if dbops.is_postgres(account):
        template = "GRANT {} TO {}" if grant else "REVOKE {} FROM {}"
        return sql.SQL(template).format(sql.Identifier(role), dbops.role_identifier(account))
    try:
        quoted = quote_mysql_identifier(role)
    except ValueError as e:
        raise AccountRefused(str(e), "role") from None
    verb = "GRANT {} TO {}" if grant else "REVOKE {} FROM {}"
    return verb.format(quoted, dbops.mysql_account(account))


def grant_role(account: DatabaseAccount, role: str, *, actor=None, job=None) -> dbops.Done:
    """Make the account a member of `role` (PostgreSQL GRANT role TO …; MariaDB GRANT role TO
    user@host). Idempotent; the membership is read back from the server."""
    return _change_role(account, role, True, actor=actor, job=job)


def revoke_role(account: DatabaseAccount, role: str, *, actor=None, job=None) -> dbops.Done:
    """Undo grant_role. Idempotent; read back from the server."""
    return _change_role(account, role, False, actor=actor, job=job)


def _change_role(account, role: str, grant: bool, *, actor, job) -> dbops.Done:
    _check_role_name(account, role)
    statement = _role_statement(account, role, grant)
    node = dbops.server_node(account)
    state = dbops.existing(account, dbops.account_state(account, actor=actor, job=job, node=node))
    verb = "granted to" if grant else "revoked from"
    if (role in state["member_of"]) == grant:
        return dbops.Done(False, f"{role} was already {verb} {account.login}")
    action = audit.ACCOUNT_GRANTED if grant else audit.ACCOUNT_REVOKED
    target = node.pg_target() if dbops.is_postgres(account) else node.mysql_target()
    run_sql(target, statement, **_kw(account, action, actor=actor, job=job))
    after = dbops.account_state(account, actor=actor, job=job, node=node)
    if (role in after["member_of"]) != grant:
        raise ExpectedFailure(f"{role} is not {verb} {account.login} on {node.name} after all")
    message = f"{role} {verb} {account.login} on {node.name}"
    _record(action, account, message, actor=actor, job=job, member_of=after["member_of"])
    return dbops.Done(True, message, {"member_of": after["member_of"]})


# --- privileges --------------------------------------------------------------------------------


def _check_object_name(value: str, what: str, account) -> None:
    if not value:
        raise AccountRefused(f"name the {what}", what)
    if "\x00" in value:
        raise AccountRefused(f"a {what} name cannot contain a NUL character", what)
    if dbops.is_postgres(account) and len(value.encode("utf-8")) > dbops.PG_NAME_MAX_BYTES:
        raise AccountRefused(f"a {what} name is at most 63 bytes", what)


def _mysql_db_pattern(database: str) -> str:
    """The database as GRANT reads it, wildcards escaped: `_` and `%` are wildcards there."""
    if "\\" in database:
        raise AccountRefused("a database name with a backslash is not managed here", "database")
    return database.replace("_", "\\_").replace("%", "\\%")


def privileges(
    account: DatabaseAccount, *, database: str, schema: str = "public", actor=None, job=None
) -> dict[str, list[str]]:
    """The account's own privileges, read from the server: PostgreSQL {"database": [...],
    "schema": [...], "tables": [privileges every table of the schema has]}; MariaDB
    {"database": [privileges on database.*]}."""
    node = dbops.server_node(account)
    kw = _kw(account, audit.ACCOUNT_STATE_READ, actor=actor, job=job)
    if dbops.is_postgres(account):
        params = {"role": account.name, "schema": schema}
        result = run_sql(node.pg_target(database), "users:account-pg-privileges", params, **kw)
        found: dict[str, list[str]] = {"database": [], "schema": [], "tables": []}
        for kind, privilege, objects, total in result.rows:
            if kind != "tables" or objects == total:
                found[kind].append(privilege)
        return found
    params = (account.name, account.host or "%")
    result = run_sql(node.mysql_target(), "users:account-mariadb-privileges", params, **kw)
    pattern = _mysql_db_pattern(database)
    for row in result.rows:
        if row[0] == pattern:
            flags = dict(zip(result.columns[1:], row[1:], strict=True))
            return {"database": [p.upper() for p, on in flags.items() if on]}
    return {"database": []}


def _pg_privilege_statements(account, wanted: list[str], schema: str, database: str, grant):
    role, verb = dbops.role_identifier(account), "GRANT" if grant else "REVOKE"
    to = "TO" if grant else "FROM"
    statements = []
    if "CONNECT" in wanted:
        statements.append(
            sql.SQL(f"{verb} CONNECT ON DATABASE {{}} {to} {{}}").format(
                sql.Identifier(database), role
            )
        )
    if "USAGE" in wanted:
        statements.append(
            sql.SQL(f"{verb} USAGE ON SCHEMA {{}} {to} {{}}").format(sql.Identifier(schema), role)
        )
    table = [p for p in PG_TABLE_PRIVILEGES if p in wanted]
    if table:
        statements.append(
            sql.SQL(f"{verb} {{}} ON ALL TABLES IN SCHEMA {{}} {to} {{}}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in table), sql.Identifier(schema), role
            )
        )
    return statements


def grant_privileges(
    account, *, privileges_: list[str], database: str, schema: str = "public", actor=None, job=None
) -> dbops.Done:
    """Grant a sensible set of privileges. PostgreSQL: CONNECT on the database, USAGE on the
    schema, SELECT/INSERT/UPDATE/DELETE on all tables of the schema (those that exist now);
    MariaDB: SELECT/INSERT/UPDATE/DELETE/EXECUTE on database.*. Idempotent; read back."""
    return _change_privileges(account, privileges_, database, schema, True, actor=actor, job=job)


def revoke_privileges(
    account, *, privileges_: list[str], database: str, schema: str = "public", actor=None, job=None
) -> dbops.Done:
    """Undo grant_privileges for the privileges named. Idempotent; read back."""
    return _change_privileges(account, privileges_, database, schema, False, actor=actor, job=job)


def _change_privileges(account, wanted, database, schema, grant: bool, *, actor, job):
    allowed = PG_PRIVILEGES if dbops.is_postgres(account) else MYSQL_PRIVILEGES
    wanted = [p.upper() for p in wanted]
    unknown = [p for p in wanted if p not in allowed]
    if not wanted or unknown:
        raise AccountRefused(f"choose privileges among {', '.join(allowed)}", "privileges")
    _check_object_name(database, "database", account)
    if dbops.is_postgres(account):
        _check_object_name(schema, "schema", account)
    node = dbops.server_node(account)
    dbops.existing(account, dbops.account_state(account, actor=actor, job=job, node=node))
    before = privileges(account, database=database, schema=schema, actor=actor, job=job)
    held = {p for kind in before.values() for p in kind}
    todo = [p for p in wanted if (p in held) != grant]
    where = f"{database}.{schema}" if dbops.is_postgres(account) else f"{database}.*"
    verb = "granted to" if grant else "revoked from"
    if not todo:
        return dbops.Done(
            False,
            f"{', '.join(wanted)} on {where} already {verb} {account.login}",
            {"privileges": before},
        )
    action = audit.ACCOUNT_GRANTED if grant else audit.ACCOUNT_REVOKED
    kw = _kw(account, action, actor=actor, job=job)
    if dbops.is_postgres(account):
        for statement in _pg_privilege_statements(account, todo, schema, database, grant):
            run_sql(node.pg_target(database), statement, **kw)
    else:
        pattern = quote_mysql_identifier(_mysql_db_pattern(database))
        template = "GRANT {} ON {}.* TO {}" if grant else "REVOKE {} ON {}.* FROM {}"
        run_sql(
            node.mysql_target(),
            template.format(", ".join(todo), pattern, dbops.mysql_account(account)),
            **kw,
        )
    after = privileges(account, database=database, schema=schema, actor=actor, job=job)
    now_held = {p for kind in after.values() for p in kind}
    missed = [p for p in todo if (p in now_held) != grant]
    if missed:
        raise ExpectedFailure(
            f"{', '.join(missed)} on {where}: not {verb} {account.login} on read-back"
        )
    message = f"{', '.join(todo)} on {where} {verb} {account.login} on {node.name}"
    _record(action, account, message, actor=actor, job=job)
    return dbops.Done(True, message, {"privileges": after})


# --- password expiry ---------------------------------------------------------------------------


def set_password_expiry(
    account: DatabaseAccount,
    *,
    until: datetime | None = None,
    mariadb: str = "",
    days: int | None = None,
    actor=None,
    job=None,
) -> dbops.Done:
    """PostgreSQL: VALID UNTIL `until`, or none (infinity) when `until` is None. MariaDB, where
    expiry is a password lifetime: `mariadb` "now" (PASSWORD EXPIRE), "interval" (`days` after
    the last change), "never" or "default" (the server's default_password_lifetime).
    Idempotent where the server shows the setting; read back."""
    node = dbops.server_node(account)
    state = dbops.existing(account, dbops.account_state(account, actor=actor, job=job, node=node))
    kw = _kw(account, audit.ACCOUNT_EXPIRY_SET, actor=actor, job=job)
    if dbops.is_postgres(account):
        if until is not None and timezone.is_naive(until):
            raise AccountRefused("give the expiry time with its time zone", "until")
        current = state["valid_until"]
        if current == until:
            return dbops.Done(False, f"{account.login} already has this VALID UNTIL")
        value = "infinity" if until is None else until.isoformat()
        run_sql(
            node.pg_target(),
            sql.SQL("ALTER ROLE {} VALID UNTIL {}").format(
                dbops.role_identifier(account), sql.Literal(value)
            ),
            **kw,
        )
        after = dbops.account_state(account, actor=actor, job=job, node=node)
        if after["valid_until"] != until:
            raise ExpectedFailure(f"{account.login}: VALID UNTIL reads {after['valid_until']}")
        shown = "none" if until is None else f"{until:%Y-%m-%d %H:%M %Z}"
        message = f"VALID UNTIL of {account.login} set to {shown}"
        _record(
            audit.ACCOUNT_EXPIRY_SET,
            account,
            message,
            actor=actor,
            job=job,
            valid_until=until,
            expired=after["expired"],
        )
        return dbops.Done(True, message)
    if mariadb not in MARIADB_EXPIRY:
        raise AccountRefused(f"choose one of {', '.join(MARIADB_EXPIRY)}", "mariadb")
    if mariadb == "interval" and not (days and 0 < days <= 65535):
        raise AccountRefused("the lifetime is between 1 and 65535 days", "days")
    lifetime = {"interval": days, "never": 0, "default": None}.get(mariadb, "now")
    if (lifetime == "now" and state["expired"]) or (
        lifetime != "now" and state["password_lifetime"] == lifetime
    ):
        return dbops.Done(False, f"{account.login} already has this password expiry")
    clause = {
        "now": "PASSWORD EXPIRE",
        "never": "PASSWORD EXPIRE NEVER",
        "default": "PASSWORD EXPIRE DEFAULT",
        "interval": f"PASSWORD EXPIRE INTERVAL {int(days or 0)} DAY",
    }[mariadb]
    run_sql(node.mysql_target(), f"ALTER USER {dbops.mysql_account(account)} {clause}", **kw)
    after = dbops.account_state(account, actor=actor, job=job, node=node)
    ok = after["expired"] if lifetime == "now" else after["password_lifetime"] == lifetime
    if not ok:
        raise ExpectedFailure(f"{account.login}: the password expiry did not read back")
    message = f"password expiry of {account.login}: {clause}"
    _record(
        audit.ACCOUNT_EXPIRY_SET, account, message, actor=actor, job=job, expired=after["expired"]
    )
    return dbops.Done(True, message)
