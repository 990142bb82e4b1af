"""Reading a pg_rman catalog into BackupRun rows, from the real captured listings (the remote
part, read_catalog over SSH, is in test_pg_rman_e2e.py and runs where pg_rman exists)."""

from datetime import UTC, datetime, timedelta

import pytest

from backups import actions
from backups.drivers import pg_rman
from backups.models import BackupCatalog, BackupRun
from console import audit
from console.models import AuditEntry
from tests import factories
from tests.backups.pg_rman_captures import capture, raw

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    cluster = factories.make_monitored_cluster("bk-catalog")
    return BackupCatalog.objects.create(
        cluster=cluster, name="main", engine="pg_rman", path="/srv/pgr/backup",
        arclog_path="/srv/pgr/arclog", srvlog_path="/srv/pgr/srvlog",
    )  # fmt: skip


def listing(name: str) -> list:
    return pg_rman.parse_show(capture(name).stdout)


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def test_read_catalog_runs_the_listing_and_the_backup_inis(catalog):
    show, inis = actions.catalog_commands(catalog)
    assert show.argv == capture("show-detail-after-failed-backup.txt").argv  # show detail -a
    assert inis.argv == ["env", "--chdir=/", "find", "/srv/pgr/backup", "-mindepth", "3",
                         "-maxdepth", "3", "-name", "backup.ini", "-exec", "cat", "{}",
                         "+"]  # fmt: skip
    assert show.os_user == inis.os_user == "postgres"


def test_backups_found_in_the_catalog_become_runs_found_outside_the_console(catalog, dba):
    read = actions.store_catalog_listing(
        catalog, listing("show-detail-after-failed-backup.txt"), actor=dba
    )
    assert read.total == 6 and len(read.created) == 6 and not read.updated and not read.matched
    runs = {r.backup_id: r for r in BackupRun.objects.filter(catalog=catalog)}
    assert all(
        r.found_outside_console and r.cluster_id == catalog.cluster_id for r in runs.values()
    )
    failed = runs["2026-11-25 20:24:32"]
    assert (failed.status, failed.timeline, failed.usable, failed.validated) == (
        "error", None, False, False,
    )  # fmt: skip
    compressed = runs["2026-11-25 20:23:55"]
    assert (compressed.mode, compressed.status, compressed.usable) == ("full", "ok", True)
    assert (compressed.data_bytes, compressed.arclog_bytes, compressed.srvlog_bytes) == (
        23 * 10**6, 33 * 10**6, 1481,
    )  # fmt: skip
    assert compressed.written_bytes == 3072 * 10**3 and compressed.compressed
    assert not compressed.sizes_exact
    assert compressed.started == utc("2026-11-25 20:23:55")
    assert compressed.duration == timedelta(seconds=2)
    assert compressed.validated and compressed.validated_at is not None
    entry = AuditEntry.objects.filter(action=audit.BACKUP_CATALOG_READ).get()
    assert entry.actor_name == "dba" and entry.target == f"backup_catalog:{catalog.pk}"
    assert "2026-11-25 20:24:32" in entry.output


def test_a_second_read_with_nothing_changed_changes_nothing(catalog, dba):
    rows = listing("show-detail.txt")
    actions.store_catalog_listing(catalog, rows, actor=dba)
    before = list(BackupRun.objects.order_by("pk").values())
    again = actions.store_catalog_listing(catalog, rows, actor=dba)
    assert (again.created, again.updated, again.matched) == ([], [], [])
    assert list(BackupRun.objects.order_by("pk").values()) == before
    assert AuditEntry.objects.filter(action=audit.BACKUP_CATALOG_READ).count() == 1


def test_exact_figures_from_backup_ini_win_and_are_not_overwritten_by_a_rounded_listing(
    catalog, dba
):
    rows = listing("show-detail.txt")
    inis = [pg_rman.parse_backup_ini(capture(n).stdout.strip() + "\n") for n in (
        "show-timestamp-full.txt", "show-timestamp-full-compress-serverlog.txt")]  # fmt: skip
    actions.store_catalog_listing(catalog, actions.merge_listing(rows, inis), actor=dba)
    full = BackupRun.objects.get(backup_id="2026-11-25 20:23:43")
    assert (full.sizes_exact, full.data_bytes, full.written_bytes) == (True, 23592411, 49760228)
    assert (full.start_lsn, full.stop_lsn, full.recovery_xid) == ("0/02000028", "0/02000100", 726)
    assert full.recovery_time == utc("2026-11-25 20:23:45")
    assert full.database_bytes == 23592643 and full.parent_timeline == 0
    assert full.total_bytes == 23592411 + 33554777
    incr = BackupRun.objects.get(backup_id="2026-11-25 20:23:50")
    assert not incr.sizes_exact and incr.data_bytes == 188 * 10**3  # no ini read: rounded
    read = actions.store_catalog_listing(catalog, rows, actor=dba)  # rounded only, later
    assert read.updated == []
    full.refresh_from_db()
    assert (full.sizes_exact, full.data_bytes) == (True, 23592411)


def test_validation_turns_done_into_ok_and_a_corrupt_backup_is_never_usable(catalog, dba):
    actions.store_catalog_listing(catalog, listing("show-second-catalog-before-validate.txt"),
                                  actor=dba)  # fmt: skip
    assert not BackupRun.objects.filter(status="ok").exists()
    assert set(BackupRun.objects.values_list("status", flat=True)) == {"done", "error"}
    read = actions.store_catalog_listing(catalog, listing("show-detail-with-corrupt.txt"),
                                         actor=dba)  # fmt: skip
    # both validated; the ERROR row gains its parent timeline from the detailed listing
    assert sorted(read.updated) == [
        "2026-11-25 20:25:54", "2026-11-25 20:25:55", "2026-11-25 20:25:58"
    ]  # fmt: skip
    assert BackupRun.objects.get(backup_id="2026-11-25 20:25:54").parent_timeline == 1
    corrupt = BackupRun.objects.get(backup_id="2026-11-25 20:25:58")
    assert (corrupt.status, corrupt.validated, corrupt.usable) == ("corrupt", True, False)
    usable = [r.backup_id for r in BackupRun.objects.filter(catalog=catalog) if r.usable]
    assert usable == ["2026-11-25 20:25:55"]


def test_deleted_backups_keep_their_validation(catalog, dba):
    actions.store_catalog_listing(catalog, listing("show-detail-after-restore.txt"), actor=dba)
    read = actions.store_catalog_listing(catalog, listing("show-detail-all-after-delete.txt"),
                                         actor=dba)  # fmt: skip
    assert "2026-11-25 20:23:43" in read.updated
    deleted = BackupRun.objects.get(backup_id="2026-11-25 20:23:43")
    assert (deleted.status, deleted.validated, deleted.usable) == ("deleted", True, False)
    assert set(read.created) == {"2026-11-25 20:25:36", "2026-11-25 20:25:29",
                                 "2026-11-25 20:25:21"}  # fmt: skip


def test_a_console_run_gets_the_entry_pg_rman_made_for_it(catalog, dba):
    job = factories.make_job(user=dba, kind="console.verify_audit")
    run = BackupRun.objects.create(catalog=catalog, cluster=catalog.cluster, mode="full",
                                   status="running", job=job,
                                   started=utc("2026-11-25 20:23:42"))  # fmt: skip
    read = actions.store_catalog_listing(catalog, listing("show-before-validate.txt"), actor=dba,
                                         job=job)  # fmt: skip
    assert read.matched == ["2026-11-25 20:23:43"] and read.created == []
    run.refresh_from_db()
    assert (run.backup_id, run.status, run.found_outside_console) == (
        "2026-11-25 20:23:43", "done", False,
    )  # fmt: skip
    entry = AuditEntry.objects.get(action=audit.BACKUP_CATALOG_READ)
    assert (entry.source, entry.job_id) == (AuditEntry.Source.JOB, job.pk)


def test_an_older_catalog_entry_is_not_taken_for_a_new_console_run(catalog, dba):
    run = BackupRun.objects.create(catalog=catalog, cluster=catalog.cluster, mode="full",
                                   status="running",
                                   started=utc("2026-11-25 21:00:00"))  # fmt: skip
    read = actions.store_catalog_listing(catalog, listing("show-after-validate.txt"), actor=dba)
    assert read.matched == [] and read.created == ["2026-11-25 20:23:43"]
    run.refresh_from_db()
    assert run.backup_id == "" and run.status == "running"


def test_the_raw_backup_ini_merges_with_its_listing_row(catalog, dba):
    rows = listing("show-all-after-purge.txt")
    merged = actions.merge_listing(rows, pg_rman.parse_backup_inis(raw("backup.ini")))
    assert merged[0].exact and merged[0].srvlog_bytes == 5837 and not merged[1].exact
