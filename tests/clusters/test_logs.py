"""Reading a node's server log over SSH: incremental reads that survive rotation, the
classification of recorded real lines, and the viewer's pages and search, against the lab.

The fixtures under fixtures/ are the lab's own logs, recorded after provoking the lines:
postgresql-db1.log (db1, log_line_prefix '%m [%p] %q%u@%d ': a wrong password for postgres
and for a role that does not exist, a local login with no pg_hba.conf entry, SELECT 1/0) and
mariadb-my1.log (my1: a wrong password, and an [ERROR] from SET GLOBAL general_log_file to a
file mariadbd cannot write).
"""

import os
import time
from pathlib import Path

import psycopg
import pytest

from clusters.actions import NodeSpec, register_host
from clusters.logs import (
    LogCursor,
    LogUnreadable,
    classify,
    cursor_at_end,
    line_kinds,
    page,
    read_new,
    search,
)
from clusters.models import Node
from console import secrets
from console.executor import run_command
from console.lab.demo import known_hosts_of
from console.models import AuditEntry

FIXTURES = Path(__file__).parent / "fixtures"
lab_db = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions


@pytest.fixture
def lab_host(lab_env, dba):
    """Register a lab host by name ("db1", "my1", "bare1") as a node the executor reaches."""
    secrets.store_credential(
        "lab-ssh-key", "ssh-key", Path(lab_env["LAB_SSH_KEY"]).read_text(), actor=dba
    )

    def register(name: str) -> Node:
        address = os.environ[f"LAB_{name.upper()}_SSH_HOST"]
        known = Path(os.environ[f"LAB_{name.upper()}_SSH_KNOWN_HOSTS"]).read_text()
        spec = NodeSpec(
            name=name,
            service=Node.Service.NONE,
            address=address,
            known_hosts=known_hosts_of(known, address),
            ssh_credential="lab-ssh-key",
        )
        return register_host(spec, actor=dba)

    return register


@pytest.fixture
def host(lab_host):
    return lab_host("bare1")


@pytest.fixture
def log(tmp_path) -> Path:
    """A log file this test writes itself (the lab's hosts share this machine's filesystem)."""
    return tmp_path / "test.log"


def _write(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as f:
        f.write(text.encode() if isinstance(text, str) else text)


def _follow(node, cursor: LogCursor, wanted: str, **kwargs) -> tuple[LogCursor, list[str]]:
    """read_new until a line containing `wanted` arrives (the server writes its log itself)."""
    lines: list[str] = []
    deadline = time.monotonic() + 10
    while not any(wanted in line for line in lines):
        assert time.monotonic() < deadline, f"{wanted!r} not in the log: {lines[-5:]}"
        cursor, more = read_new(node, cursor, max_bytes=1 << 20, **kwargs)
        lines += more
    return cursor, lines


# --- The servers' own logs ------------------------------------------------------------------


@lab_db
def test_a_failed_login_on_db1_is_read_and_counted_as_fatal_and_auth_failure(lab_host, lab_env):
    db1 = lab_host("db1")
    path = str(Path(lab_env["LAB_DIR"]) / "primary" / "postgres.log")
    cursor = cursor_at_end(db1, path, sudo_user="postgres")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=lab_env["LAB_PG_HOST"], port=lab_env["LAB_PG_PORT"], dbname="postgres",
            user="postgres", password="not-the-password", connect_timeout=5,
        )  # fmt: skip
    cursor, lines = _follow(db1, cursor, "password authentication failed", sudo_user="postgres")
    summary = classify(lines, "postgresql")
    assert summary.counts["fatal"] >= 1 and summary.counts["auth_failure"] >= 1
    assert any('FATAL:  password authentication failed for user "postgres"' in line.text
               for line in summary.recent)  # fmt: skip


@lab_db
def test_a_failed_login_on_db1_appears_in_the_viewer_page_and_search(lab_host, lab_env):
    db1 = lab_host("db1")
    path = str(Path(lab_env["LAB_DIR"]) / "primary" / "postgres.log")
    user = f"viewer_{time.monotonic_ns()}"  # a user name only this test's line has
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=lab_env["LAB_PG_HOST"], port=lab_env["LAB_PG_PORT"], dbname="postgres",
            user=user, password="not-the-password", connect_timeout=5,
        )  # fmt: skip
    wanted = f'FATAL:  password authentication failed for user "{user}"'
    deadline = time.monotonic() + 10
    while not (found := search(db1, path, wanted, sudo_user="postgres")):
        assert time.monotonic() < deadline, f"{wanted!r} not found in {path}"
    [(_, offset, text)] = found
    assert wanted in text
    shown = page(db1, path, before_offset=offset + len(text.encode()) + 1, sudo_user="postgres")
    assert shown.lines[-1] == (offset, text)


@lab_db
def test_a_failed_login_on_my1_is_read_and_counted_as_auth_failure(lab_host, lab_env):
    import MySQLdb

    my1 = lab_host("my1")
    path = str(Path(lab_env["LAB_DIR"]) / "mariadb" / "log" / "error.log")
    cursor = cursor_at_end(my1, path, sudo_user="mysql")
    with pytest.raises(MySQLdb.OperationalError, match="Access denied"):
        MySQLdb.connect(
            host=lab_env["LAB_MYSQL_HOST"], port=int(lab_env["LAB_MYSQL_PORT"]),
            user=lab_env["LAB_MYSQL_USER"], passwd="not-the-password", connect_timeout=5,
        )  # fmt: skip
    cursor, lines = _follow(my1, cursor, "Access denied for user", sudo_user="mysql")
    assert classify(lines, "mariadb").counts["auth_failure"] >= 1


# --- Classification of recorded lines (pure) ------------------------------------------------


def _last_audit_id() -> int:
    return AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _recorded(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


def test_recorded_postgresql_lines_are_counted_by_severity_and_auth_failure():
    summary = classify(_recorded("postgresql-db1.log"), "postgresql")
    assert summary.counts == {"error": 1, "fatal": 3, "panic": 0, "auth_failure": 3}
    assert [line.kinds for line in summary.recent] == [
        ("fatal", "auth_failure"),
        ("fatal", "auth_failure"),
        ("error",),
        ("fatal", "auth_failure"),
    ]
    assert "no pg_hba.conf entry" in summary.recent[-1].text


def test_postgresql_detail_statement_and_continuation_lines_are_not_counted():
    lines = _recorded("postgresql-db1.log")
    quiet = [line for line in lines if "DETAIL:  " in line or "STATEMENT:  " in line]
    quiet += [line for line in lines if line.startswith("\t")]
    assert len(quiet) >= 4
    assert all(line_kinds(line, "postgresql") == () for line in quiet)


def test_recorded_mariadb_lines_are_counted_as_error_and_auth_failure():
    summary = classify(_recorded("mariadb-my1.log"), "mariadb")
    assert summary.counts == {"error": 1, "fatal": 0, "panic": 0, "auth_failure": 1}
    assert [line.kinds for line in summary.recent] == [("auth_failure",), ("error",)]


def test_a_mariadb_line_written_before_10_am_is_classified():
    # Recorded from my1 at 00:29 UTC: MariaDB pads the hour with a space ("  0:29:42").
    line = "2026-11-26  0:29:42 25 [Warning] Access denied for user 'nobody_x'@'lab'"
    assert line_kinds(line, "mariadb") == ("auth_failure",)
    assert line_kinds("2026-11-26  9:05:01 3 [ERROR] mariadbd: Got error", "mariadb") == ("error",)


def test_an_unknown_log_flavor_is_refused():
    with pytest.raises(ValueError, match="unknown log flavor"):
        classify(["\tanything"], "oracle")


def test_classify_keeps_only_the_most_recent_lines():
    lines = _recorded("postgresql-db1.log") * 5
    summary = classify(lines, "postgresql", keep=3)
    assert summary.counts["fatal"] == 15
    assert [line.kinds for line in summary.recent] == [
        ("fatal", "auth_failure"),
        ("error",),
        ("fatal", "auth_failure"),
    ]


# --- Incremental reading --------------------------------------------------------------------


@lab_db
def test_rotation_by_rename_loses_and_repeats_no_line(host, log):
    _write(log, "one\ntwo\n")
    cursor, lines = read_new(host, LogCursor(str(log)), max_bytes=4096)
    assert lines == ["one", "two"]
    _write(log, "three\n")  # written before rotation, not read yet
    log.rename(f"{log}.1")
    _write(log, "four\n")
    cursor, lines = read_new(host, cursor, max_bytes=4096)
    assert lines == ["three", "four"]
    assert cursor == LogCursor(str(log), log.stat().st_ino, 5)
    _write(log, "five\n")
    assert read_new(host, cursor, max_bytes=4096)[1] == ["five"]


@lab_db
def test_after_rotation_the_old_file_is_followed_until_the_new_one_has_content(host, log):
    _write(log, "one\n")
    cursor, _ = read_new(host, LogCursor(str(log)), max_bytes=4096)
    log.rename(f"{log}.1")
    log.touch()
    _write(f"{log}.1", "late to the old file\npart")  # the writer has not reopened yet
    cursor, lines = read_new(host, cursor, max_bytes=4096)
    assert lines == ["late to the old file"]
    _write(log, "new\n")  # the writer moved on: the old file's partial line is final
    cursor, lines = read_new(host, cursor, max_bytes=4096)
    assert lines == ["part", "new"]
    assert cursor.inode == log.stat().st_ino


@lab_db
def test_a_writer_moving_to_a_new_file_name_is_followed_with_current_path(host, tmp_path):
    first, second = tmp_path / "postgresql-1.log", tmp_path / "postgresql-2.log"
    _write(first, "a\n")
    cursor, _ = read_new(host, LogCursor(str(first)), max_bytes=4096)
    _write(first, "b\n")
    _write(second, "c\n")
    cursor, lines = read_new(host, cursor, max_bytes=4096, current_path=str(second))
    assert lines == ["b", "c"]
    assert cursor == LogCursor(str(second), second.stat().st_ino, 2)


@lab_db
def test_when_the_rotated_file_is_not_found_reading_starts_the_new_file_at_zero(host, log):
    _write(log, "one\n")
    cursor, _ = read_new(host, LogCursor(str(log)), max_bytes=4096)
    log.rename(f"{log}-20261125")  # a name read_new does not look at
    _write(log, "two\n")
    cursor, lines = read_new(host, cursor, max_bytes=4096)
    assert lines == ["two"] and cursor == LogCursor(str(log), log.stat().st_ino, 4)


@lab_db
def test_a_log_truncated_in_place_is_read_again_from_the_start(host, log):
    _write(log, "a long first line\n")
    cursor, _ = read_new(host, LogCursor(str(log)), max_bytes=4096)
    log.write_text("short\n")
    cursor, lines = read_new(host, cursor, max_bytes=4096)
    assert lines == ["short"] and cursor.offset == 6


@lab_db
def test_a_partial_last_line_waits_for_its_newline(host, log):
    _write(log, "whole\nhalf")
    cursor, lines = read_new(host, LogCursor(str(log)), max_bytes=4096)
    assert lines == ["whole"] and cursor.offset == 6
    assert read_new(host, cursor, max_bytes=4096) == (cursor, [])
    _write(log, " and the rest\n")
    assert read_new(host, cursor, max_bytes=4096)[1] == ["half and the rest"]


def _dd_count(command: str) -> int:
    return int(next(w for w in command.split() if w.startswith("count="))[len("count=") :])


@lab_db
def test_each_read_is_bounded_by_max_bytes_and_the_lines_add_up(host, log):
    text = "".join(f"line {i} " + "x" * (i % 13) + "\n" for i in range(200))
    _write(log, text)
    cursor, seen, calls = LogCursor(str(log)), [], 0
    while cursor.offset < len(text.encode()):
        before = _last_audit_id()
        cursor, lines = read_new(host, cursor, max_bytes=100)
        reads = AuditEntry.objects.filter(pk__gt=before, command__contains=" dd ")
        assert reads and all(_dd_count(e.command) <= 100 for e in reads)
        seen += lines
        calls += 1
    assert seen == text.splitlines()
    assert calls >= len(text.encode()) // 100


@lab_db
def test_a_line_longer_than_max_bytes_comes_in_pieces(host, log):
    _write(log, "y" * 250 + "\nend\n")
    cursor, pieces = LogCursor(str(log)), []
    for _ in range(4):
        cursor, lines = read_new(host, cursor, max_bytes=100)
        pieces += lines
    assert "".join(pieces[:-1]) == "y" * 250 and pieces[-1] == "end"


@lab_db
def test_invalid_utf8_is_read_again_as_hex_so_byte_offsets_stay_exact(host, log):
    _write(log, b"caf\xe9 latin-1\nnext\n")
    before = _last_audit_id()
    cursor, lines = read_new(host, LogCursor(str(log)), max_bytes=4096)
    assert lines == ["caf\ufffd latin-1", "next"] and cursor.offset == 18
    commands = AuditEntry.objects.filter(pk__gt=before, status="started").order_by("pk")
    assert [c.command.split()[3] for c in commands] == ["stat", "dd", "od"]
    _write(log, "caf\u00e9 utf-8\n")
    assert read_new(host, cursor, max_bytes=4096) == (
        LogCursor(str(log), cursor.inode, 30),
        ["caf\u00e9 utf-8"],
    )


@lab_db
def test_a_logged_password_is_masked_in_lines_and_in_the_audit(host, log):
    statement = "ALTER ROLE app PASSWORD 'Hunter2-secret'"
    _write(log, f"2026-11-25 UTC [1] ERROR:  boom\n2026-11-25 UTC [1] STATEMENT:  {statement}\n")
    before = _last_audit_id()
    _, lines = read_new(host, LogCursor(str(log)), max_bytes=4096)
    found = search(host, str(log), "ALTER ROLE")
    shown = page(host, str(log)).lines
    assert "Hunter2-secret" not in repr((lines, found, shown))
    assert "ALTER ROLE app PASSWORD" in lines[1] and "ALTER ROLE app PASSWORD" in found[0][2]
    stored = AuditEntry.objects.filter(pk__gt=before)
    assert not any("Hunter2-secret" in e.output for e in stored)


@lab_db
def test_a_missing_log_is_a_clear_failure(host, tmp_path):
    with pytest.raises(LogUnreadable, match="no log file at"):
        read_new(host, LogCursor(str(tmp_path / "absent.log")), max_bytes=100)


@lab_db
def test_each_remote_call_leaves_its_audit_pair(host, log, dba):
    _write(log, "audited\n")
    before = _last_audit_id()
    read_new(host, LogCursor(str(log)), max_bytes=4096, actor=dba)
    entries = list(AuditEntry.objects.filter(pk__gt=before).order_by("pk"))
    assert [e.status for e in entries] == ["started", "succeeded"] * 2
    for intent, outcome in zip(entries[::2], entries[1::2], strict=True):
        assert outcome.intent_id == intent.pk and intent.node == "bare1"
        assert intent.actor == dba
    assert entries[0].command.endswith(f"stat -L -c '%i %s %n' -- {log}")
    assert entries[2].command.endswith(
        f"dd if={log} iflag=skip_bytes,count_bytes skip=0 count=8 bs=65536 status=none"
    )


# --- The viewer -----------------------------------------------------------------------------


@lab_db
def test_pages_backwards_cover_the_whole_file_once_in_order(host, log):
    text = "".join(f"entry {i:03}\n" for i in range(100))  # 10 bytes a line
    _write(log, text)
    pages = [page(host, str(log), size=95)]
    while not pages[-1].at_start:
        pages.append(page(host, str(log), before_offset=pages[-1].start, size=95))
    lines = [line for p in reversed(pages) for line in p.lines]
    assert [text for _, text in lines] == text.splitlines()
    assert [offset for offset, _ in lines] == list(range(0, 1000, 10))


@lab_db
def test_a_page_with_search_keeps_only_matching_lines(host, log):
    _write(log, "plain\nERROR:  one\nplain\nerror:  two\n")
    found = page(host, str(log), search="Error:")
    assert found.lines == [(6, "ERROR:  one"), (24, "error:  two")]


@lab_db
def test_search_takes_quotes_substitution_and_semicolons_as_a_fixed_string(host, log, tmp_path):
    canary = tmp_path / "canary"
    term = f'it\'s "$(touch {canary})"; `touch {canary}`; -v .*'
    _write(log, f"before\nsaid {term} here\nafter .* -v\n")
    matches = search(host, str(log), term)
    assert matches == [(2, 7, f"said {term} here")]
    assert page(host, str(log), search=term).lines == [(7, f"said {term} here")]
    assert not canary.exists()


@lab_db
def test_search_is_bounded_by_max_matches(host, log):
    _write(log, "hit\n" * 50)
    assert [m[0] for m in search(host, str(log), "hit", max_matches=3)] == [1, 2, 3]


def test_a_search_term_must_be_one_line():
    for term in ("", "a\nb", "x" * 201):
        with pytest.raises(LogUnreadable, match="one line"):
            search(None, "/dev/null", term)


@lab_db
def test_sudo_user_reads_a_log_only_its_owner_can_read(lab_host, lab_env):
    db1 = lab_host("db1")
    path = str(Path(lab_env["LAB_DIR"]) / "primary" / "postgres.log")
    assert page(db1, path, size=4096, sudo_user="postgres").lines
    result = run_command(db1, ["stat", "-c", "%a %U", "--", path])
    assert result.stdout.split() == ["600", "postgres"]
