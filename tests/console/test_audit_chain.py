"""The audit chain: linking, verification, tampering, append-only, concurrent writers."""

import functools
import os
import subprocess
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from console import audit, audit_chain, audit_writer
from console.models import AuditEntry
from tests.console.conftest import REPO, manage


def _append(n: int, **kwargs) -> list[AuditEntry]:
    return [
        audit.append("test.event", source="cli", target=f"t{i}", output=f"#{i}", **kwargs)
        for i in range(n)
    ]


def _tamper(sql: str, params: list) -> None:
    """Change the table behind the console's back, as a superuser would, bypassing triggers."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


@pytest.mark.django_db
def test_each_entry_holds_the_hash_of_the_previous_one():
    entries = _append(3)
    before = AuditEntry.objects.filter(pk__lt=entries[0].pk).order_by("-pk")
    assert entries[0].prev_hash == (
        before.values_list("hash", flat=True).first() or audit_chain.GENESIS_HASH
    )
    assert entries[1].prev_hash == entries[0].hash
    assert entries[2].prev_hash == entries[1].hash
    assert len({e.hash for e in entries}) == 3


@pytest.mark.django_db
def test_verify_counts_every_entry_of_an_intact_chain(capsys):
    _append(5)
    total = AuditEntry.objects.count()
    call_command("audit", "verify")
    out = capsys.readouterr().out
    assert f"{total} entries checked; chain intact" in out


@pytest.mark.django_db
def test_changed_entry_is_named_by_verify():
    entries = _append(5)
    _tamper("UPDATE console_auditentry SET output = %s WHERE id = %s", ["forged", entries[2].pk])
    with pytest.raises(CommandError, match=rf"entry #{entries[2].pk}: its contents were changed"):
        call_command("audit", "verify")


@pytest.mark.django_db
def test_changed_entry_with_recomputed_hash_breaks_the_next_link():
    entries = _append(4)
    victim = AuditEntry.objects.get(pk=entries[1].pk)
    victim.output = "forged"
    forged_hash = audit_chain.digest(
        victim.prev_hash, tuple(getattr(victim, f) for f in audit_chain.HASHED_FIELDS)
    )
    _tamper(
        "UPDATE console_auditentry SET output = %s, hash = %s WHERE id = %s",
        ["forged", forged_hash, victim.pk],
    )
    result = audit_chain.verify()
    assert result.broken_id == entries[2].pk
    assert "changed or removed" in result.reason


@pytest.mark.django_db
def test_removed_entry_is_named_by_verify():
    entries = _append(5)
    _tamper("DELETE FROM console_auditentry WHERE id = %s", [entries[3].pk])
    result = audit_chain.verify()
    assert not result.intact
    assert result.broken_id == entries[4].pk


@pytest.mark.django_db
def test_removed_first_entry_is_detected():
    _append(3)
    first = AuditEntry.objects.order_by("id").first()
    _tamper("DELETE FROM console_auditentry WHERE id = %s", [first.pk])
    result = audit_chain.verify()
    assert result.broken_id == AuditEntry.objects.order_by("id").first().pk
    assert result.checked == 0


@pytest.mark.django_db
def test_postgresql_refuses_update_of_an_entry():
    if connection.vendor != "postgresql":
        pytest.fail("the audit tests run on the lab's PostgreSQL (DATABASE_URL)")
    (entry,) = _append(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(output="forged")
    assert AuditEntry.objects.get(pk=entry.pk).output == "#0"


@pytest.mark.django_db
def test_postgresql_refuses_delete_of_an_entry():
    (entry,) = _append(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_verify_command_exits_1_and_names_the_broken_entry(console_env):
    entries = _append(3)
    ok = subprocess.run(
        manage("audit", "verify"),
        env=console_env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert ok.returncode == 0, ok.stderr
    assert "chain intact" in ok.stdout
    _tamper("UPDATE console_auditentry SET target = %s WHERE id = %s", ["x", entries[1].pk])
    broken = subprocess.run(
        manage("audit", "verify"),
        env=console_env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert broken.returncode == 1
    assert f"chain broken at entry #{entries[1].pk}" in broken.stderr


APPENDER = """
import os, time
from console import audit
deadline = time.monotonic() + 60
while not os.path.exists({gate!r}):  # start together, to contend for the chain's head
    assert time.monotonic() < deadline, "start gate never opened"
    time.sleep(0.01)
for i in range({n}):
    audit.append("test.parallel", source="cli", target="writer-{w}", output=str(i))
"""


def test_appends_from_parallel_processes_form_one_chain(console_env, tmp_path):
    writers, per_writer = 4, 300
    gate = tmp_path / "go"
    procs = [
        subprocess.Popen(
            manage("shell", "-c", APPENDER.format(n=per_writer, w=w, gate=str(gate))),
            env=console_env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for w in range(writers)
    ]
    gate.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()
    assert AuditEntry.objects.filter(action="test.parallel").count() == writers * per_writer
    # The writers really interleaved (they contended for the head), and still form one chain.
    targets = list(
        AuditEntry.objects.filter(action="test.parallel")
        .order_by("id")
        .values_list("target", flat=True)
    )
    switches = sum(1 for a, b in zip(targets, targets[1:], strict=False) if a != b)
    assert switches > writers
    result = audit_chain.verify()
    assert result.intact, result
    assert result.checked == AuditEntry.objects.count()


@pytest.mark.django_db
def test_database_and_python_compute_the_same_hash_for_awkward_values():
    """PostgreSQL verifies with its own SQL; it must agree with Python on every kind of value."""
    awkward = [
        {"output": "Zoë Ångström ‘quoted’ 日本語 🐘", "target": "role:O'Brien"},
        {"output": "line1\nline2\ttab \x01 ctrl", "error": 'back\\slash "quote"'},
        {"command": "a|b:c~d", "node": "3:abc|", "target": ""},
        {"exit_code": -15, "duration_ms": 0, "job_id": 2**40},
    ]
    for fields in awkward:
        audit.append("test.awkward", source="cli", **fields)
    # The head rewritten with a timestamp of zero microseconds and its hash recomputed in Python.
    head = audit.append("test.awkward", source="cli")
    whole = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    values = tuple(whole if f == "created" else getattr(head, f) for f in audit_chain.HASHED_FIELDS)
    _tamper(
        "UPDATE console_auditentry SET created = %s, hash = %s WHERE id = %s",
        [whole, audit_chain.digest(head.prev_hash, values), head.pk],
    )
    result = audit_chain.verify()
    assert result.intact, result
    assert result.checked == AuditEntry.objects.count()


SQLITE_FLOW = """
from django.db import connection
from console import audit, audit_chain
entries = [audit.append("test.sqlite", source="cli", output=f"#{i} Zoë") for i in range(20)]
assert audit_chain.verify().intact
with connection.cursor() as cursor:
    cursor.execute("UPDATE console_auditentry SET output = 'x' WHERE id = %s", [entries[7].pk])
result = audit_chain.verify()
print("broken", result.broken_id, entries[7].pk)
"""


def test_sqlite_chain_is_verified_in_python_and_detects_a_change(tmp_path):
    """The embedded SQLite default hashes and verifies the same chain without the database."""
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp_path / 'console.sqlite3'}",
        CONSOLE_VAR_DIR=str(tmp_path),
    )
    run = functools.partial(
        subprocess.run, env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    migrate = run(manage("migrate", "--noinput"))
    assert migrate.returncode == 0, migrate.stderr
    flow = run(manage("shell", "-c", SQLITE_FLOW))
    assert flow.returncode == 0, flow.stderr
    _, broken, expected = flow.stdout.strip().splitlines()[-1].split()
    assert broken == expected


@pytest.mark.django_db(transaction=True)
def test_parallel_verify_checks_the_links_between_ranges():
    entries = _append(12)
    total = AuditEntry.objects.count()
    assert audit_chain.verify(span=3, workers=2).checked == total
    # Remove each entry that starts a range in turn, and the link across the boundary breaks.
    first = AuditEntry.objects.order_by("id").first().pk
    victim = next(e for e in entries[1:-1] if (e.pk - first) % 3 == 0)
    _tamper("DELETE FROM console_auditentry WHERE id = %s", [victim.pk])
    result = audit_chain.verify(span=3, workers=2)
    assert result.broken_id == victim.pk + 1
    assert "changed or removed" in result.reason


@pytest.mark.django_db(transaction=True)
def test_appends_from_parallel_threads_are_written_together_in_one_chain(monkeypatch):
    """Threads of one process (the collector's workers) append without racing each other for
    the head: what arrives while one batch is written goes into the next, chained in order."""
    if connection.vendor != "postgresql":
        pytest.skip("threads share one SQLite file; group appends are for PostgreSQL")
    import threading

    batches: list[int] = []
    insert = audit_writer._insert_after_head

    def counting_insert(entries):
        batches.append(len(entries))
        insert(entries)

    monkeypatch.setattr(audit_writer, "_insert_after_head", counting_insert)
    threads, per_thread = 16, 40
    start = threading.Barrier(threads)
    returned: list[AuditEntry] = []

    def work(w: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                returned.append(audit.append("test.threads", source="job", target=f"w{w}#{i}"))
        finally:
            connection.close()

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert len(returned) == threads * per_thread
    stored = dict(AuditEntry.objects.filter(action="test.threads").values_list("id", "hash"))
    assert {e.pk: e.hash for e in returned} == stored  # each append returned its own row
    assert sum(batches) == threads * per_thread  # no attempt lost a race within the process
    assert max(batches) > 1
    result = audit_chain.verify()
    assert result.intact, result
    assert result.checked == AuditEntry.objects.count()


def test_a_forked_process_does_not_inherit_a_writer_of_its_parent():
    """A Celery pool forks its workers: a child forked while a parent thread was writing a
    batch must not wait forever for that writer to hand over."""
    writing = audit_writer._group
    writing._writing = True  # as while a thread of this process writes
    try:
        pid = os.fork()
        if pid == 0:  # the child: a fresh group, free to write
            fresh = audit_writer._group
            os._exit(0 if fresh is not writing and not fresh._writing else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        writing._writing = False
