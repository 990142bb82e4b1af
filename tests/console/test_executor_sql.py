"""run_sql against the lab's real PostgreSQL and MariaDB; MySQL quoting helpers."""

import dataclasses
import socket
import time

import pytest
from django.apps import apps
from django.db import transaction
from psycopg import sql

from console.executor import AuthenticationFailed, HostUnreachable, SqlFailed, run_sql
from console.executor import connection as executor_connection
from console.executor.redact import MASK
from console.executor.sql import load_sql, quote_mysql_account, quote_mysql_identifier
from console.models import AuditEntry, JobLogLine
from tests import factories

lab = pytest.mark.django_db(transaction=True)
HOSTILE_ROLE = 'we"ird ro le ü'


@pytest.fixture
def check_audit(audit_pair, assert_no_secret_stored, pg_target, mysql_target):
    """Assert the latest call left its started/outcome pair with `status`, and no secret."""

    def check(status: str, *secrets: str) -> AuditEntry:
        intent, outcome = audit_pair()
        assert outcome.status == status
        assert_no_secret_stored(pg_target.password, mysql_target.password, *secrets)
        return outcome

    return check


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- PostgreSQL ---------------------------------------------------------------------------------


@lab
def test_pg_rows_are_returned_and_parameters_are_not_recorded(pg_target, check_audit):
    result = run_sql(pg_target, "SELECT %s::int AS n, %s::text AS t", [7, "Quokka-param"])
    assert (result.columns, result.rows) == (["n", "t"], [(7, "Quokka-param")])
    outcome = check_audit(AuditEntry.Status.SUCCEEDED, "Quokka-param")
    assert outcome.pk == result.audit_id
    assert outcome.command == "SELECT %s::int AS n, %s::text AS t"
    assert outcome.node == "lab-pg" and outcome.output.startswith("1 rows")


@lab
def test_pg_session_is_tagged_with_application_name(pg_target, check_audit):
    query = "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    assert run_sql(pg_target, query).rows == [("dbconsole",)]
    check_audit(AuditEntry.Status.SUCCEEDED)


@lab
def test_pg_statement_timeout_cancels_a_long_statement(pg_target, check_audit):
    started = time.monotonic()
    with pytest.raises(SqlFailed, match="timed out after 1 s"):
        run_sql(pg_target, "SELECT pg_sleep(10)", timeout=1)
    assert time.monotonic() - started < 5
    outcome = check_audit(AuditEntry.Status.FAILED)
    assert "57014" in outcome.error


@lab
def test_pg_statement_ignoring_cancels_is_cut_off_by_the_client(
    pg_target, check_audit, monkeypatch
):
    # Like a commit waiting for a synchronous standby: the server does not end it.
    monkeypatch.setattr(executor_connection, "_CLIENT_GRACE", 0.5)
    monkeypatch.setattr(executor_connection, "_CANCEL_GRACE", 1.0)
    stubborn = (
        "DO $$ BEGIN FOR i IN 1..30 LOOP BEGIN PERFORM pg_sleep(0.5); "
        "EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$"
    )
    started = time.monotonic()
    with pytest.raises(SqlFailed, match="timed out after 1 s"):
        run_sql(pg_target, stubborn, timeout=1)
    assert time.monotonic() - started < 6
    check_audit(AuditEntry.Status.FAILED)
    run_sql(
        pg_target,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE query LIKE 'DO $$ BEGIN FOR i IN 1..30%' AND pid <> pg_backend_pid()",
    )


@lab
def test_pg_wrong_password_fails_authentication(pg_target, check_audit):
    wrong = dataclasses.replace(pg_target, password="Wrong-Walrus-42")
    with pytest.raises(AuthenticationFailed, match="refused the credentials"):
        run_sql(wrong, "SELECT 1")
    check_audit(AuditEntry.Status.FAILED, "Wrong-Walrus-42")


@lab
def test_pg_refused_port_is_unreachable_at_once(pg_target, check_audit):
    started = time.monotonic()
    with pytest.raises(HostUnreachable, match="cannot connect"):
        run_sql(dataclasses.replace(pg_target, port=free_port()), "SELECT 1")
    assert time.monotonic() - started < 3
    check_audit(AuditEntry.Status.FAILED)


@lab
def test_pg_silent_server_times_out_as_unreachable(pg_target, check_audit, silent_port, settings):
    settings.EXECUTOR_CONNECT_TIMEOUT = 1  # libpq waits at least 2 s
    started = time.monotonic()
    with pytest.raises(HostUnreachable, match="timeout"):
        run_sql(dataclasses.replace(pg_target, host="127.0.0.1", port=silent_port), "SELECT 1")
    assert time.monotonic() - started < 5
    check_audit(AuditEntry.Status.FAILED)


@lab
def test_pg_error_carries_the_sqlstate(pg_target, check_audit):
    with pytest.raises(SqlFailed, match="42P01"):
        run_sql(pg_target, "SELECT * FROM no_such_table_here")
    check_audit(AuditEntry.Status.FAILED)


@lab
def test_pg_wrong_parameter_count_is_a_sql_failure(pg_target, check_audit):
    with pytest.raises(SqlFailed, match="placeholder"):
        run_sql(pg_target, "SELECT %s, %s", [1])
    check_audit(AuditEntry.Status.FAILED)


@lab
def test_unexpected_error_still_records_the_outcome(mysql_target, check_audit):
    with pytest.raises(TypeError, match="psycopg.sql is for PostgreSQL"):
        run_sql(mysql_target, sql.SQL("SELECT 1"))
    outcome = check_audit(AuditEntry.Status.FAILED)
    assert outcome.error.startswith("internal error: TypeError")


@lab
def test_pg_hostile_identifier_is_quoted_by_psycopg(pg_target, check_audit):
    role = sql.Identifier(HOSTILE_ROLE)
    exists = "SELECT count(*) FROM pg_roles WHERE rolname = %s"
    try:
        run_sql(pg_target, sql.SQL("CREATE ROLE {} NOLOGIN").format(role))
        outcome = check_audit(AuditEntry.Status.SUCCEEDED)
        assert outcome.command == 'CREATE ROLE "we""ird ro le ü" NOLOGIN'
        assert run_sql(pg_target, exists, [HOSTILE_ROLE]).rows == [(1,)]
    finally:
        run_sql(pg_target, sql.SQL("DROP ROLE IF EXISTS {}").format(role))
    assert run_sql(pg_target, exists, [HOSTILE_ROLE]).rows == [(0,)]


@lab
def test_pg_password_in_composed_sql_is_masked(pg_target, check_audit):
    role = sql.Identifier("dbconsole_test_pw")
    secret = "Hidden-Heron-77"
    try:
        run_sql(pg_target, sql.SQL("CREATE ROLE {} LOGIN").format(role))
        run_sql(
            pg_target,
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(secret)),
        )
        outcome = check_audit(AuditEntry.Status.SUCCEEDED, secret)
        assert outcome.command == f'ALTER ROLE "dbconsole_test_pw" PASSWORD {MASK}'
    finally:
        run_sql(pg_target, sql.SQL("DROP ROLE IF EXISTS {}").format(role))


@lab
def test_pg_call_in_a_job_writes_the_job_log(pg_target, check_audit, dba):
    job = factories.make_job(user=dba)
    run_sql(pg_target, "SELECT 1 AS one", job=job)
    outcome = check_audit(AuditEntry.Status.SUCCEEDED)
    assert (outcome.source, outcome.job_id, outcome.actor_name) == ("job", job.pk, "dba")
    lines = list(JobLogLine.objects.filter(job=job).values_list("message", flat=True))
    assert lines == [lines[0], lines[1]]
    assert lines[0] == "[lab-pg] $ SELECT 1 AS one"
    assert lines[1].startswith("[lab-pg] succeeded")


@lab
def test_pg_call_in_a_job_without_job_log_is_audited_naming_the_job(pg_target, check_audit, dba):
    """job_log=False (the collector's polls): both audit entries name the job, its log stays
    empty."""
    job = factories.make_job(user=dba)
    run_sql(pg_target, "SELECT 1 AS one", job=job, job_log=False)
    outcome = check_audit(AuditEntry.Status.SUCCEEDED)
    assert (outcome.source, outcome.job_id, outcome.actor_name) == ("job", job.pk, "dba")
    assert AuditEntry.objects.get(pk=outcome.intent_id).job_id == job.pk
    assert not JobLogLine.objects.filter(job=job).exists()


@lab
def test_pg_call_inside_a_transaction_raises_before_anything(pg_target):
    before = AuditEntry.objects.count()
    with transaction.atomic(), pytest.raises(RuntimeError, match="inside a database transaction"):
        run_sql(pg_target, "SELECT 1")
    assert AuditEntry.objects.count() == before


@lab
def test_pg_named_sql_file_is_loaded_and_run(pg_target, check_audit, tmp_path, monkeypatch):
    monkeypatch.setattr(apps.get_app_config("console"), "path", str(tmp_path))
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "roles-count.sql").write_text(
        "SELECT count(*) FROM pg_roles WHERE rolname = %(role)s\n"
    )
    result = run_sql(pg_target, "console:roles-count", {"role": "postgres"})
    assert result.rows == [(1,)]
    outcome = check_audit(AuditEntry.Status.SUCCEEDED)
    assert "%(role)s" in outcome.command


def test_load_sql_returns_composable_sql(tmp_path, monkeypatch):
    monkeypatch.setattr(apps.get_app_config("console"), "path", str(tmp_path))
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "roles-drop.sql").write_text("DROP ROLE {role}")
    query = load_sql("console", "roles-drop").format(role=sql.Identifier("a b"))
    assert query.as_string(None) == 'DROP ROLE "a b"'


def test_load_sql_refuses_a_path_for_a_name():
    with pytest.raises(ValueError, match="not a query name"):
        load_sql("console", "../settings")


# --- MariaDB ------------------------------------------------------------------------------------


@lab
def test_mysql_rows_are_returned(mysql_target, check_audit):
    result = run_sql(mysql_target, "SELECT %s AS a, 2 AS b", ["Otter-param"])
    assert (result.columns, result.rows) == (["a", "b"], [("Otter-param", 2)])
    outcome = check_audit(AuditEntry.Status.SUCCEEDED, "Otter-param")
    assert outcome.command == "SELECT %s AS a, 2 AS b"
    assert outcome.pk == result.audit_id


@lab
def test_mysql_statement_timeout_ends_a_long_statement(mysql_target, check_audit):
    started = time.monotonic()
    with pytest.raises(SqlFailed, match="timed out after 1 s"):
        run_sql(mysql_target, "SELECT SLEEP(10) FROM mysql.user LIMIT 1", timeout=1)
    assert time.monotonic() - started < 5
    check_audit(AuditEntry.Status.FAILED)


@lab
def test_mysql_statement_the_server_does_not_end_is_killed_by_the_client(
    mysql_target, check_audit, monkeypatch
):
    monkeypatch.setattr(executor_connection, "_CLIENT_GRACE", 0.5)
    stubborn = "SET STATEMENT max_statement_time=0 FOR SELECT SLEEP(30.4242)"
    started = time.monotonic()
    with pytest.raises(SqlFailed, match="no answer after 2 s; the statement was killed"):
        run_sql(mysql_target, stubborn, timeout=1)
    assert time.monotonic() - started < 5
    check_audit(AuditEntry.Status.FAILED)
    running = (
        "SELECT count(*) FROM information_schema.processlist "
        "WHERE info LIKE %s AND id <> CONNECTION_ID()"
    )
    deadline = time.monotonic() + 10
    while run_sql(mysql_target, running, ["%SLEEP(30.4242)%"]).rows != [(0,)]:
        assert time.monotonic() < deadline, "the abandoned statement still runs on the server"


@lab
def test_mysql_wrong_password_fails_authentication(mysql_target, check_audit):
    wrong = dataclasses.replace(mysql_target, password="Wrong-Wombat-42")
    with pytest.raises(AuthenticationFailed, match="refused the credentials"):
        run_sql(wrong, "SELECT 1")
    check_audit(AuditEntry.Status.FAILED, "Wrong-Wombat-42")


@lab
def test_mysql_refused_port_is_unreachable_at_once(mysql_target, check_audit):
    started = time.monotonic()
    with pytest.raises(HostUnreachable, match="cannot connect"):
        run_sql(dataclasses.replace(mysql_target, port=free_port()), "SELECT 1")
    assert time.monotonic() - started < 3
    check_audit(AuditEntry.Status.FAILED)


@lab
def test_mysql_silent_server_times_out_as_unreachable(
    mysql_target, check_audit, silent_port, settings
):
    settings.EXECUTOR_CONNECT_TIMEOUT = 1
    started = time.monotonic()
    with pytest.raises(HostUnreachable, match="cannot connect"):
        run_sql(dataclasses.replace(mysql_target, host="127.0.0.1", port=silent_port), "SELECT 1")
    assert time.monotonic() - started < 5
    check_audit(AuditEntry.Status.FAILED)


@lab
@pytest.mark.parametrize("user", ["o'brien", "dom\\user", "back`tick", 'dq"user'])
def test_mysql_hostile_account_names_are_quoted(mysql_target, check_audit, user):
    account = quote_mysql_account(user, "%")
    secret = "Account-Aardvark-9"
    exists = "SELECT count(*) FROM mysql.user WHERE User = %s AND Host = %s"
    try:
        run_sql(mysql_target, f"CREATE USER {account} IDENTIFIED BY %s", [secret])
        check_audit(AuditEntry.Status.SUCCEEDED, secret)
        assert run_sql(mysql_target, exists, [user, "%"]).rows == [(1,)]
    finally:
        run_sql(mysql_target, f"DROP USER IF EXISTS {account}")
    assert run_sql(mysql_target, exists, [user, "%"]).rows == [(0,)]


@lab
def test_mysql_hostile_database_name_is_quoted(mysql_target, check_audit):
    name = "we`ird 100% db ü'; --"
    exists = "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s"
    try:
        run_sql(mysql_target, f"CREATE DATABASE {quote_mysql_identifier(name)}")
        check_audit(AuditEntry.Status.SUCCEEDED)
        assert run_sql(mysql_target, exists, [name]).rows == [(1,)]
    finally:
        run_sql(mysql_target, f"DROP DATABASE IF EXISTS {quote_mysql_identifier(name)}")
    assert run_sql(mysql_target, exists, [name]).rows == [(0,)]


@lab
def test_mysql_error_carries_the_error_code(mysql_target, check_audit):
    with pytest.raises(SqlFailed, match="error 1146"):
        run_sql(mysql_target, "SELECT * FROM mysql.no_such_table_here")
    check_audit(AuditEntry.Status.FAILED)


def test_mysql_identifier_is_backquoted_with_inner_backquotes_doubled():
    assert quote_mysql_identifier("a`b c") == "`a``b c`"


def test_mysql_identifier_doubles_percent_for_the_format_template():
    assert quote_mysql_identifier("100%") == "`100%%`"


@pytest.mark.parametrize(
    "name, problem",
    [
        ("", "empty"),
        ("a\x00b", "NUL"),
        ("x" * 65, "at most 64"),
        ("trailing ", "end with"),
        ("emoji😀", "BMP"),
    ],
)
def test_mysql_identifier_refuses_what_the_server_would_misread(name, problem):
    with pytest.raises(ValueError, match=problem):
        quote_mysql_identifier(name)


def test_mysql_identifier_of_64_characters_is_accepted():
    assert quote_mysql_identifier("x" * 64) == "`" + "x" * 64 + "`"


def test_mysql_account_is_quoted_in_backticks():
    assert quote_mysql_account("o'brien", "10.%") == "`o'brien`@`10.%%`"


@pytest.mark.parametrize(
    "user, host, problem",
    [
        ("", "%", "user name cannot be empty"),
        ("a", "", "host name cannot be empty"),
        ("a\x00", "%", "NUL"),
        ("u" * 129, "%", "at most 128"),
        ("a", "h" * 256, "at most 255"),
    ],
)
def test_mysql_account_refuses_invalid_parts(user, host, problem):
    with pytest.raises(ValueError, match=problem):
        quote_mysql_account(user, host)
