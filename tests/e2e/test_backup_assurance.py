"""In a real Chromium: a DBA opens a cluster's backup assurance page (the restorable point and
RPO from a WAL archive check of the lab's pgBackRest repository), starts a test restore with
"Test restore now", a worker runs the job against db1's host, and the page shows it succeeded
with its restore time and check result; the scratch instance is gone. Screenshots in
var/screenshots/."""

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import expect

from backups import assurance_archive, assurance_tasks
from backups.models import RestoreRun, TestRestorePolicy
from console.jobs import run_job
from console.models import Job
from tests.backups import test_pgbackrest as pgbackrest_lab
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The pgBackRest lab set-up: db1 registered, a repository with db1 archiving into it, undone after.
db1, site, catalog = pgbackrest_lab.db1, pgbackrest_lab.site, pgbackrest_lab.catalog


def _off_the_loop(func, *args, **kwargs):
    """Run executor work in another thread: Playwright's sync API keeps an asyncio loop running
    in this one, where the SSH executor's asyncio.run() cannot start."""
    from django.db import connection

    def run():
        try:
            return func(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def _sign_in(page, username: str, password: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def test_dba_starts_a_test_restore_and_sees_its_result(
    db1, catalog, site, page, screenshot, e2e_broker
):
    parent, _repo, _instance, _original = site
    dana = make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    full = _off_the_loop(pgbackrest_lab.backup_now, catalog, "full", dana)
    _off_the_loop(assurance_archive.check_archive, db1.cluster, actor=dana)
    scratch = parent / "scratch"

    _sign_in(page, "dana", PASSWORD)
    page.goto(f"/backups/clusters/{db1.cluster_id}/assurance/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Backup assurance of {db1.cluster.name}")  # fmt: skip
    expect(page.locator("#continuity")).to_contain_text("continuous")
    expect(page.locator("#restorable")).to_contain_text("RPO")
    expect(page.locator("#latest-backup")).to_contain_text(full.backup_id)
    expect(page.locator("#last-test")).to_contain_text("none yet")
    screenshot("before")

    # Schedule one: a wrong cron text is refused naming the field, nothing saved.
    page.get_by_role("button", name="Schedule a test restore").click()
    page.locator("#id_catalog").select_option(label=str(catalog))
    page.locator("#id_node").select_option(label=str(db1))
    page.locator("#id_data_directory").fill(str(scratch))
    page.locator("#id_port").fill("5433")
    page.locator("#id_schedule").fill("30 25 * * 0")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field-error")).to_contain_text("Not a valid cron schedule")
    assert not TestRestorePolicy.objects.exists()
    screenshot("form-refused")
    page.locator("#id_schedule").fill("30 4 * * 0")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("Saved: test restore of")
    policy = TestRestorePolicy.objects.get()

    row = page.locator(f"#test-restore-policy-{policy.pk}")
    expect(row).to_contain_text("30 4 * * 0")
    row.get_by_role("button", name="Test restore now").click()
    expect(page.locator("main")).to_contain_text(re.compile(r"Test restore queued: job \d+"))
    job = Job.objects.get(kind="backups.test_restore")
    screenshot("queued")

    assert _off_the_loop(run_job, job.pk, assurance_tasks.test_restore.body) == "succeeded", (
        Job.objects.get(pk=job.pk).error)  # fmt: skip
    restore = RestoreRun.objects.get(test_restore=True)
    page.reload()
    history = page.locator(f"#restore-{restore.pk}")
    expect(history.locator(".status")).to_have_text("succeeded")
    seconds = f"{restore.duration.total_seconds():.1f} s"
    expect(history).to_contain_text(seconds)
    expect(history).to_contain_text(full.backup_id)
    expect(history).to_contain_text(restore.check_result)
    expect(page.locator("#last-test")).to_contain_text(seconds)
    screenshot("after")
    assert int(restore.check_result) >= 3 and not Path(scratch).exists()

    history.get_by_role("link", name=str(job.pk)).click()
    expect(page.locator("main")).to_contain_text("succeeded")
    expect(page.locator("main")).to_contain_text("recovery ended; check query")
    screenshot("job")


def test_manager_reads_a_gap_and_a_failed_test_restore_without_any_button(page, screenshot):
    """No server needed: the records as the jobs leave them. A manager sees the gap, the
    restorable point before it and the RPO, the failed test restore with PostgreSQL's words,
    and no button."""
    from datetime import timedelta

    from django.utils import timezone

    from backups.models import ArchiveCheck, BackupCatalog, BackupRun
    from clusters.models import Node
    from tests import factories

    cluster = factories.make_monitored_cluster("sales")
    db1 = Node.objects.get(name="sales-db1")
    catalog = BackupCatalog.objects.create(cluster=cluster, name="repo", engine="pgbackrest",
                                           path="/srv/repo", stanza="sales")  # fmt: skip
    now = timezone.now()
    full = BackupRun.objects.create(catalog=catalog, cluster=cluster, mode="full", status="ok",
                                    backup_id="20261126-010000F", started=now - timedelta(hours=3),
                                    ended=now - timedelta(hours=3))  # fmt: skip
    RestoreRun.objects.create(cluster=cluster, catalog=catalog, target_node=db1, backup=full,
                              test_restore=True, status="failed", started=now, ended=now,
                              duration=timedelta(seconds=41.2), check_ok=None,
                              message='the check query failed: relation "orders" does not '
                                      'exist')  # fmt: skip
    ArchiveCheck.objects.create(
        cluster=cluster, catalog=catalog, backup=full, continuous=False,
        first_segment="000000010000000000000010", first_gap="000000010000000000000014",
        last_segment="00000001000000000000001F", last_restorable_segment="000000010000000000000013",
        segments=12, missing=4, restorable_to=now - timedelta(hours=2, minutes=10),
        message="4 segment(s) missing from 000000010000000000000014 on: restorable only up to "
                "000000010000000000000013.",
    )  # fmt: skip
    make_user("morgan", persona="manager")
    _sign_in(page, "morgan", PASSWORD)
    page.goto(f"/backups/clusters/{cluster.pk}/assurance/")
    expect(page.locator("#continuity")).to_contain_text("gap at 000000010000000000000014")
    expect(page.locator("#rpo")).to_contain_text("2\xa0hours")
    expect(page.locator("#continuity-message")).to_contain_text("4 segment(s) missing")
    expect(page.locator("#last-test")).to_contain_text("failed")
    expect(page.locator("#test-restore-history")).to_contain_text('relation "orders" does not')
    expect(page.get_by_role("button")).to_have_count(1)  # Sign out only
    screenshot("manager")
