"""In a real Chromium: a DBA searches db1's settings for work_mem, is refused a bad value, changes
it, follows the job and finds the change in the history; a restart-only change shows as pending.
db1's postgresql.auto.conf is put back afterwards."""

import os
import re
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import expect

from clusters.models import Node
from clusters.tasks import change_setting
from console.jobs import run_job
from console.lab.demo import register_demo
from console.models import Job
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
AUTO_CONF = Path(os.environ.get("LAB_DIR", "/nonexistent")) / "primary/data/postgresql.auto.conf"


def _db1():
    return psycopg.connect(host=os.environ["LAB_PG_HOST"], port=os.environ["LAB_PG_PORT"],
                           user=os.environ["LAB_PG_USER"], password=os.environ["LAB_PG_PASSWORD"],
                           dbname="postgres", autocommit=True, connect_timeout=5)  # fmt: skip


@pytest.fixture
def db1_restored(lab_env):
    before = AUTO_CONF.read_bytes()
    yield
    if AUTO_CONF.read_bytes() != before:
        AUTO_CONF.write_bytes(before)
    with _db1() as conn:
        conn.execute("SELECT pg_reload_conf()")


def _sign_in(page, username: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def _run_job(page) -> Job:
    job = Job.objects.filter(kind="clusters.change_setting").latest("pk")
    expect(page).to_have_url(re.compile(rf"/jobs/{job.pk}/$"))
    run_job(job.pk, change_setting.body)
    expect(page.locator("#job-live .status")).to_have_text("succeeded")
    return job


def test_dba_searches_changes_and_sees_the_history_of_a_setting(
    lab_env, page, screenshot, e2e_broker, db1_restored
):
    register_demo(os.environ)
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    db1 = Node.objects.get(name="db1")
    _sign_in(page, "dana")
    page.goto(f"/clusters/nodes/{db1.pk}/")
    page.get_by_role("button", name="Settings").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("db1: settings")
    rows = page.locator("tr.setting-row")
    expect(rows.first).to_have_attribute("data-name", "listen_addresses")  # key settings first
    screenshot("list")

    page.get_by_label("Search").fill("work_mem")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"q=work_mem"))
    expect(rows.first).to_have_attribute("data-name", "work_mem")  # a key setting: first
    expect(page.locator("tr.setting-row[data-name=maintenance_work_mem]")).to_have_count(1)
    expect(page.locator("tr.setting-row[data-name=shared_buffers]")).to_have_count(0)
    screenshot("search")
    page.get_by_role("link", name="work_mem", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("work_mem on db1")
    expect(page.locator(".setting-value")).to_have_text("4MB")

    page.get_by_label("New value").fill("lots")
    page.get_by_role("button", name="Change", exact=True).click()
    expect(page.locator("#value-errors")).to_contain_text("work_mem takes a number")
    expect(page.get_by_label("New value")).to_have_attribute("aria-invalid", "true")
    assert not Job.objects.exists()
    screenshot("refused")

    page.get_by_label("New value").fill("8MB")
    page.get_by_role("button", name="Change", exact=True).click()
    _run_job(page)
    screenshot("job")
    page.goto(f"/clusters/nodes/{db1.pk}/settings/work_mem/")
    expect(page.locator(".setting-value")).to_have_text("8MB")
    history = page.locator("table.settings-history tr.history-row")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("4MB")
    expect(history.first).to_contain_text("8MB")
    expect(history.first).to_contain_text("applied")
    expect(history.first).to_contain_text("dana")
    screenshot("history")

    page.get_by_role("button", name="Reset to default").click()
    _run_job(page)
    with _db1() as conn:
        assert conn.execute("SHOW work_mem").fetchone()[0] == "4MB"

    # A restart-only parameter: recorded "restart needed", shown pending until reset.
    # (One test: the e2e broker fixture can be set up once per session only.)
    page.goto(f"/clusters/nodes/{db1.pk}/settings/max_connections/")
    page.get_by_label("New value").fill("110")
    page.get_by_role("button", name="Change", exact=True).click()
    _run_job(page)
    page.goto(f"/clusters/nodes/{db1.pk}/settings/")
    expect(page.locator(".restart-pending")).to_contain_text("Restart pending")
    expect(page.locator(".restart-pending")).to_contain_text("max_connections")
    page.get_by_label("Restart pending").check()
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr.setting-row")).to_have_count(1)
    row = page.locator("tr.setting-row[data-name=max_connections]")
    expect(row).to_contain_text("restart pending")
    screenshot("pending")
    page.goto(f"/clusters/nodes/{db1.pk}/settings/max_connections/")
    expect(page.locator("table.settings-history")).to_contain_text("restart needed")
    page.get_by_role("button", name="Reset to default").click()
    _run_job(page)
    page.goto(f"/clusters/nodes/{db1.pk}/settings/")
    expect(page.locator(".restart-pending")).to_have_count(0)

    # MariaDB: the option file's value beside the running one.
    my1 = Node.objects.get(name="my1")
    page.goto(f"/clusters/nodes/{my1.pk}/settings/?q=innodb_buffer_pool")
    row = page.locator("tr.setting-row[data-name=innodb_buffer_pool_size]")
    expect(row).to_contain_text("67108864")
    expect(row).to_contain_text("64M")
    screenshot("mariadb")
    page.goto(f"/clusters/nodes/{my1.pk}/settings/bind_address/")
    expect(page.locator(".setting-value")).to_have_text(os.environ["LAB_MYSQL_HOST"])
    expect(page.locator(".setting-facts")).to_contain_text("after a restart")
    screenshot("mariadb-detail")
