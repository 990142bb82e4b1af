"""In a real Chromium: a manager opens the backup report, filters it to one environment, sorts
it, opens a cluster's report with its charts of sizes and durations, an environment's with its
charts per day, and downloads the CSV.
The fleet is seeded rows (two environments; a cluster failing its backups, one never backed
up); the figures the page shows are checked against them."""

import csv
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backups.models import BackupPolicy, RestoreRun
from tests.backups.test_report import make_catalog, make_cluster, run
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, username: str, password: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def _fleet() -> None:
    now = timezone.now()
    sales = make_catalog(make_cluster("pg-sales", "production"))
    BackupPolicy.objects.create(catalog=sales, name="weekly", schedule="0 1 * * 0", mode="full",
                                retention_full=2)  # fmt: skip
    for day in range(0, 30):  # a full a week, an incremental every other day
        full = day % 7 == 0
        run(sales, now - timedelta(days=day, hours=2), mode="full" if full else "incr",
            took=timedelta(minutes=40 if full else 6),
            total_bytes=(40 if full else 3) * 1024**3 + day * 10**7,
            status="failed" if day == 3 else "ok")  # fmt: skip
    RestoreRun.objects.create(
        cluster=sales.cluster, catalog=sales, target_node=sales.cluster.nodes.first(),
        test_restore=True, status="succeeded", ended=now - timedelta(days=1),
        duration=timedelta(minutes=21), check_ok=True,
    )  # fmt: skip
    billing = make_catalog(make_cluster("pg-billing", "production"))
    BackupPolicy.objects.create(catalog=billing, name="weekly", schedule="0 1 * * 0",
                                mode="full", retention_full=3)  # fmt: skip
    run(billing, now - timedelta(days=6))
    for day in range(0, 5):
        run(billing, now - timedelta(days=day, hours=1), status="failed")
    make_cluster("pg-new", "staging")  # no backup at all
    staging = make_catalog(make_cluster("pg-stage", "staging"))
    run(staging, now - timedelta(hours=5))


def test_manager_filters_the_report_opens_charts_and_downloads_the_csv(page, screenshot):
    _fleet()
    make_user("mona", persona="manager", first_name="Mona", last_name="Manager")
    _sign_in(page, "mona", PASSWORD)

    page.goto("/backups/report/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Backup report")
    summary = page.locator("table.report-summary")
    expect(summary.locator("tr", has_text="production")).to_contain_text("2")
    expect(summary.locator("tr", has_text="all environments")).to_be_visible()
    billing = page.locator("tr", has=page.get_by_role("link", name="pg-billing"))
    expect(billing).to_contain_text("not met")  # 1 usable full, the policy keeps 3
    expect(billing).to_contain_text("16.7 %")  # 1 usable of 6 in 7 days
    expect(page.locator("tr", has=page.get_by_role("link", name="pg-new"))).to_contain_text("none")
    screenshot("report")

    page.get_by_label("Environment", exact=True).select_option("staging")
    page.get_by_label("Sort by").select_option("age")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url("/backups/report/?env=staging&sort=age")
    names = page.locator("table.report-clusters tbody tr td:first-child")
    expect(names).to_have_text(["pg-new", "pg-stage"])  # never backed up comes first
    expect(page.get_by_role("link", name="pg-sales")).to_have_count(0)
    screenshot("staging-by-age")

    page.get_by_label("Environment", exact=True).select_option("production")
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("link", name="pg-sales").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Backup report of pg-sales")
    expect(page.locator("#report-charts")).to_have_attribute("data-drawn", "30")
    figures = page.locator(".report-figures")
    expect(figures).to_contain_text("took 21 min")  # the test restore
    expect(figures).to_contain_text("met")
    expect(page.locator("#chart-sizes")).to_be_visible()
    expect(page.locator("#chart-durations")).to_be_visible()
    screenshot("cluster-charts")

    page.get_by_role("link", name="Backup report").first.click()
    page.locator("table.report-summary").get_by_role("link", name="production").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Backup report of production")
    # 30 days of pg-sales, one more when pg-billing's hour falls after midnight and its own not
    expect(page.locator("#report-days")).to_have_attribute("data-drawn", re.compile(r"^3[01]$"))
    expect(page.locator("table.report-clusters tbody tr td:first-child")).to_have_text(
        ["pg-billing", "pg-sales"])  # oldest last usable backup first  # fmt: skip
    screenshot("environment-charts")

    page.get_by_role("link", name="Backup report").first.click()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export CSV").or_(
            page.get_by_role("link", name="Export CSV")).click()  # fmt: skip
    download = download_info.value
    assert download.suggested_filename.startswith("backup-report-")
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), newline="") as f:
        rows = {r["cluster"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"pg-sales", "pg-billing", "pg-new", "pg-stage"}
    assert (rows["pg-billing"]["usable_7d"], rows["pg-billing"]["finished_7d"]) == ("1", "6")
    assert rows["pg-sales"]["retention"] == "met" and rows["pg-new"]["last_usable_backup"] == ""
    assert rows["pg-sales"]["test_restore_duration_s"] == "1260.0"
