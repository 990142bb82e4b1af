"""SQL on managed servers: PostgreSQL (psycopg 3) and MySQL/MariaDB (mysqlclient), audited.

Every call opens one connection in autocommit, runs one statement with a server-side timeout
and a client-side one, and closes it. SQL is a `psycopg.sql.Composable`, a string with bound
parameters (`%s`, `%(name)s`), or the name of a file shipped with an app ("clusters:roles-list"
is clusters/sql/roles-list.sql). MySQL statements are always format templates (`%s`
placeholders, a literal percent sign written `%%`), with identifiers and accounts quoted by
`quote_mysql_identifier` and `quote_mysql_account`, never by hand.
"""

import re
import socket
import threading
import time
from pathlib import Path

import MySQLdb
import psycopg
from django.apps import apps
from django.conf import settings
from psycopg import sql

from console import audit
from console.executor import (
    AuthenticationFailed,
    ExecutorError,
    HostUnreachable,
    MysqlTarget,
    PgTarget,
    SqlFailed,
    SqlResult,
)
from console.executor._audit import ensure_outside_transaction, remote_call

APPLICATION_NAME = "dbconsole"
_QUERY_NAME = re.compile(r"^(?P<app>[a-z][a-z0-9_]*):(?P<name>[a-z0-9][a-z0-9-]*)$")
_CLIENT_GRACE = 2.0  # the client gives the server's own timeout this long to act first
_CANCEL_GRACE = 5.0  # after a cancel request, how long before the connection is cut

# MySQL/MariaDB error codes
_MY_AUTH = {1044, 1045, 1698, 3118, 4151}  # access denied (db, user, socket), account locked
_MY_TIMEOUT = {1969, 3024}  # MariaDB max_statement_time, MySQL max_execution_time
_MY_UNREACHABLE = {2002, 2003, 2005}  # socket, TCP, unknown host
_MY_LOST = {2006, 2013}  # server gone, lost connection during query


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


def _resolve_query(query) -> sql.Composable | str:
    if isinstance(query, str):
        match = _QUERY_NAME.match(query)
        if match:
            return read_sql_file(match["app"], match["name"])
    return query


def _db_target(target) -> PgTarget | MysqlTarget:
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
    t = _db_target(target)
    query = _resolve_query(query)
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
        call.output = _summary(columns, rows, rowcount, notices)
    return SqlResult(
        columns=columns,
        rows=rows,
        rowcount=rowcount,
        duration_ms=call.duration_ms,
        audit_id=call.outcome_id,
    )


def _summary(columns: list[str], rows: list[tuple], rowcount: int, notices: list[str]) -> str:
    if columns:
        head = f"{len(rows)} rows; columns: {', '.join(columns)}"
    else:
        head = f"rowcount {rowcount}"
    return "\n".join([head, *notices])


# --- PostgreSQL ---------------------------------------------------------------------------------


def _pg_endpoint(t: PgTarget, dbname: str) -> str:
    return f"{t.name} ({t.host}:{t.port}/{dbname})"


def _pg_connect(t: PgTarget, dbname: str, timeout: float) -> psycopg.Connection:
    try:
        return psycopg.connect(
            host=t.host,
            port=t.port,
            dbname=dbname,
            user=t.username,
            password=t.password,
            sslmode=t.sslmode,
            connect_timeout=settings.EXECUTOR_CONNECT_TIMEOUT,
            application_name=APPLICATION_NAME,
            options=f"-c statement_timeout={int(timeout * 1000)}",
            autocommit=True,
        )
    except psycopg.OperationalError as e:
        message = _pg_message(e)
        if e.sqlstate in ("28P01", "28000") or "authentication failed" in message:
            raise AuthenticationFailed(
                f"{_pg_endpoint(t, dbname)} refused the credentials of role {t.username}: {message}"
            ) from None
        if e.sqlstate:
            raise SqlFailed(f"{_pg_endpoint(t, dbname)}: {message}") from None
        raise HostUnreachable(f"cannot connect to {_pg_endpoint(t, dbname)}: {message}") from None


def _pg_message(e: psycopg.Error) -> str:
    diag = e.diag
    if diag.message_primary:
        message = f"{diag.sqlstate or e.sqlstate}: {diag.message_primary}"
        if diag.message_detail:
            message += f" ({diag.message_detail})"
        return message
    return " ".join(str(e).split())


class _Watchdog:
    """The client-side timeout: after `timeout` s ask the server to cancel the statement; if the
    call still has not returned after a grace period, cut the connection under it."""

    def __init__(self, conn: psycopg.Connection, timeout: float):
        self.conn = conn
        self.timeout = timeout
        self.fired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sql-watchdog", daemon=True)

    def __enter__(self) -> "_Watchdog":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        if self._done.wait(self.timeout):
            return
        self.fired = True
        try:
            self.conn.cancel_safe(timeout=settings.EXECUTOR_CONNECT_TIMEOUT)
        except (psycopg.Error, OSError):
            pass
        if self._done.wait(_CANCEL_GRACE):
            return
        # shutdown() on a duplicate of the socket ends the connection for the blocked reader.
        try:
            with socket.fromfd(self.conn.pgconn.socket, socket.AF_INET, socket.SOCK_STREAM) as s:
                s.shutdown(socket.SHUT_RDWR)
        except (OSError, psycopg.Error):
            pass


def _pg_execute(t: PgTarget, query, params, timeout: float, dbname: str | None):
    dbname = dbname or t.dbname
    conn = _pg_connect(t, dbname, timeout)
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(f"{d.severity}: {d.message_primary}"))
    try:
        with _Watchdog(conn, timeout + _CLIENT_GRACE) as watchdog, conn.cursor() as cur:
            try:
                cur.execute(query, params)
                columns = [c.name for c in cur.description] if cur.description else []
                rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
            except psycopg.Error as e:
                raise _pg_failure(t, dbname, e, timeout, watchdog.fired, conn.broken) from None
            if watchdog.fired:
                raise SqlFailed(
                    f"{_pg_endpoint(t, dbname)}: the statement timed out after {timeout:g} s and "
                    f"was cancelled by the client; the server said: {'; '.join(notices) or '-'}"
                )
            return columns, rows, cur.rowcount, notices
    finally:
        conn.close()


def _pg_failure(
    t: PgTarget, dbname: str, e: psycopg.Error, timeout: float, fired: bool, broken: bool
) -> ExecutorError:
    where = _pg_endpoint(t, dbname)
    message = _pg_message(e)
    if fired or (isinstance(e, psycopg.errors.QueryCanceled) and "timeout" in message):
        return SqlFailed(f"{where}: the statement timed out after {timeout:g} s ({message})")
    if broken:
        return ExecutorError(
            f"the connection to {where} was lost while the statement ran, so its outcome is "
            f"unknown: {message}"
        )
    return SqlFailed(f"{where}: {message}")


# --- MySQL / MariaDB ----------------------------------------------------------------------------


def _my_endpoint(t: MysqlTarget) -> str:
    return f"{t.name} ({t.unix_socket or f'{t.host}:{t.port}'})"


def _my_connect(t: MysqlTarget, database: str, read_timeout: int):
    kwargs = {
        "user": t.username,
        "password": t.password,
        "database": database,
        "connect_timeout": settings.EXECUTOR_CONNECT_TIMEOUT,
        "read_timeout": read_timeout,
        "write_timeout": read_timeout,
        "charset": "utf8mb4",
        "autocommit": True,
        "local_infile": False,
    }
    if t.unix_socket:
        kwargs["unix_socket"] = t.unix_socket
    else:
        kwargs.update(host=t.host, port=t.port)
    try:
        return MySQLdb.connect(**kwargs)
    except MySQLdb.Error as e:
        code, message = _my_error(e)
        if code in _MY_AUTH:
            raise AuthenticationFailed(
                f"{_my_endpoint(t)} refused the credentials of {t.username}: {message}"
            ) from None
        if code in _MY_UNREACHABLE or code in _MY_LOST:
            raise HostUnreachable(f"cannot connect to {_my_endpoint(t)}: {message}") from None
        raise SqlFailed(f"{_my_endpoint(t)}: error {code}: {message}") from None


def _my_error(e: MySQLdb.Error) -> tuple[int | None, str]:
    if len(e.args) >= 2 and isinstance(e.args[0], int):
        return e.args[0], str(e.args[1])
    return None, str(e)


def _my_execute(t: MysqlTarget, query, params, timeout: float, dbname: str | None):
    if isinstance(query, sql.Composable):
        raise TypeError("psycopg.sql is for PostgreSQL; quote MySQL names with quote_mysql_*")
    client_timeout = int(timeout + _CLIENT_GRACE + 0.999)
    conn = _my_connect(t, dbname or t.database, client_timeout)
    thread_id = conn.thread_id()
    started = time.monotonic()
    try:
        cur = conn.cursor()
        if "mariadb" in conn.get_server_info().lower():
            cur.execute("SET SESSION max_statement_time = %s", (float(timeout),))
        else:
            cur.execute("SET SESSION max_execution_time = %s", (int(timeout * 1000),))
        try:
            # Always a format template, with or without parameters: one rule for a literal %.
            cur.execute(query, params if params is not None else ())
            columns = [d[0] for d in cur.description] if cur.description else []
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
            warnings = conn.show_warnings() if conn.warning_count() else ()
            notices = [f"{w[0]} {w[1]}: {w[2]}" for w in warnings]
            return columns, rows, cur.rowcount, notices
        except MySQLdb.Error as e:
            code, message = _my_error(e)
            where = _my_endpoint(t)
            if code in _MY_TIMEOUT:
                raise SqlFailed(f"{where}: the statement timed out after {timeout:g} s") from None
            if code in _MY_LOST:
                if time.monotonic() - started >= client_timeout:
                    _my_kill(t, thread_id)
                    raise SqlFailed(
                        f"{where}: no answer after {client_timeout} s; the statement was killed"
                    ) from None
                raise ExecutorError(
                    f"the connection to {where} was lost while the statement ran, so its "
                    f"outcome is unknown: {message}"
                ) from None
            raise SqlFailed(f"{where}: error {code}: {message}") from None
    finally:
        conn.close()


def _my_kill(t: MysqlTarget, thread_id: int) -> None:
    """End a statement the client gave up on, so it does not run on unseen."""
    try:
        conn = _my_connect(t, "", settings.EXECUTOR_CONNECT_TIMEOUT)
    except ExecutorError:
        return
    try:
        conn.cursor().execute("KILL %s", (thread_id,))
    except MySQLdb.Error:
        pass  # it already ended
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
    "APPLICATION_NAME",
    "load_sql",
    "quote_mysql_account",
    "quote_mysql_identifier",
    "read_sql_file",
    "run_sql",
]
