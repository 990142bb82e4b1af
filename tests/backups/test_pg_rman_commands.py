"""The pg_rman driver's builders against the real captured commands of pg_rman 1.3.19 (no
server needed): each rebuilds its captured argv exactly, and bad input is refused naming the
field before any argv exists. Its parsers and exit codes: test_pg_rman_parsers.py,
test_pg_rman_errors.py."""

import pytest

from backups.drivers import pg_rman
from backups.drivers.base import Command, DriverInputError
from backups.drivers.pg_rman import Connection, RecoveryTarget, Retention
from tests.backups.pg_rman_captures import capture

B, D, SOCK, PORT = "/srv/pgr/backup", "/srv/pgr/data", "/srv/pgr", 55432
LOCAL = Connection(host=SOCK, port=PORT)


# --- Builders: each captured command, rebuilt exactly ------------------------------------------

BUILT = {
    "init.txt": lambda: pg_rman.init(B, D),
    "init-second-catalog.txt": lambda: pg_rman.init("/srv/pgr/backup2", D),
    "backup-full.txt": lambda: pg_rman.backup(B, D, "full", connection=LOCAL),
    "backup-incremental.txt": lambda: pg_rman.backup(B, D, "incremental", connection=LOCAL),
    "backup-archive.txt": lambda: pg_rman.backup(B, D, "archive", connection=LOCAL),
    "backup-archive-keep-arclog-days.txt": lambda: pg_rman.backup(
        B, D, "archive", connection=LOCAL, retention=Retention(keep_arclog_days=3)
    ),
    "backup-full-keep-data-generations.txt": lambda: pg_rman.backup(
        B, D, "full", connection=LOCAL, retention=Retention(keep_data_generations=2)
    ),
    "backup-incremental-full-backup-on-error.txt": lambda: pg_rman.backup(
        "/srv/pgr/backup2", D, "incremental", connection=LOCAL, full_backup_on_error=True
    ),
    "show.txt": lambda: pg_rman.show(B),
    "show-detail.txt": lambda: pg_rman.show(B, detail=True),
    "show-all.txt": lambda: pg_rman.show(B, show_all=True),
    "show-detail-after-failed-backup.txt": lambda: pg_rman.show(B, detail=True, show_all=True),
    "show-date-prefix.txt": lambda: pg_rman.show(B, date="2026-11-25"),
    "show-detail-date-prefix.txt": lambda: pg_rman.show(B, detail=True, date="2026-11-25"),
    "show-timestamp-full.txt": lambda: pg_rman.show(B, date="2026-11-25 20:23:43"),
    "show-detail-timestamp.txt": lambda: pg_rman.show(B, detail=True, date="2026-11-25 20:23:55"),
    "validate.txt": lambda: pg_rman.validate(B),
    "validate-single-timestamp.txt": lambda: pg_rman.validate(
        "/srv/pgr/backup2", "2026-11-25 20:25:58"
    ),
    "delete.txt": lambda: pg_rman.delete(B, "2026-11-25 20:25:00"),
    "delete-check.txt": lambda: pg_rman.delete(B, "2026-11-25 20:25:00", check=True),
    "delete-force.txt": lambda: pg_rman.delete(B, "2026-11-25 20:25:25", force=True),
    "purge.txt": lambda: pg_rman.purge(B),
    "restore-check.txt": lambda: pg_rman.restore(
        B, D, RecoveryTarget("time", "2026-11-25 20:24:23"), target_action="promote", check=True
    ),
    "restore-recovery-target-time.txt": lambda: pg_rman.restore(
        B, D, RecoveryTarget("time", "2026-11-25 20:24:23"), target_action="promote"
    ),
    "error-restore-running-server.txt": lambda: pg_rman.restore(B, D),
    "error-restore-no-valid-backup.txt": lambda: pg_rman.restore(
        B, D, RecoveryTarget("time", "2000-01-01 00:00:00")
    ),
}


@pytest.mark.parametrize("name", sorted(BUILT))
def test_builder_rebuilds_the_captured_command_exactly(name):
    command = BUILT[name]()
    assert isinstance(command, Command)
    assert command.os_user == "postgres"
    assert command.argv == capture(name).argv


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("backup-full-compress-serverlog.txt",
         lambda: pg_rman.backup(B, D, "full", connection=LOCAL, with_serverlog=True,
                                compress=True, progress=True)),
        ("backup-full-serverlog-keep-srvlog-arclog-files-data-days.txt",
         lambda: pg_rman.backup(B, D, "full", connection=LOCAL, with_serverlog=True,
                                retention=Retention(keep_srvlog_files=2, keep_arclog_files=4,
                                                    keep_data_days=1))),
    ],
)  # fmt: skip
def test_builder_gives_the_captured_options_in_its_own_order(name, build):
    captured = capture(name).argv
    argv = build().argv
    # The capture wrote --backup-mode=full where the builder writes "-b full"; options are
    # otherwise the same set (getopt reads them in any order).
    normal = [a for a in captured if a != "--backup-mode=full"]
    normal += ["-b", "full"] if "--backup-mode=full" in captured else []
    assert argv[:2] == ["pg_rman", "backup"]
    assert sorted(argv) == sorted(normal)


def test_standby_backup_names_the_standby_and_connects_to_the_primary():
    argv = pg_rman.backup(
        B, "/var/lib/pg/standby", "full", connection=Connection("db1.example", 5432, "postgres",
                                                                 "postgres"),
        standby_host="db2.example", standby_port=5433,
    ).argv  # fmt: skip
    assert argv[argv.index("-h") + 1] == "db1.example"
    assert argv[argv.index("-U") + 1] == "postgres" and argv[argv.index("-d") + 1] == "postgres"
    assert argv[-2:] == ["--standby-host=db2.example", "--standby-port=5433"]
    assert argv[argv.index("-D") + 1] == "/var/lib/pg/standby"


def test_every_help_option_the_builders_use_is_in_pg_rman_help():
    help_text = capture("help.txt").stdout
    used = {
        "--with-serverlog", "--compress-data", "--smooth-checkpoint", "--progress",
        "--keep-data-generations", "--keep-data-days", "--keep-arclog-files",
        "--keep-arclog-days", "--keep-srvlog-files", "--keep-srvlog-days", "--standby-host",
        "--standby-port", "--recovery-target-time", "--recovery-target-xid",
        "--recovery-target-inclusive", "--recovery-target-timeline",
        "--recovery-target-action", "--hard-copy", "--check", "--show-all", "--force",
    }  # fmt: skip
    for option in used:
        assert option in help_text, option
    for short in ("-B,", "-D,", "-A,", "-S,", "-b,", "-F,", "-h,", "-p,", "-U,", "-d,", "-a,"):
        assert f"  {short}" in help_text, short


def test_restore_targets_xid_timeline_inclusive_and_hard_copy():
    xid = pg_rman.restore(B, D, RecoveryTarget("xid", "733", inclusive=False, timeline=1),
                          hard_copy=True).argv  # fmt: skip
    assert xid[6:] == ["--recovery-target-xid", "733", "--recovery-target-timeline", "1",
                       "--recovery-target-inclusive=false", "--hard-copy"]  # fmt: skip
    tli = pg_rman.restore(B, D, RecoveryTarget("timeline", "2"), arclog_path="/a").argv
    assert tli[6:] == ["-A", "/a", "--recovery-target-timeline", "2"]


# --- Input refused before any argv is built ---------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field", "words"),
    [
        (lambda: pg_rman.show("pgr/backup"), "backup_path", "absolute path"),  # cf. capture
        (lambda: pg_rman.backup(B, D, "differential"), "mode", "full, incremental, archive"),
        (lambda: pg_rman.backup(B, "data", "full"), "pgdata", "absolute path"),
        (lambda: pg_rman.backup(B, D, "full", full_backup_on_error=True),
         "full_backup_on_error", "incremental or archive"),
        (lambda: pg_rman.backup(B, D, "full", standby_host="db2"), "standby_host", "port"),
        (lambda: pg_rman.backup(B, D, "full", retention=Retention(keep_data_generations=0)),
         "keep_data_generations", "between 1"),
        (lambda: pg_rman.backup(B, D, "full", connection=Connection(port=70000)), "port", "65535"),
        (lambda: pg_rman.backup(B, D, "full", connection=Connection(user="-W")), "user", "name"),
        (lambda: pg_rman.backup(B, D, "full", connection=Connection(host="a b")), "host", "name"),
        (lambda: pg_rman.restore(B, D, RecoveryTarget("time", "yesterday-ish")),
         "recovery_target_time", "YYYY-MM-DD HH:MM:SS"),  # cf. the capture: refused earlier
        (lambda: pg_rman.restore(B, D, RecoveryTarget("time", "2026-02-30 10:00:00")),
         "recovery_target_time", "not a real date"),
        (lambda: pg_rman.restore(B, D, RecoveryTarget("xid", "abc")), "recovery_target_xid",
         "whole number"),
        (lambda: pg_rman.restore(B, D, RecoveryTarget("timeline", "0")),
         "recovery_target_timeline", "between 1"),
        (lambda: pg_rman.restore(B, D, RecoveryTarget("lsn", "0/1")), "recovery_target_kind",
         "latest, time, xid, timeline"),
        (lambda: pg_rman.restore(B, D, target_action="resume"), "target_action", "promote"),
        (lambda: pg_rman.delete(B, ""), "backup", "YYYY-MM-DD HH:MM:SS"),  # cf. no-date capture
        (lambda: pg_rman.delete(B, "2026-11-25"), "backup", "YYYY-MM-DD HH:MM:SS"),
        (lambda: pg_rman.validate(B, "2026-11-25 25:00:00"), "backup", "not a real date"),
        (lambda: pg_rman.show(B, date="notadate"), "date", "YYYY"),  # cf. the capture
        (lambda: pg_rman.init(B, "/srv/pgr/data\n--x"), "pgdata", "control character"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_field(build, field, words):
    with pytest.raises(DriverInputError) as caught:
        build()
    assert caught.value.field == field
    assert words in caught.value.message


def test_target_times_postgresql_reads_are_accepted():
    for value in ("2026-11-25 20:24:23", "2026-11-25 20:24:23.413336+00",
                  "2026-11-25T20:24:23+09:00", "2026-11-25 20:24:23 UTC"):  # fmt: skip
        assert RecoveryTarget("time", value).argv() == ["--recovery-target-time", value]
