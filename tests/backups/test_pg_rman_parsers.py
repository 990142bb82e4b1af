"""The pg_rman driver's parsers against the real captured outputs of pg_rman 1.3.19 (no server
needed): every `show` table and ini dump, stderr messages, progress, validate, delete, purge,
retention and restore output, the catalog's files; and no fixture file left unread by the
driver's three test modules (builders: test_pg_rman_commands.py, exit codes:
test_pg_rman_errors.py)."""

from datetime import datetime

import pytest

from backups.drivers import pg_rman
from tests.backups.pg_rman_captures import FIXTURES, capture, pg_rman_captures, raw
from tests.backups.test_pg_rman_commands import BUILT
from tests.backups.test_pg_rman_errors import ERRORS

MB = 10**6


def ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


# --- show tables -------------------------------------------------------------------------------


def test_show_detail_reads_every_row_with_its_sizes_and_status():
    rows = pg_rman.parse_show(capture("show-detail.txt").stdout)
    got = [(r.backup_id, r.ended, r.mode, r.data_bytes, r.arclog_bytes, r.srvlog_bytes,
            r.written_bytes, r.compressed, r.timeline, r.parent_timeline, r.status)
           for r in rows]  # fmt: skip
    assert got == [
        ("2026-11-25 20:23:55", ts("2026-11-25 20:23:57"), "full", 23 * MB, 33 * MB, 1481,
         3072 * 10**3, True, 1, 0, "ok"),
        ("2026-11-25 20:23:53", ts("2026-11-25 20:23:54"), "archive", None, 16 * MB, None,
         16 * MB, False, 1, 0, "ok"),
        ("2026-11-25 20:23:50", ts("2026-11-25 20:23:52"), "incremental", 188 * 10**3, 33 * MB,
         None, 33 * MB, False, 1, 0, "ok"),
        ("2026-11-25 20:23:43", ts("2026-11-25 20:23:45"), "full", 23 * MB, 33 * MB, None,
         49 * MB, False, 1, 0, "ok"),
    ]  # fmt: skip
    assert all(not r.exact for r in rows)
    assert rows[0].started == ts("2026-11-25 20:23:55")
    assert rows[0].total_bytes == 23 * MB + 33 * MB + 1481


def test_show_reads_the_short_table():
    rows = pg_rman.parse_show(capture("show.txt").stdout)
    assert [(r.backup_id, r.mode, r.written_bytes, r.timeline, r.status) for r in rows] == [
        ("2026-11-25 20:23:55", "full", 3072 * 10**3, 1, "ok"),
        ("2026-11-25 20:23:53", "archive", 16 * MB, 1, "ok"),
        ("2026-11-25 20:23:50", "incremental", 33 * MB, 1, "ok"),
        ("2026-11-25 20:23:43", "full", 49 * MB, 1, "ok"),
    ]
    assert rows[0].data_bytes is None and rows[0].parent_timeline is None


def test_a_backup_is_done_until_validated_then_ok():
    (before,) = pg_rman.parse_show(capture("show-before-validate.txt").stdout)
    (after,) = pg_rman.parse_show(capture("show-after-validate.txt").stdout)
    assert (before.backup_id, before.status) == ("2026-11-25 20:23:43", "done")
    assert (after.backup_id, after.status) == ("2026-11-25 20:23:43", "ok")
    second = pg_rman.parse_show(capture("show-second-catalog-before-validate.txt").stdout)
    assert [r.status for r in second] == ["done", "done", "error"]


def test_a_corrupted_backup_is_listed_corrupt():
    rows = pg_rman.parse_show(capture("show-with-corrupt.txt").stdout)
    assert [(r.backup_id, r.status, r.written_bytes) for r in rows] == [
        ("2026-11-25 20:25:58", "corrupt", 150 * MB),
        ("2026-11-25 20:25:55", "ok", 116 * MB),
        ("2026-11-25 20:25:54", "error", 0),
    ]
    detail = pg_rman.parse_show(capture("show-detail-with-corrupt.txt").stdout)
    assert [(r.status, r.arclog_bytes, r.timeline, r.parent_timeline) for r in detail] == [
        ("corrupt", 134 * MB, 2, 1),
        ("ok", 100 * MB, 2, 1),
        ("error", None, 2, 1),
    ]
    (one,) = pg_rman.parse_show(capture("show-timestamp-corrupt.txt").stdout)
    assert (one.status, one.written_bytes, one.arclog_bytes) == ("corrupt", 150550160, 134219164)
    corrupt_ini = pg_rman.parse_backup_ini(raw("backup-corrupt.ini"))
    assert corrupt_ini == one


def test_a_failed_backup_is_listed_error_with_timeline_zero():
    rows = pg_rman.parse_show(capture("show-after-failed-backup.txt").stdout)
    assert [(r.backup_id, r.mode, r.written_bytes, r.timeline, r.status) for r in rows[:2]] == [
        ("2026-11-25 20:24:32", "full", 0, 0, "error"),
        ("2026-11-25 20:24:28", "archive", 16 * MB, 1, "ok"),
    ]
    assert len(rows) == 6
    detail = pg_rman.parse_show(capture("show-detail-after-failed-backup.txt").stdout)
    assert (detail[0].data_bytes, detail[0].written_bytes, detail[0].status) == (None, 0, "error")
    (one,) = pg_rman.parse_show(capture("show-timestamp-error-backup.txt").stdout)
    assert (one.status, one.timeline, one.recovery_xid, one.recovery_time) == ("error", 0, None,
                                                                               None)  # fmt: skip
    incr = pg_rman.parse_show(capture("show-after-incremental-without-full.txt").stdout)
    assert [(r.mode, r.status, r.timeline) for r in incr] == [("incremental", "error", 2)]


def test_deleted_backups_are_listed_only_with_show_all():
    shown = pg_rman.parse_show(capture("show-after-retention.txt").stdout)
    everything = pg_rman.parse_show(capture("show-all-after-retention.txt").stdout)
    assert {r.status for r in shown} == {"ok", "error"}
    assert [r.backup_id for r in everything if r.status == "deleted"] == [
        "2026-11-25 20:23:53",
        "2026-11-25 20:23:50",
        "2026-11-25 20:23:43",
    ]
    assert [r.backup_id for r in everything if r.status != "deleted"] == [
        r.backup_id for r in shown
    ]
    after_delete = pg_rman.parse_show(capture("show-all-after-delete.txt").stdout)
    assert [r.status for r in after_delete] == ["ok"] * 4 + ["deleted"] * 6
    forced = pg_rman.parse_show(capture("show-all-after-delete-force.txt").stdout)
    assert [r.status for r in forced] == ["ok"] * 2 + ["deleted"] * 8
    purged = pg_rman.parse_show(capture("show-all-after-purge.txt").stdout)
    assert [r.backup_id for r in purged] == ["2026-11-25 20:25:36", "2026-11-25 20:25:29"]
    detail = pg_rman.parse_show(capture("show-detail-all-after-delete.txt").stdout)
    assert [(r.srvlog_bytes, r.status) for r in detail[:2]] == [(5837, "ok"), (None, "ok")]
    assert [r.status for r in detail].count("deleted") == 6


def test_listings_of_every_kind_agree_on_the_same_backups():
    plain = pg_rman.parse_show(capture("show-all.txt").stdout)
    by_date = pg_rman.parse_show(capture("show-date-prefix.txt").stdout)
    detail_by_date = pg_rman.parse_show(capture("show-detail-date-prefix.txt").stdout)
    assert [r.backup_id for r in plain] == [r.backup_id for r in by_date]
    assert [r.backup_id for r in detail_by_date] == [r.backup_id for r in plain]
    restored = pg_rman.parse_show(capture("show-detail-after-restore.txt").stdout)
    assert (restored[0].timeline, restored[0].parent_timeline, restored[0].arclog_bytes) == (
        2,
        1,
        100 * MB,
    )


def test_no_backup_gives_an_empty_listing():
    cap = capture("show-nonexistent-timestamp.txt")
    assert pg_rman.parse_show(cap.stdout) == []
    assert pg_rman.parse_messages(cap.stderr)[0].level == "NOTICE"


# --- show DATE / backup.ini --------------------------------------------------------------------


def test_show_timestamp_gives_exact_bytes_lsns_and_recovery_point():
    (full,) = pg_rman.parse_show(capture("show-timestamp-full.txt").stdout)
    assert full.exact
    assert (full.mode, full.status, full.timeline) == ("full", "ok", 1)
    assert (full.start_lsn, full.stop_lsn) == ("0/02000028", "0/02000100")
    assert (full.data_bytes, full.arclog_bytes, full.srvlog_bytes) == (23592411, 33554777, None)
    assert (full.written_bytes, full.database_bytes) == (49760228, 23592643)
    assert (full.recovery_xid, full.recovery_time) == (726, ts("2026-11-25 20:23:45"))
    assert (full.compressed, full.with_serverlog) == (False, False)
    (incr,) = pg_rman.parse_show(capture("show-timestamp-incremental.txt").stdout)
    assert (incr.mode, incr.data_bytes, incr.written_bytes) == ("incremental", 188424, 33644913)
    (arch,) = pg_rman.parse_show(capture("show-timestamp-archive.txt").stdout)
    assert (arch.mode, arch.data_bytes, arch.start_lsn, arch.stop_lsn) == (
        "archive",
        None,
        "0/00000000",
        "0/05009FB0",
    )
    (comp,) = pg_rman.parse_show(capture("show-timestamp-full-compress-serverlog.txt").stdout)
    assert (comp.compressed, comp.with_serverlog, comp.srvlog_bytes, comp.written_bytes) == (
        True,
        True,
        1481,
        3072757,
    )
    # `show detail` with a full start time prints the same dump
    assert pg_rman.parse_show(capture("show-detail-timestamp.txt").stdout) == [comp]


def test_rounded_sizes_are_lower_bounds_of_the_exact_ones():
    rows = {r.backup_id: r for r in pg_rman.parse_show(capture("show-detail.txt").stdout)}
    for name in ("show-timestamp-full.txt", "show-timestamp-incremental.txt",
                 "show-timestamp-archive.txt",
                 "show-timestamp-full-compress-serverlog.txt"):  # fmt: skip
        (exact,) = pg_rman.parse_show(capture(name).stdout)
        shown = rows[exact.backup_id]
        line = capture("show-detail.txt").stdout.splitlines()[3 + list(rows).index(exact.backup_id)]
        names = ("data_bytes", "arclog_bytes", "srvlog_bytes", "written_bytes")
        printed = dict(zip(names, line.split()[5:9], strict=True))
        for field in ("data_bytes", "arclog_bytes", "srvlog_bytes", "written_bytes"):
            e, s = getattr(exact, field), getattr(shown, field)
            assert (e is None) == (s is None), (name, field)
            if e is not None:
                # "23MB" is 23,000,000 to 23,999,999 bytes: truncated, never rounded up
                unit = s // int(printed[field].rstrip("kMGTPB"))
                assert s <= e < s + unit, (name, field, s, e)


def test_backup_ini_files_of_the_catalog():
    backup = pg_rman.parse_backup_ini(raw("backup.ini"))
    assert (backup.backup_id, backup.mode, backup.status, backup.timeline) == (
        "2026-11-25 20:25:36",
        "full",
        "ok",
        2,
    )
    assert (backup.srvlog_bytes, backup.written_bytes, backup.recovery_xid) == (5837, 49889704, 739)
    both = pg_rman.parse_backup_inis(raw("backup.ini") + raw("backup-corrupt.ini"))
    assert [(b.backup_id, b.status) for b in both] == [
        ("2026-11-25 20:25:36", "ok"),
        ("2026-11-25 20:25:58", "corrupt"),
    ]
    assert pg_rman.parse_ini(raw("pg_rman.ini")) == {
        "ARCLOG_PATH": "/srv/pgr/arclog",
        "SRVLOG_PATH": "/srv/pgr/srvlog",
    }
    assert pg_rman.parse_ini(raw("catalog-system_identifier")) == {
        "SYSTEM_IDENTIFIER": "7712207406706533574"
    }
    # the verbose backup prints its configuration section on stderr: not messages
    verbose = capture("backup-full-verbose.txt")
    assert [m.level for m in pg_rman.parse_messages(verbose.stderr)] == ["INFO"] * 4
    assert "(1/1001) PG_VERSION copied 3" in verbose.stdout


def test_catalog_layout_and_file_lists():
    tree = capture("catalog-tree.txt").stdout.split()
    for backup_id in ("2026-11-25 20:25:29", "2026-11-25 20:25:36"):
        directory = pg_rman.backup_directory("/srv/pgr/backup", backup_id)
        assert "." + directory.removeprefix("/srv/pgr/backup") + "/backup.ini" in tree
    files = pg_rman.parse_file_list(raw("catalog-file_arclog.txt"))
    assert files[-3:] == [
        ("00000002000000000000000D", 16777216),
        ("00000002000000000000000E", 16777216),
        ("00000002000000000000000E.00000028.backup", 345),
    ]
    assert files[0] == ("000000010000000000000006", None)  # kept in an earlier backup
    srvlog = pg_rman.parse_file_list(raw("catalog-file_srvlog.txt"))
    assert sum(size for _, size in srvlog) == 2218 + 3275 + 0 + 344
    database = pg_rman.parse_file_list(raw("catalog-file_database-head.txt"))
    assert database[0] == ("backup_label", 232) and ("base", 0) in database
    history = raw("catalog-timeline_history-00000002.history")
    assert pg_rman.parse_timeline_history(history) == [(1, "0/801D4C8")]


# --- stderr: messages, progress, validate -------------------------------------------------------


def test_progress_with_carriage_returns_gives_the_last_count_of_each_phase():
    cap = capture("backup-full-compress-serverlog.txt")
    assert "\r" in cap.stderr
    assert pg_rman.parse_progress(cap.stderr) == [
        pg_rman.Progress("database files", 999, 999, 0),
        pg_rman.Progress("archived WAL files", 10, 10, 7),
        pg_rman.Progress("server log files", 1, 1, 0),
    ]
    assert [m.text for m in pg_rman.parse_messages(cap.stderr)] == [
        "copying database files", "copying archived WAL files", "copying server log files",
        "backup complete",
        "Please execute 'pg_rman validate' to verify the files are correctly copied.",
    ]  # fmt: skip


def test_init_reports_the_paths_it_set():
    assert pg_rman.parse_init(capture("init.txt").stderr) == {
        "ARCLOG_PATH": "/srv/pgr/arclog",
        "SRVLOG_PATH": "/srv/pgr/srvlog",
    }
    assert pg_rman.parse_init(capture("init-second-catalog.txt").stderr)["ARCLOG_PATH"] == (
        "/srv/pgr/arclog"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("validate.txt", {"2026-11-25 20:23:43": "ok"}),
        ("validate-incremental.txt", {"2026-11-25 20:23:50": "ok"}),
        ("validate-archive.txt", {"2026-11-25 20:23:53": "ok"}),
        ("validate-archive-2.txt", {"2026-11-25 20:24:28": "ok"}),
        ("validate-archive-keep-arclog-days.txt", {"2026-11-25 20:25:21": "ok"}),
        ("validate-full-compress-serverlog.txt", {"2026-11-25 20:23:55": "ok"}),
        ("validate-full-after-restore-tli2.txt", {"2026-11-25 20:24:58": "ok"}),
        ("validate-full-keep-data-generations.txt", {"2026-11-25 20:25:29": "ok"}),
        ("validate-full-serverlog-keep.txt", {"2026-11-25 20:25:36": "ok"}),
        ("validate-corrupt.txt", {"2026-11-25 20:25:55": "ok", "2026-11-25 20:25:58": "corrupt"}),
        ("validate-nonexistent.txt", {}),
        ("validate-nothing-to-validate.txt", {}),
        ("validate-single-timestamp.txt", {}),
    ],
)
def test_validate_results(name, expected):
    cap = capture(name)
    assert cap.exit_code == 0  # a corrupt backup is a WARNING, not an exit code
    assert pg_rman.parse_validate(cap.stderr) == expected


def test_validate_corrupt_warns():
    cap = capture("validate-corrupt.txt")
    warnings = [m.text for m in pg_rman.parse_messages(cap.stderr) if m.level == "WARNING"]
    assert warnings == ["CRC calculation showed incorrect result",
                        'backup "2026-11-25 20:25:58" is corrupted']  # fmt: skip


# --- delete, purge, retention, restore ---------------------------------------------------------


def test_delete_and_its_check_list_what_goes_and_what_is_kept():
    for name in ("delete.txt", "delete-check.txt"):
        result = pg_rman.parse_delete(capture(name).stderr)
        assert result.deleted == ["2026-11-25 20:24:32", "2026-11-25 20:24:28",
                                  "2026-11-25 20:23:55"]  # fmt: skip
        assert result.kept == {
            "2026-11-25 20:24:58": "This is the latest full backup necessary for successful "
            "recovery."
        }
    forced = pg_rman.parse_delete(capture("delete-force.txt").stderr)
    assert forced.deleted == ["2026-11-25 20:25:21", "2026-11-25 20:24:58"] and not forced.kept


def test_purge_lists_what_it_removed():
    assert len(pg_rman.parse_purged(capture("purge.txt").stderr)) == 8
    assert pg_rman.parse_purged(capture("purge.txt").stderr)[0] == "2026-11-25 20:25:21"
    assert pg_rman.parse_purged(capture("purge-nothing.txt").stderr) == []


def test_retention_after_a_backup():
    days = pg_rman.parse_retention(capture("backup-archive-keep-arclog-days.txt").stderr)
    assert len(days.wal_files) == 7 and "000000010000000000000001" in days.wal_files
    assert days.backups == [] and days.srvlog_files == []
    generations = pg_rman.parse_retention(capture("backup-full-keep-data-generations.txt").stderr)
    assert generations.backups == ["2026-11-25 20:23:53", "2026-11-25 20:23:50",
                                   "2026-11-25 20:23:43"]  # fmt: skip
    several = pg_rman.parse_retention(
        capture("backup-full-serverlog-keep-srvlog-arclog-files-data-days.txt").stderr
    )
    assert len(several.wal_files) == 9
    assert several.srvlog_files == ["postgresql-2026-11-25_202440.log",
                                    "postgresql-2026-11-25_202338.log"]  # fmt: skip
    assert several.backups == []
    for name in ("backup-full.txt", "backup-incremental.txt", "backup-archive.txt",
                 "backup-archive-2.txt", "backup-full-after-restore-tli2.txt",
                 "backup-incremental-full-backup-on-error.txt"):  # fmt: skip
        messages = pg_rman.parse_messages(capture(name).stderr)
        assert "backup complete" in [m.text for m in messages], name
        assert pg_rman.parse_retention(capture(name).stderr) == pg_rman.RetentionResult()
    turned = pg_rman.parse_messages(capture("backup-incremental-full-backup-on-error.txt").stderr)
    assert ("NOTICE", "turn to take a full backup") in [(m.level, m.text) for m in turned]


def test_restore_check_lists_the_base_backup_and_the_wal():
    cap = capture("restore-check.txt")
    plan = pg_rman.parse_restore(cap.stdout, cap.stderr)
    assert plan.timeline == 1
    assert plan.base_backup == "2026-11-25 20:23:55"
    assert plan.wal_backups == ["2026-11-25 20:23:55", "2026-11-25 20:24:28"]
    assert plan.incremental_backups == []
    assert plan.wal_segments == [
        ("000000010000000000000007", "000000010000000000000007"),
        ("000000010000000000000008", "000000010000000000000008"),
        ("000000010000000000000009", "000000010000000000000009"),
        ("00000001000000000000000A", "00000001000000000000000C"),
    ]
    assert not plan.complete


def test_restore_completes_with_pg_rman_hint_and_recovery_files():
    cap = capture("restore-recovery-target-time.txt")
    plan = pg_rman.parse_restore(cap.stdout, cap.stderr)
    assert plan.complete and plan.base_backup == "2026-11-25 20:23:55"
    assert plan.hint.startswith("Recovery will start automatically")
    conf = pg_rman.parse_ini(raw("restore-pg_rman_recovery.conf").replace(" = ", "="))
    assert conf["recovery_target_time"] == "2026-11-25 20:24:23"
    assert conf["recovery_target_action"] == "promote"
    assert raw("restore-recovery.signal").startswith("# recovery.signal generated by pg_rman")


def test_the_captured_restore_kept_exactly_the_rows_before_the_target():
    def batches(name):
        lines = capture(name).stdout.splitlines()[2:]
        return {ln.split("|")[0].strip(): int(ln.split("|")[1]) for ln in lines if "|" in ln}

    before, after = batches("psql-rows-before-restore.txt"), batches("psql-rows-after-restore.txt")
    assert set(before) - set(after) == {"b4-after-target"}
    assert all(after[b] == before[b] for b in after)
    log = raw("restore-server-log-excerpt.txt")
    assert "starting point-in-time recovery to 2026-11-25 20:24:23+00" in log
    assert "selected new timeline ID: 2" in log


def test_every_fixture_file_is_read_by_a_test():
    import re
    from pathlib import Path

    # The driver's tests are split by concern (commands, parsers, errors): read all three.
    source = "".join(
        Path(__file__).with_name(f"test_pg_rman_{part}.py").read_text()
        for part in ("commands", "parsers", "errors")
    )
    names = set(re.findall(r'"([\w.-]+\.(?:txt|ini|conf|signal|history))"', source))
    names |= set(BUILT) | set(ERRORS) | {"catalog-system_identifier"}
    names |= {n for n in pg_rman_captures()}  # all pass test_every_capture_maps_its_exit_code
    everything = {p.name for p in FIXTURES.iterdir() if p.name != "README.md"}
    assert everything - names == set()
