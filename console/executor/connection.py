"""One connection to a PostgreSQL or MySQL/MariaDB server, and one statement on it.

The layer under both ways the executor runs SQL: `run_sql` (sql.py: one connection per
statement) and `SqlSession` (session.py: one connection for several statements). Both open
connections and run statements through these functions, so the two cannot drift apart on what
they must agree on: the connect timeout and `application_name`, the server-side timeout
(`statement_timeout`, `max_statement_time`) and the client-side one after it (a watchdog that
cancels, then cuts, a PostgreSQL statement; MariaDB's read timeout and a KILL), and the messages
of the `ExecutorError`s a failure becomes. Nothing here audits: the callers do, around these
calls (see _audit.py).
"""

import socket
import threading
import time

import MySQLdb
import psycopg
from django.conf import settings

from console.executor import (
    AuthenticationFailed,
    ExecutorError,
    HostUnreachable,
    MysqlTarget,
    PgTarget,
    SqlFailed,
)

APPLICATION_NAME = "dbconsole"
_CLIENT_GRACE = 2.0  # the client gives the server's own timeout this long to act first
_CANCEL_GRACE = 5.0  # after a cancel request, how long before the connection is cut

# MySQL/MariaDB error codes
_MY_AUTH = {1044, 1045, 1698, 3118, 4151}  # access denied (db, user, socket), account locked
_MY_TIMEOUT = {1969, 3024}  # MariaDB max_statement_time, MySQL max_execution_time
_MY_UNREACHABLE = {2002, 2003, 2005}  # socket, TCP, unknown host
_MY_LOST = {2006, 2013}  # server gone, lost connection during query


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


def pg_open(t: PgTarget, dbname: str, timeout: float) -> tuple[psycopg.Connection, list[str]]:
    """A connection to `dbname` in autocommit, tagged with APPLICATION_NAME, whose statements the
    server cancels after `timeout` s; and the list the server's notices are collected in.

    Raises AuthenticationFailed, HostUnreachable or SqlFailed (a refusal with an SQLSTATE)."""
    conn = _pg_connect(t, dbname, timeout)
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(f"{d.severity}: {d.message_primary}"))
    return conn, notices


def pg_statement(
    conn: psycopg.Connection, t: PgTarget, dbname: str, query, params, timeout: float, notices
) -> tuple[list[str], list[tuple], int, list[str]]:
    """Run one statement on a connection from `pg_open` and return its columns, rows, rowcount
    and the notices it raised (`notices` is emptied first).

    Should the server not cancel it after `timeout` s, the client does soon after (SqlFailed).
    A lost connection raises ExecutorError (the outcome is unknown); any other failure SqlFailed.
    """
    notices.clear()
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
        return columns, rows, cur.rowcount, list(notices)


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


def my_connect(t: MysqlTarget, database: str, read_timeout: int):
    """A connection in autocommit (utf8mb4, no LOCAL INFILE) whose reads and writes time out
    after `read_timeout` s. Raises AuthenticationFailed, HostUnreachable or SqlFailed."""
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


def my_client_timeout(timeout: float) -> int:
    """The client's read timeout (whole seconds) for a server-side `timeout`: a grace later."""
    return int(timeout + _CLIENT_GRACE + 0.999)


def my_set_statement_timeout(conn, timeout: float) -> None:
    """Have the server stop this connection's statements after `timeout` s (MariaDB's
    max_statement_time, MySQL's max_execution_time)."""
    cur = conn.cursor()
    if "mariadb" in conn.get_server_info().lower():
        cur.execute("SET SESSION max_statement_time = %s", (float(timeout),))
    else:
        cur.execute("SET SESSION max_execution_time = %s", (int(timeout * 1000),))


def my_statement(conn, query, params) -> tuple[list[str], list[tuple], int, list[str]]:
    """Run one statement and return its columns, rows, rowcount and the server's warnings.
    MySQLdb.Error is left to the caller (see my_failure)."""
    cur = conn.cursor()
    # Always a format template, with or without parameters: one rule for a literal %.
    cur.execute(query, params if params is not None else ())
    columns = [d[0] for d in cur.description] if cur.description else []
    rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
    warnings = conn.show_warnings() if conn.warning_count() else ()
    return columns, rows, cur.rowcount, [f"{w[0]} {w[1]}: {w[2]}" for w in warnings]


def my_lost(e: MySQLdb.Error) -> bool:
    """The connection is gone (the server went away, or the read timed out)."""
    return _my_error(e)[0] in _MY_LOST


def my_failure(
    t: MysqlTarget,
    e: MySQLdb.Error,
    timeout: float,
    client_timeout: int,
    started: float,
    thread_id: int,
) -> ExecutorError:
    """The ExecutorError for a statement's MySQLdb error. A statement the client gave up on
    (no answer within `client_timeout` s of `started`) is killed first, by `thread_id`."""
    code, message = _my_error(e)
    where = _my_endpoint(t)
    if code in _MY_TIMEOUT:
        return SqlFailed(f"{where}: the statement timed out after {timeout:g} s")
    if code in _MY_LOST:
        if time.monotonic() - started >= client_timeout:
            _my_kill(t, thread_id)
            return SqlFailed(
                f"{where}: no answer after {client_timeout} s; the statement was killed"
            )
        return ExecutorError(
            f"the connection to {where} was lost while the statement ran, so its "
            f"outcome is unknown: {message}"
        )
    return SqlFailed(f"{where}: error {code}: {message}")


def _my_kill(t: MysqlTarget, thread_id: int) -> None:
    """End a statement the client gave up on, so it does not run on unseen."""
    try:
        conn = my_connect(t, "", settings.EXECUTOR_CONNECT_TIMEOUT)
    except ExecutorError:
        return
    try:
        conn.cursor().execute("KILL %s", (thread_id,))
    except MySQLdb.Error:
        pass  # it already ended
    finally:
        conn.close()
