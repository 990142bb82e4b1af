"""The pg_rman driver's exit codes against the real captured runs of pg_rman 1.3.19 (no server
needed): every capture maps its exit code, every error capture gives its clear message, and a
host without pg_rman is named as such. Builders and parsers: test_pg_rman_commands.py,
test_pg_rman_parsers.py."""

import pytest

from backups.drivers import pg_rman
from tests.backups.pg_rman_captures import capture, pg_rman_captures


@pytest.mark.parametrize("name", pg_rman_captures())
def test_every_capture_maps_its_exit_code(name):
    cap = capture(name)
    error = pg_rman.engine_error(cap.exit_code, cap.stderr)
    if cap.exit_code == 0:
        assert error is None
        assert not [m for m in pg_rman.parse_messages(cap.stderr) if m.level == "ERROR"]
    else:
        assert error.code == pg_rman.EXIT_CODES[cap.exit_code][0]
        assert error.message.startswith(error.summary)


ERRORS = {
    "error-backup-server-down.txt": (
        15, "ERROR_PG_CONNECT", "pg_rman could not connect to PostgreSQL",
        'could not connect to database postgres: connection to server on socket '
        '"/srv/pgr/.s.PGSQL.55432" failed: No such file or directory Is the server running '
        "locally and accepting connections on that socket?", "", ""),
    "error-delete-no-date.txt": (
        12, "ERROR_ARGS", "pg_rman refused its arguments", "delete range option not specified",
        "", "Please run with 'pg_rman delete DATE'."),
    "error-incremental-without-full.txt": (
        10, "ERROR_SYSTEM",
        "An incremental backup needs a validated full backup on the current timeline",
        "cannot take an incremental backup",
        "There is no validated full backup with current timeline.",
        "Please take a full backup and validate it before doing an incremental backup. Or use "
        "with --full-backup-on-error command line option."),
    "error-init-catalog-exists.txt": (
        2, "ERROR", "The catalog directory already holds a catalog (init needs an empty "
        "directory)", "backup catalog already exist and it's not empty", "", ""),
    "error-invalid-backup-mode.txt": (
        12, "ERROR_ARGS", "pg_rman refused its arguments", 'invalid backup-mode "differential"',
        "", ""),
    "error-invalid-command.txt": (
        12, "ERROR_ARGS", "pg_rman refused its arguments", 'invalid command "frobnicate"', "", ""),
    "error-no-backup-mode.txt": (
        12, "ERROR_ARGS", "pg_rman refused its arguments",
        "required parameter not specified: BACKUP_MODE (-b, --backup-mode)", "", ""),
    "error-no-catalog.txt": (
        12, "ERROR_ARGS", "pg_rman refused its arguments",
        "required parameter not specified: BACKUP_PATH (-B, --backup-path)", "", ""),
    "error-no-pgdata.txt": (
        12, "ERROR_ARGS", "pg_rman refused its arguments",
        "required parameter not specified: PGDATA (-D, --pgdata)", "", ""),
    "error-relative-backup-path.txt": (
        12, "ERROR_ARGS", "A path given to pg_rman is not absolute",
        "-B, --backup-path must be an absolute path", "", ""),
    "error-restore-invalid-target-time.txt": (
        12, "ERROR_ARGS", "pg_rman refused the recovery target",
        "could not create recovery.conf or add recovery-related options to "
        "postgresql.conf(after PG12) with yesterday-ish", "", ""),
    "error-restore-no-valid-backup.txt": (
        21, "ERROR_NO_BACKUP", "There is no validated backup usable for this request",
        "cannot do restore",
        "There is no valid full backup which can be used for given recovery condition.", ""),
    "error-restore-running-server.txt": (
        25, "ERROR_PG_RUNNING", "PostgreSQL is running on the target: a restore needs it stopped",
        "PostgreSQL server is running", "",
        "Please stop PostgreSQL server before executing restore."),
    "error-show-invalid-date.txt": (
        12, "ERROR_ARGS", "pg_rman refused its arguments",
        'arguments are invalid. near "notadate"', "", ""),
    "show-uninitialized-catalog.txt": (
        10, "ERROR_SYSTEM",
        "The backup catalog could not be read (missing, not initialised or not readable)",
        "could not get list of backup already taken", "", ""),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_each_error_capture_gives_its_clear_message(name):
    exit_code, code, summary, error, detail, hint = ERRORS[name]
    cap = capture(name)
    assert cap.exit_code == exit_code
    got = pg_rman.engine_error(cap.exit_code, cap.stderr)
    assert (got.code, got.summary, got.error, got.detail, got.hint) == (
        code,
        summary,
        error,
        detail,
        hint,
    )
    assert error in got.message and (not hint or f"Hint: {hint}" in got.message)


def test_every_error_capture_is_covered():
    errors = {n for n in pg_rman_captures() if capture(n).exit_code not in (0, 1)}
    assert errors == set(ERRORS)


def test_the_uninitialized_catalog_warning_is_kept():
    cap = capture("show-uninitialized-catalog.txt")
    assert pg_rman.engine_error(cap.exit_code, cap.stderr).warnings == (
        'could not open directory "/srv/pgr/nocatalog": No such file or directory',
    )


def test_usage_and_version_exit_1():
    for name in ("help.txt", "no-command.txt", "version.txt"):
        cap = capture(name)
        assert pg_rman.engine_error(cap.exit_code, cap.stderr).code == "HELP"
    assert pg_rman.parse_version(capture("version.txt").stderr) == "1.3.19"
    assert capture("no-command.txt").argv == ["pg_rman", "-B", "/srv/pgr/backup"]


@pytest.mark.parametrize(
    ("exit_code", "stderr"),
    [
        (1, "sudo: pg_rman: command not found\n"),
        (127, "timeout: failed to run command 'pg_rman': No such file or directory\n"),
    ],
)
def test_a_host_without_pg_rman_is_named_as_such(exit_code, stderr):
    error = pg_rman.engine_error(exit_code, stderr)
    assert error.code == "NOT_INSTALLED"
    assert error.message == "pg_rman is not installed on this host (command not found)."
