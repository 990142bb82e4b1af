"""Several audited statements over one connection to one server (PostgreSQL or MariaDB/MySQL).

`run_sql` opens a connection for every statement: right for one statement, wasteful for a short
conversation with a server (read an account, lock it, read it back), where the connection costs
more than the statements: a PostgreSQL backend fork and a SCRAM exchange (4096 PBKDF2 rounds on
each side, the client's with the GIL held), a MariaDB thread and its `SET SESSION
max_statement_time`. A session keeps every guarantee of run_sql, per statement:

    with sql_session(node.pg_target(), job=job, deadline=time.monotonic() + 30) as s:
        state = s.run("users:account-pg-state", {"role": name}, action=audit.ACCOUNT_STATE_READ)
        s.run(query, action=audit.ACCOUNT_LOCKED, label=name)

- each statement is audited as run_sql does it (a `started` entry before it touches the server,
  the outcome after, outside any transaction, redacted of the target's password and `secrets`);
- the connection is opened by the first statement, inside that statement's audit pair (a server
  that cannot be reached is that statement's failed outcome), and closed by the `with`;
- every statement has the server-side timeout and the client-side timeout of run_sql; the
  session's `deadline` (time.monotonic()) refuses a statement asked for after it (SqlFailed,
  audited) without touching the server, and on PostgreSQL also cuts the client-side wait of a
  statement sent before it (MariaDB's client read timeout is fixed when it connects);
- a connection lost while a statement ran is closed; the next statement opens a new one.
Autocommit, as run_sql: each statement commits on its own.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

import MySQLdb
import psycopg
from django.conf import settings
from psycopg import sql

from console import audit
from console.executor import ExecutorError, MysqlTarget, PgTarget, SqlFailed, SqlResult
from console.executor._audit import ensure_outside_transaction, remote_call
from console.executor.connection import (
    my_client_timeout,
    my_connect,
    my_failure,
    my_lost,
    my_set_statement_timeout,
    my_statement,
    pg_open,
    pg_statement,
)
from console.executor.sql import db_target, outcome_summary, resolve_query


class SqlSession:
    """One server, one connection (opened lazily), many audited statements; see the module."""

    def __init__(self, target, *, actor=None, job=None, source: str | None = None,
                 timeout: float | None = None, deadline: float | None = None,
                 dbname: str | None = None, secrets=()):  # fmt: skip
        self.target = db_target(target)
        self.actor, self.job, self.source = actor, job, source
        self.timeout = timeout or settings.EXECUTOR_STATEMENT_TIMEOUT
        self.deadline = deadline
        self.secrets = (*secrets, self.target.password)
        self.statements = 0  # sent to the server
        self.connections = 0  # opened
        self._dbname = dbname
        self._conn = None
        self._thread_id = None

    # -- public ---------------------------------------------------------------------------------

    def run(self, query, params=None, *, action: str = audit.REMOTE_SQL, label: str = "",
            job_log: bool = True) -> SqlResult:  # fmt: skip
        """One statement on the session's connection, audited as run_sql audits it."""
        ensure_outside_transaction()
        query = resolve_query(query)
        text = query.as_string(None) if isinstance(query, sql.Composable) else str(query)
        with remote_call(
            action=action, node=self.target.name, command=text, actor=self.actor, job=self.job,
            source=self.source, label=label, secrets=self.secrets, job_log=job_log,
        ) as call:  # fmt: skip
            wait = self._wait()
            if isinstance(self.target, PgTarget):
                columns, rows, rowcount, notices = self._pg(query, params, wait)
            else:
                columns, rows, rowcount, notices = self._my(query, params, wait)
            call.output = outcome_summary(columns, rows, rowcount, notices)
        return SqlResult(columns=columns, rows=rows, rowcount=rowcount,
                         duration_ms=call.duration_ms, audit_id=call.outcome_id)  # fmt: skip

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except (psycopg.Error, MySQLdb.Error):
                pass

    # -- internals ------------------------------------------------------------------------------

    def _wait(self) -> float:
        """How long this statement may take (the session's timeout, cut by its deadline)."""
        if self.deadline is None:
            return self.timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise SqlFailed(f"{self.target.name}: the deadline for this server has passed; "
                            "the statement was not sent")  # fmt: skip
        return min(self.timeout, left)

    def _pg(self, query, params, wait: float):
        t: PgTarget = self.target
        dbname = self._dbname or t.dbname
        if self._conn is None:
            # statement_timeout is the session's; pg_statement's watchdog applies the deadline.
            self._conn, self._notices = pg_open(t, dbname, self.timeout)
            self.connections += 1
        conn = self._conn
        self.statements += 1
        try:
            return pg_statement(conn, t, dbname, query, params, wait, self._notices)
        except ExecutorError:
            if conn.broken or conn.closed:
                self.close()
            raise

    def _my(self, query, params, wait: float):
        if isinstance(query, sql.Composable):
            raise TypeError("psycopg.sql is for PostgreSQL; quote MySQL names with quote_mysql_*")
        t: MysqlTarget = self.target
        client_timeout = my_client_timeout(self.timeout)
        if self._conn is None:
            self._conn = my_connect(t, self._dbname or t.database, client_timeout)
            self.connections += 1
            self._thread_id = self._conn.thread_id()
            my_set_statement_timeout(self._conn, self.timeout)
        conn, started = self._conn, time.monotonic()
        self.statements += 1
        try:
            return my_statement(conn, query, params)
        except MySQLdb.Error as e:
            if my_lost(e):
                self.close()
            raise my_failure(t, e, wait, client_timeout, started, self._thread_id) from None


@contextmanager
def sql_session(target, **kwargs) -> Iterator[SqlSession]:
    """A SqlSession on `target` (a PgTarget, MysqlTarget or a node), closed at the end."""
    session = SqlSession(target, **kwargs)
    try:
        yield session
    finally:
        session.close()
