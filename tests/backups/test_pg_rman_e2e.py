"""pg_rman end to end against the lab's db1: init a catalog, full backup, validate, read the
catalog into BackupRun rows; an incremental backup without a full one fails with pg_rman's own
words. Runs where a pg_rman binary is installed (the lab hosts share this machine's files);
pg_rman is not packaged by Debian, so elsewhere these tests skip and say why. The commands they
run are checked everywhere by test_the_e2e_commands_are_what_pg_rman_was_captured_running.
"""

import os
import shlex
import shutil
from pathlib import Path

import pytest

from backups import actions
from backups.drivers import pg_rman
from backups.drivers.base import Command
from backups.models import BackupCatalog, BackupRun
from console import audit
from console.models import AuditEntry
from tests.backups.pg_rman_captures import capture

PG_RMAN = shutil.which("pg_rman")
needs_pg_rman = pytest.mark.skipif(
    PG_RMAN is None,
    reason="pg_rman is not installed on this machine (it is not packaged by Debian; the "
    "console never builds or vendors it): the end-to-end pg_rman tests need a pg_rman binary "
    "on PATH; the driver is tested against real captured outputs in "
    "test_pg_rman_{commands,parsers,errors}.py",
)


def e2e_commands(catalog: BackupCatalog, pgdata: str, socket_dir: str, port: int) -> dict:
    """The commands the end-to-end test runs on db1, in order."""
    connection = pg_rman.Connection(host=socket_dir, port=port)
    return {
        "init": pg_rman.init(catalog.path, pgdata, arclog_path=catalog.arclog_path),
        "incremental": pg_rman.backup(catalog.path, pgdata, "incremental", connection=connection),
        "full": pg_rman.backup(
            catalog.path, pgdata, "full", connection=connection, progress=True
        ),  # fmt: skip
        "validate": pg_rman.validate(catalog.path),
    }


def test_the_e2e_commands_are_what_pg_rman_was_captured_running():
    catalog = BackupCatalog(name="e2e", engine="pg_rman", path="/srv/pgr/backup",
                            arclog_path="/srv/pgr/arclog")  # fmt: skip
    commands = e2e_commands(catalog, "/srv/pgr/data", "/srv/pgr", 55432)
    assert all(isinstance(c, Command) and c.os_user == "postgres" for c in commands.values())
    assert commands["init"].argv == capture("init.txt").argv + ["-A", "/srv/pgr/arclog"]
    assert commands["incremental"].argv == capture("backup-incremental.txt").argv
    assert commands["full"].argv == capture("backup-full.txt").argv + ["--progress"]
    assert commands["validate"].argv == capture("validate.txt").argv
    show, inis = actions.catalog_commands(catalog)
    assert show.argv == capture("show-detail-after-failed-backup.txt").argv


# --- against the lab (where pg_rman exists) ---------------------------------------------------


@pytest.fixture
def db1(lab_env, lab):
    from clusters.models import Node
    from console.lab.demo import register_demo

    register_demo({**os.environ, **lab_env})
    node = Node.objects.get(name="db1")
    primary = lab.parts["primary"]
    return node, str(primary.data), str(primary.socket_dir), Path(lab_env["LAB_DIR"])


@pytest.fixture
def catalog(db1):
    node, _pgdata, _socket, lab_dir = db1
    parent = lab_dir / "pg_rman-e2e"
    shutil.rmtree(parent, ignore_errors=True)
    parent.mkdir(mode=0o700)
    shutil.chown(parent, "postgres", "postgres")
    catalog = BackupCatalog.objects.create(
        cluster=node.cluster, name="e2e", engine="pg_rman", path=str(parent / "catalog"),
        arclog_path=str(lab_dir / "archive"),
    )  # fmt: skip
    catalog.nodes.add(node)
    yield catalog
    shutil.rmtree(parent, ignore_errors=True)


@needs_pg_rman
@pytest.mark.django_db(transaction=True)
def test_full_backup_validated_and_read_into_a_usable_run(
    db1, catalog, dba, assert_no_secret_stored
):
    node, pgdata, socket_dir, _ = db1
    commands = e2e_commands(catalog, pgdata, socket_dir, node.db_port)
    init = actions.run_pg_rman(node, commands["init"], actor=dba)
    assert pg_rman.parse_init(init.stderr)["ARCLOG_PATH"] == catalog.arclog_path
    run = BackupRun.objects.create(catalog=catalog, cluster=catalog.cluster, mode="full",
                                   status="running", source_node=node)  # fmt: skip
    backup = actions.run_pg_rman(node, commands["full"], actor=dba)
    assert "backup complete" in [m.text for m in pg_rman.parse_messages(backup.stderr)]
    (database, *_rest) = pg_rman.parse_progress(backup.stderr)
    assert database.phase == "database files" and database.processed == database.total > 0
    validated = actions.run_pg_rman(node, commands["validate"], actor=dba)
    assert list(pg_rman.parse_validate(validated.stderr).values()) == ["ok"]

    read = actions.read_catalog(catalog, actor=dba)
    assert read.total == 1 and read.created == [] and len(read.matched) == 1
    run.refresh_from_db()
    assert (run.status, run.usable, run.validated, run.found_outside_console) == (
        "ok", True, True, False,
    )  # fmt: skip
    assert run.sizes_exact and run.data_bytes > 1_000_000 and run.written_bytes > 0
    assert run.timeline >= 1 and run.start_lsn and run.recovery_time is not None
    again = actions.read_catalog(catalog, actor=dba)
    assert (again.created, again.updated, again.matched) == ([], [], [])

    remote = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND, node="db1")
    assert remote.filter(status=AuditEntry.Status.STARTED).count() >= 6
    assert not remote.filter(status=AuditEntry.Status.FAILED).exists()
    assert AuditEntry.objects.filter(action=audit.BACKUP_CATALOG_READ).count() == 1
    assert_no_secret_stored(
        os.environ["LAB_PG_PASSWORD"], Path(os.environ["LAB_SSH_KEY"]).read_text()
    )


@pytest.mark.skipif(PG_RMAN is not None, reason="pg_rman is installed: the tests above run")
@pytest.mark.django_db(transaction=True)
def test_a_host_without_pg_rman_gives_a_clear_message_and_changes_nothing(db1, catalog, dba):
    """Where pg_rman is missing, the same road (SSH to db1, sudo to postgres) is taken and the
    executor's audited failure becomes a message naming the cause."""
    node, pgdata, socket_dir, _ = db1
    with pytest.raises(actions.PgRmanFailed) as caught:
        actions.read_catalog(catalog, actor=dba)
    assert caught.value.error.code == "NOT_INSTALLED"
    assert str(caught.value).startswith("pg_rman is not installed on this host")
    assert caught.value.result.exit_code == 1  # sudo's, not pg_rman's
    assert caught.value.result.stderr == "sudo: pg_rman: command not found\n"
    intent, outcome = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND).order_by("id")
    assert (intent.status, outcome.status, outcome.node) == ("started", "failed", "db1")
    assert outcome.command.endswith(shlex.join(actions.catalog_commands(catalog)[0].argv))
    assert not BackupRun.objects.exists()
    assert BackupCatalog.objects.get(pk=catalog.pk).last_read is None


@needs_pg_rman
@pytest.mark.django_db(transaction=True)
def test_an_incremental_backup_without_a_full_one_fails_with_pg_rman_words(db1, catalog, dba):
    node, pgdata, socket_dir, _ = db1
    commands = e2e_commands(catalog, pgdata, socket_dir, node.db_port)
    actions.run_pg_rman(node, commands["init"], actor=dba)
    with pytest.raises(actions.PgRmanFailed) as caught:
        actions.run_pg_rman(node, commands["incremental"], actor=dba)
    assert caught.value.error.code == "ERROR_SYSTEM"
    assert str(caught.value).startswith(
        "An incremental backup needs a validated full backup on the current timeline."
    )
    assert "Hint: Please take a full backup and validate it" in str(caught.value)
    read = actions.read_catalog(catalog, actor=dba)  # pg_rman left an ERROR entry behind
    (failed,) = BackupRun.objects.filter(catalog=catalog)
    assert read.created == [failed.backup_id]
    assert (failed.status, failed.mode, failed.usable) == ("error", "incremental", False)


@pytest.mark.django_db(transaction=True)
def test_the_backup_ini_listing_runs_over_ssh_as_postgres_from_roots_home(db1, catalog, dba):
    """Needs no pg_rman: the catalog reader's own `find` over SSH (root's shell starts in /root,
    where postgres may not go) lists every backup.ini and exits 0."""
    node, _pgdata, _socket, _lab_dir = db1
    ini = Path(catalog.path) / "20261126" / "013000" / "backup.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("BACKUP_MODE=FULL\nSTATUS=OK\n")
    for path in (Path(catalog.path), ini.parent.parent, ini.parent, ini):
        shutil.chown(path, "postgres", "postgres")
    result = actions.run_pg_rman(node, pg_rman.read_backup_inis(catalog.path), actor=dba)
    assert result.exit_code == 0
    assert "BACKUP_MODE=FULL" in result.stdout
