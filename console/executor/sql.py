"""SQL on managed servers: PostgreSQL (psycopg 3) and MySQL/MariaDB (mysqlclient), audited.

Every call opens one connection in autocommit, runs one statement with a server-side timeout
and a client-side one, and closes it. SQL is a `psycopg.sql.Composable`, a string with bound
parameters (`%s`, `%(name)s`), or the name of a file shipped with an app ("clusters:roles-list"
is clusters/sql/roles-list.sql). MySQL statements are always format templates (`%s`
placeholders, a literal percent sign written `%%`), with identifiers and accounts quoted by
`quote_mysql_identifier` and `quote_mysql_account`, never by hand.
"""

import re
import time
from pathlib import Path

import MySQLdb
from django.apps import apps
from django.conf import settings
from psycopg import sql

from console import audit
from console.executor import MysqlTarget, PgTarget, SqlResult
from console.executor._audit import ensure_outside_transaction, remote_call
from console.executor.connection import (
    my_client_timeout,
    my_connect,
    my_failure,
    my_set_statement_timeout,
    my_statement,
    pg_open,
    pg_statement,
)

_QUERY_NAME = re.compile(r"^(?P<app>[a-z][a-z0-9_]*):(?P<name>[a-z0-9][a-z0-9-]*)$")


def load_sql(app: str, name: str) -> sql.SQL:
    """The SQL in `<app>/sql/<name>.sql` as a psycopg `SQL`, for `.format(...)` by the caller."""
    return sql.SQL(read_sql_file(app, name))


def read_sql_file(app: str, name: str) -> str:
    """The text of `<app>/sql/<name>.sql`; names are `<area>-<verb>`, nothing else is read."""
    match = _QUERY_NAME.match(f"{app}:{name}")
    if match is None:
        raise ValueError(f"not a query name: {app}:{name}")
    path = Path(apps.get_app_config(app).path) / "sql" / f"{name}.sql"
    return path.read_text(encoding="utf-8")


def resolve_query(query) -> sql.Composable | str:
    """The query itself, or the text of the named file ("clusters:roles-list") it names."""
    if isinstance(query, str):
        match = _QUERY_NAME.match(query)
        if match:
            return read_sql_file(match["app"], match["name"])
    return query


def db_target(target) -> PgTarget | MysqlTarget:
    """The PgTarget or MysqlTarget itself, or the one a node gives (`pg_target()`...)."""
    if isinstance(target, (PgTarget, MysqlTarget)):
        return target
    for method in ("pg_target", "mysql_target"):
        if hasattr(target, method):
            return getattr(target, method)()
    raise TypeError(f"not a database target: {type(target).__name__}")


def run_sql(
    target,
    query,
    params=None,
    *,
    actor=None,
    job=None,
    action: str = audit.REMOTE_SQL,
    source: str | None = None,
    label: str = "",
    timeout: float | None = None,
    secrets=(),
    dbname: str | None = None,
    job_log: bool = True,
) -> SqlResult:
    """Run one statement on the target's server and return its columns, rows and rowcount.

    Guarantees: a `started` audit entry before connecting and an outcome entry after, outside
    any transaction (inside one this raises RuntimeError first); the SQL is recorded as sent with
    parameters as placeholders (never their values), redacted of the target's password and
    `secrets`; the outcome records the row count and columns, not the rows. The statement is
    cancelled by the server after `timeout` seconds and, should the server not act (a commit
    waiting for a synchronous standby), by the client soon after: SqlFailed either way.
    With `job_log=False` the call is audited (naming the job) but not written to the job's log.
    """
    ensure_outside_transaction()
    t = db_target(target)
    query = resolve_query(query)
    timeout = timeout or settings.EXECUTOR_STATEMENT_TIMEOUT
    text = query.as_string(None) if isinstance(query, sql.Composable) else str(query)
    with remote_call(
        action=action,
        node=t.name,
        command=text,
        actor=actor,
        job=job,
        source=source,
        label=label,
        secrets=(*secrets, t.password),
        job_log=job_log,
    ) as call:
        if isinstance(t, PgTarget):
            columns, rows, rowcount, notices = _pg_execute(t, query, params, timeout, dbname)
        else:
            columns, rows, rowcount, notices = _my_execute(t, query, params, timeout, dbname)
        call.output = outcome_summary(columns, rows, rowcount, notices)
    return SqlResult(
        columns=columns,
        rows=rows,
        rowcount=rowcount,
        duration_ms=call.duration_ms,
        audit_id=call.outcome_id,
    )


def outcome_summary(
    columns: list[str], rows: list[tuple], rowcount: int, notices: list[str]
) -> str:
    """What a statement's outcome entry records: the row count and columns, never the rows."""
    if columns:
        head = f"{len(rows)} rows; columns: {', '.join(columns)}"
    else:
        head = f"rowcount {rowcount}"
    return "\n".join([head, *notices])


# --- One connection per statement -------------------------------------------------------------


def _pg_execute(t: PgTarget, query, params, timeout: float, dbname: str | None):
    dbname = dbname or t.dbname
    conn, notices = pg_open(t, dbname, timeout)
    try:
        return pg_statement(conn, t, dbname, query, params, timeout, notices)
    finally:
        conn.close()


def _my_execute(t: MysqlTarget, query, params, timeout: float, dbname: str | None):
    if isinstance(query, sql.Composable):
        raise TypeError("psycopg.sql is for PostgreSQL; quote MySQL names with quote_mysql_*")
    client_timeout = my_client_timeout(timeout)
    conn = my_connect(t, dbname or t.database, client_timeout)
    thread_id = conn.thread_id()
    started = time.monotonic()
    try:
        my_set_statement_timeout(conn, timeout)
        try:
            return my_statement(conn, query, params)
        except MySQLdb.Error as e:
            raise my_failure(t, e, timeout, client_timeout, started, thread_id) from None
    finally:
        conn.close()


def quote_mysql_identifier(name: str) -> str:
    """Quote a database, table or column name for MySQL/MariaDB: in backticks, inner backticks
    doubled. Raises ValueError for a name the server would refuse or misread: empty, holding NUL
    or a character outside the Basic Multilingual Plane, ending with a space, or over 64
    characters. A `%` is doubled: MySQL statements given to run_sql are always format templates
    (placeholders `%s`, a literal percent sign `%%`)."""
    if not name:
        raise ValueError("a MySQL identifier cannot be empty")
    if "\x00" in name:
        raise ValueError("a MySQL identifier cannot contain a NUL character")
    if len(name) > 64:
        raise ValueError(f"a MySQL identifier is at most 64 characters, this one has {len(name)}")
    if name.endswith(" "):
        raise ValueError("a MySQL identifier cannot end with a space")
    if any(ord(c) > 0xFFFF for c in name):
        raise ValueError("a MySQL identifier cannot contain characters outside the BMP")
    return "`" + name.replace("`", "``").replace("%", "%%") + "`"


def quote_mysql_account(user: str, host: str = "%") -> str:
    """Quote an account name for MySQL/MariaDB as `user`@`host`.

    Account parts may be quoted as identifiers (backticks) or as strings; backticks are used
    because their meaning does not depend on the session's sql_mode (a backslash in a '...'
    string is an escape unless NO_BACKSLASH_ESCAPES is set, and "..." is an identifier under
    ANSI_QUOTES), and SHOW GRANTS prints accounts the same way. Raises ValueError for an empty
    user (anonymous accounts are not managed here), an empty host, a NUL character, a user over
    128 characters or a host over 255 (MariaDB 10.6+ limits). As with quote_mysql_identifier, a
    `%` is doubled for run_sql's format templates: `quote_mysql_account("app", "%")` is
    `` `app`@`%%` ``, which the server receives as `` `app`@`%` ``.
    """
    for part, value, limit in (("user", user, 128), ("host", host, 255)):
        if not value:
            raise ValueError(f"a MySQL account {part} name cannot be empty")
        if "\x00" in value:
            raise ValueError(f"a MySQL account {part} name cannot contain a NUL character")
        if len(value) > limit:
            raise ValueError(
                f"a MySQL account {part} name is at most {limit} characters, "
                f"this one has {len(value)}"
            )
    return (
        "`"
        + user.replace("`", "``").replace("%", "%%")
        + "`@`"
        + host.replace("`", "``").replace("%", "%%")
        + "`"
    )


__all__ = [
    "db_target",
    "load_sql",
    "outcome_summary",
    "quote_mysql_account",
    "quote_mysql_identifier",
    "read_sql_file",
    "resolve_query",
    "run_sql",
]
