"""The pgBackRest driver against real outputs of pgBackRest 2.45 on the lab's PostgreSQL 15,
recorded by tests/backups/fixtures/pgbackrest/record.sh (which shows every command run)."""

import shlex
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from backups.drivers import pgbackrest as pb
from backups.drivers.base import DriverInputError

FIXTURES = Path(__file__).parent / "fixtures" / "pgbackrest"
REC = "/var/lib/dbconsole-lab-pb/pgbr-rec"
DATA = "/var/lib/dbconsole-lab-pb/primary/data"
SOCKET = "/var/lib/dbconsole-lab-pb/primary/run"
FULL, INCR, DIFF = "20261126-001051F", "20261126-001051F_20261126-001110I", (
    "20261126-001051F_20261126-001113D"
)  # fmt: skip


@dataclass(frozen=True)
class Capture:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str


def capture(name: str) -> Capture:
    text = (FIXTURES / f"{name}.txt").read_text()
    head, _, rest = text.partition("# --- stdout ---\n")
    stdout, _, stderr = rest.partition("# --- stderr ---\n")
    command, exit_line = head.splitlines()[:2]
    return Capture(shlex.split(command.removeprefix("# command: ")),
                   int(exit_line.removeprefix("# exit: ")), stdout, stderr)  # fmt: skip


def test_every_fixture_is_read_by_a_test():
    source = Path(__file__).read_text()
    names = [p.stem for p in FIXTURES.glob("*.txt")]
    assert names and all(f'"{n}"' in source for n in names), names


# --- builders ------------------------------------------------------------------------------


def repo(**kw) -> pb.Repository:
    return pb.Repository(path="/srv/repo", stanza="main", config="/srv/pgbackrest.conf", **kw)


PG = pb.Instance(path="/srv/data", port=5432, socket_path="/srv/run")
HEAD = ["pgbackrest", "--config=/srv/pgbackrest.conf", "--stanza=main", "--repo1-path=/srv/repo",
        "--log-level-console=info", "--log-level-file=off"]  # fmt: skip
PGO = ["--pg1-path=/srv/data", "--pg1-port=5432", "--pg1-socket-path=/srv/run"]


def test_builders_pass_only_the_options_each_command_takes():
    assert pb.stanza_create(repo(), PG).argv == HEAD + PGO + ["stanza-create"]
    assert pb.check(repo(), PG).argv == HEAD + PGO + ["check"]
    assert pb.backup(repo(), PG, "incr").argv == HEAD + PGO + ["--start-fast", "backup",
                                                               "--type=incr"]  # fmt: skip
    retention = pb.Retention(full=2, diff=3)
    assert pb.backup(repo(), PG, "full", retention=retention, compress=False).argv == (
        HEAD
        + PGO
        + [
            "--repo1-retention-full=2",
            "--repo1-retention-diff=3",
            "--start-fast",
            "--compress-type=none",
            "backup",
            "--type=full",
        ]  # fmt: skip
    )
    # info, verify and expire refuse --pg1-* (captured: "option 'pg-path' not valid for
    # command 'info'"); restore refuses --pg1-port.
    assert pb.info(repo()).argv == HEAD + ["info", "--output=json"]
    assert pb.verify(repo()).argv == HEAD + ["verify", "--verbose"]
    assert pb.expire(repo(), pb.Retention(full=1)).argv == HEAD + [
        "--repo1-retention-full=1", "expire"]  # fmt: skip
    target = pb.RestoreTarget("time", "2026-11-26 00:11:13+00")
    assert pb.restore(repo(), "/srv/scratch", target, label=FULL, delta=True).argv == HEAD + [
        "--pg1-path=/srv/scratch", "restore", "--type=time", "--target=2026-11-26 00:11:13+00",
        f"--set={FULL}", "--delta", "--target-action=promote"]  # fmt: skip
    assert pb.restore(repo(), "/srv/scratch").argv == HEAD + ["--pg1-path=/srv/scratch",
                                                              "restore"]  # fmt: skip
    assert pb.archive_command(repo(), "/srv/data") == shlex.join(
        HEAD + ["--pg1-path=/srv/data", "archive-push"]) + " %p"  # fmt: skip


def test_without_a_config_file_no_global_file_is_read():
    bare = pb.Repository(path="/srv/repo", stanza="main", lock_path="/srv/lock")
    assert pb.info(bare).argv[:5] == [
        "pgbackrest", "--no-config", "--stanza=main", "--repo1-path=/srv/repo",
        "--lock-path=/srv/lock",
    ]  # fmt: skip


def test_the_recorded_commands_are_what_the_builders_make():
    rec = pb.Repository(path=f"{REC}/repo", stanza="rec", config=f"{REC}/pgbackrest.conf")
    # The recorder kept repo1-path, lock path and log levels in its conf file.
    head = ["pgbackrest", f"--config={REC}/pgbackrest.conf", "--stanza=rec"]
    pg = pb.Instance(path=DATA, port=5432, socket_path=SOCKET)
    strip = {f"--repo1-path={REC}/repo", "--log-level-console=info", "--log-level-file=off"}

    def ours(command):
        return [a for a in command.argv if a not in strip]

    assert capture("backup-full").argv == ours(pb.backup(rec, pg, "full", start_fast=False))
    assert capture("backup-incr").argv == ours(pb.backup(rec, pg, "incr", start_fast=False))
    assert capture("stanza-create").argv == ours(pb.stanza_create(rec, pg))
    assert capture("info-json").argv == ours(pb.info(rec))
    assert capture("verify").argv == ours(pb.verify(rec))
    assert capture("verify-terse").argv == head + ["verify"]
    assert capture("restore-bad-set").argv == head + [
        "restore", "--set=20990101-000000F", f"--pg1-path={REC}/scratch/bad2"]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: pb.Repository(path="repo", stanza="main"), "path"),
        (lambda: pb.Repository(path="/r", stanza="--delete"), "stanza"),
        (lambda: pb.Repository(path="/r", stanza="a b"), "stanza"),
        (lambda: pb.Repository(path="/r\n", stanza="main"), "path"),
        (lambda: pb.Instance(path="/d", port=0), "port"),
        (lambda: pb.backup(repo(), PG, "incremental"), "mode"),
        (lambda: pb.restore(repo(), "/s", pb.RestoreTarget("time", "yesterday")), "target_value"),
        (
            lambda: pb.restore(repo(), "/s", pb.RestoreTarget("time", "2026-02-30 00:00:00")),
            "target_value",
        ),
        (lambda: pb.restore(repo(), "/s", pb.RestoreTarget("xid", "5")), "target_kind"),
        (
            lambda: pb.restore(repo(), "/s", pb.RestoreTarget("time", "2026-11-26 00:00:00Z")),
            "target_value",
        ),
        (lambda: pb.restore(repo(), "/s", label="latest"), "backup"),
        (lambda: pb.restore(repo(), "relative"), "target_data_directory"),
        (
            lambda: pb.restore(
                repo(), "/s", pb.RestoreTarget("time", "2026-11-26 00:00:00"), target_action="drop"
            ),
            "target_action",
        ),
        (lambda: pb.expire(repo(), pb.Retention(full=0)), "retention_full"),
    ],
)
def test_bad_input_is_refused_naming_the_field(make, field):
    with pytest.raises(DriverInputError) as caught:
        make()
    assert caught.value.field == field


def test_pgbackrest_itself_would_take_yesterday_only_to_fail_later():
    # Why the driver checks times first: pgBackRest reads the value only when choosing a set.
    bad = capture("restore-bad-target")
    assert bad.argv[-3:-1] == ["--target=yesterday", "--target-action=promote"]
    error = pb.engine_error(bad.exit_code, bad.stdout, bad.stderr)
    assert error.code == "FormatError"
    assert "automatic backup set selection cannot be performed with provided time" in error.error


# --- parsers -------------------------------------------------------------------------------


def test_info_json_lists_every_backup_with_its_chain_sizes_and_wal():
    (stanza,) = pb.parse_info(capture("info-json").stdout)
    assert (stanza.name, stanza.status_code, stanza.status) == ("rec", 0, "ok")
    assert not stanza.backup_running
    assert [b.label for b in stanza.backups] == ["20261126-001033F", FULL, INCR, DIFF]
    first, full, incr, diff = stanza.backups
    assert [b.parsed.mode for b in stanza.backups] == ["full", "full", "incr", "diff"]
    assert first.parsed.started == datetime(2026, 11, 26, 0, 10, 33)
    assert first.parsed.ended == datetime(2026, 11, 26, 0, 10, 50)
    assert first.parsed.database_bytes == first.parsed.data_bytes == 53629104
    assert first.parsed.written_bytes == 7173952
    assert (first.wal_start, first.wal_stop) == ("000000010000000000000014",
                                                 "000000010000000000000015")  # fmt: skip
    assert (first.parsed.start_lsn, first.parsed.stop_lsn) == ("0/14000028", "0/15000050")
    assert first.parsed.timeline == 1 and first.parsed.exact
    assert all(b.parsed.status == "done" and not b.error for b in stanza.backups)
    assert (full.prior, full.references) == (None, ())
    assert incr.prior == FULL and incr.references == (FULL,)
    assert diff.prior == FULL and FULL in diff.references
    assert incr.parsed.data_bytes < full.parsed.data_bytes / 5  # only what changed
    assert incr.parsed.database_bytes >= full.parsed.database_bytes
    assert (stanza.wal_min, stanza.wal_max) == ("000000010000000000000013",
                                                "00000001000000000000001B")  # fmt: skip


def test_info_json_of_a_missing_and_an_empty_stanza():
    (missing,) = pb.parse_info(capture("info-json-no-stanza").stdout)
    assert (missing.status_code, missing.status, missing.backups) == (1, "missing stanza path", [])
    (empty,) = pb.parse_info(capture("info-json-empty").stdout)
    assert (empty.status_code, empty.status, empty.backups) == (2, "no valid backups", [])


def test_verify_marks_every_sound_backup_ok():
    result = pb.parse_verify(capture("verify").stdout)
    assert result.status == "ok" and result.invalid_files == []
    assert set(result.backups.values()) == {"valid"} and len(result.backups) == 4
    assert result.files_checked[FULL] == (2168, 2168)
    (stanza,) = pb.parse_info(capture("info-json").stdout)
    assert {b.parsed.status for b in pb.apply_verify(stanza.backups, result)} == {"ok"}
    # Without --verbose a sound stanza lists nothing: the console always asks for --verbose.
    assert pb.parse_verify(capture("verify-terse").stdout).backups == {}


def test_a_damaged_file_makes_its_backup_and_those_that_reuse_it_corrupt():
    result = pb.parse_verify(capture("verify-damaged").stdout)
    assert capture("verify-damaged").exit_code == 0  # verify exits 0 all the same
    assert result.status == "error"
    assert result.invalid_files == [f"{FULL}/pg_data/global/pg_control.gz"]
    # pgBackRest reports the file only under the full that stores it; the incr and diff
    # reference the full (they reuse its unchanged files), so the console, which reads no
    # manifest to know which files, never offers them either.
    assert result.backups == {FULL: "invalid", INCR: "valid", DIFF: "valid"}
    (stanza,) = pb.parse_info(capture("info-json-damaged").stdout)
    statuses = {b.label: b.parsed.status for b in pb.apply_verify(stanza.backups, result)}
    assert statuses == {FULL: "corrupt", INCR: "corrupt", DIFF: "corrupt"}


def test_backup_output_gives_the_label_and_a_changed_type():
    full = capture("backup-full")
    assert pb.new_label(full.stdout) == FULL and pb.changed_type(full.stderr) is None
    assert pb.new_label(capture("backup-incr").stdout) == INCR
    assert pb.new_label(capture("backup-diff").stdout) == DIFF
    first = capture("backup-incr-no-full")
    assert pb.new_label(first.stdout) == "20261126-001033F"
    assert pb.changed_type(first.stderr) == "full"
    assert pb.engine_error(full.exit_code, full.stdout, full.stderr) is None
    texts = [m.text for m in pb.parse_messages(full.stdout)]
    assert any(t.startswith("expire command end: completed successfully (") for t in texts)


@pytest.mark.parametrize(
    ("name", "code", "error", "hint"),
    [
        ("backup-full-no-stanza", "FileMissingError",
         f"unable to load info file '{REC}/repo/backup/rec/backup.info'", "has a stanza-create"),
        ("check-wrong-port", "ConfigError", "no database found", "check indexed pg-path"),
        ("restore-running", "PgRunningError", "unable to restore while PostgreSQL is running",
         f"presence of 'postmaster.pid' in '{DATA}' indicates PostgreSQL is running"),
        ("restore-bad-set", "BackupSetInvalidError", "backup set 20990101-000000F is not valid",
         ""),
    ],
)  # fmt: skip
def test_errors_are_explained_with_pgbackrest_words(name, code, error, hint):
    cap = capture(name)
    explained = pb.engine_error(cap.exit_code, cap.stdout, cap.stderr)
    assert explained.code == code and explained.exit_code == cap.exit_code
    assert explained.error.startswith(error)
    assert hint in explained.hint
    assert explained.message.startswith(pb.EXIT_CODES[cap.exit_code][1])
    assert f"pgBackRest: {explained.error}" in explained.message


def test_a_host_without_pgbackrest_is_named():
    error = pb.engine_error(1, "", "sudo: pgbackrest: command not found\n")
    assert error.code == "NOT_INSTALLED"
    assert error.message.startswith("pgBackRest is not installed on this host.")


def test_the_other_successful_captures_exit_zero_and_say_so():
    for name in ("stanza-create", "check", "restore-time", "expire-retention-full-1",
                 "info-text"):  # fmt: skip
        cap = capture(name)
        assert pb.engine_error(cap.exit_code, cap.stdout, cap.stderr) is None, name
    restore = [m.text for m in pb.parse_messages(capture("restore-time").stdout)]
    assert f"repo1: restore backup set {DIFF}, recovery will start at 2026-11-26 00:11:13" in (
        restore
    )  # fmt: skip
    expire = capture("expire-retention-full-1").stdout
    assert "expire full backup 20261126-001033F" in expire
    assert "stanza: rec" in capture("info-text").stdout
