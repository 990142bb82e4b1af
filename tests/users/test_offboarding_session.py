"""console.executor.session, which the offboarding and its undo use, against the lab's db1 and
my1: several statements over one connection (the server says the same backend / thread ran
them), each audited as run_sql audits it (intent then outcome, the target's password never
recorded), a connect failure recorded as the first statement's outcome, a lost connection
replaced by a new one for the next statement, and no statement sent past the deadline."""

import time

import pytest

from console.executor import HostUnreachable, SqlFailed
from console.executor.session import sql_session
from console.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions


def _nodes(demo):
    db1 = demo["lab-pg"].nodes.get(name="db1")
    my1 = demo["lab-mariadb"].nodes.get(name="my1")
    return db1, my1


def test_statements_share_one_connection_each_audited(demo):
    db1, my1 = _nodes(demo)
    with sql_session(db1.pg_target()) as s:
        first = s.run("SELECT pg_backend_pid()", label="t").rows[0][0]
        second = s.run("SELECT pg_backend_pid()", label="t").rows[0][0]
        assert first == second and (s.connections, s.statements) == (1, 2)
    with sql_session(my1.mysql_target()) as s:
        first = s.run("SELECT CONNECTION_ID()").rows[0][0]
        (limit,) = s.run("SELECT @@max_statement_time").rows[0]
        assert s.run("SELECT CONNECTION_ID()").rows[0][0] == first
        assert float(limit) > 0  # the server-side timeout, set once per connection
    entries = AuditEntry.objects.filter(action="remote.sql")
    assert entries.filter(status="started").count() == entries.exclude(status="started").count()
    assert entries.filter(status="succeeded", node="db1").count() == 2
    assert entries.filter(status="succeeded", node="my1").count() == 3
    password = db1.pg_target().password
    assert not AuditEntry.objects.filter(command__contains=password).exists()


def test_a_server_that_refuses_fails_the_first_statement_audited(demo, lab_env):
    db1, _ = _nodes(demo)
    target = db1.pg_target()
    from dataclasses import replace

    with sql_session(replace(target, port=1)) as s:
        with pytest.raises(HostUnreachable):
            s.run("SELECT 1")
    outcome = AuditEntry.objects.get(action="remote.sql", status="failed")
    assert "cannot connect" in outcome.error and outcome.intent_id is not None


def test_a_lost_connection_is_replaced_for_the_next_statement(demo, lab_env):
    db1, _ = _nodes(demo)
    with sql_session(db1.pg_target()) as s:
        pid = s.run("SELECT pg_backend_pid()").rows[0][0]
        # Another session ends this one's backend, as a DBA or a failover would.
        with sql_session(db1.pg_target()) as other:
            other.run("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        with pytest.raises(Exception) as lost:
            s.run("SELECT 1")
        assert "lost" in str(lost.value) or "terminat" in str(lost.value)
        again = s.run("SELECT pg_backend_pid()").rows[0][0]
        assert again != pid and s.connections == 2


def test_no_statement_is_sent_after_the_deadline(demo):
    _, my1 = _nodes(demo)
    with sql_session(my1.mysql_target(), deadline=time.monotonic() - 1) as s:
        with pytest.raises(SqlFailed, match="deadline"):
            s.run("SELECT 1")
        assert (s.connections, s.statements) == (0, 0)
    outcome = AuditEntry.objects.get(action="remote.sql", status="failed")
    assert "was not sent" in outcome.error
