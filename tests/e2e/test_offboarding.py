"""In a real Chromium, the helpdesk offboarding flow: a helpdesk user finds erin, sees her
accounts on every server, offboards her with her uid typed to confirm (a wrong one is refused
and changes nothing), watches the job finish on the page, downloads the PDF evidence and undoes
it for a mistake. The job runs in a thread of the test, as a worker would."""

import os
import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect
from pypdf import PdfReader

from clusters.models import Cluster
from console.jobs import run_job
from console.lab import faults
from console.lab.demo import register_demo
from tests.factories import PASSWORD, make_user
from tests.users.test_offboarding import DB_PASSWORD, UID, _unlock_everywhere, my_connect
from users import actions, tasks
from users.actions import offboarding
from users.models import OffboardingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def _run(job_id: int) -> str:
    """The job in a thread of its own: Playwright's event loop occupies this one."""
    outcome = {}

    def target():
        try:
            outcome["status"] = run_job(job_id, tasks.offboard_person.body)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=120)
    return outcome.get("status", "still running")


@pytest.fixture
def fleet(lab_env):
    register_demo(os.environ)
    assert actions.sync_directory().status == "applied"
    for cluster in Cluster.objects.all():
        assert actions.import_accounts(cluster).status == "succeeded"
    yield
    _unlock_everywhere()


def test_helpdesk_offboards_a_person_and_downloads_the_evidence(
    fleet, page, screenshot, e2e_broker, tmp_path
):
    make_user("hana", persona="helpdesk", first_name="Hana", last_name="Help")
    _sign_in(page, "hana")
    page.goto("/people/")
    page.get_by_label("Search people").fill("Erin")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=UID, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Erin Evans")
    expect(page.locator("table.accounts-table").first.locator("tr.account-row")).to_have_count(2)
    box = page.locator("#offboarding")
    expect(box).to_contain_text("Not offboarded.")
    screenshot("person")

    box.get_by_label("Type the person's uid to confirm").fill("Erin")
    box.get_by_role("button", name="Offboard").click()
    expect(page.locator(".field-error")).to_contain_text("type the person's uid, erin")
    assert not OffboardingRun.objects.exists()
    screenshot("refused")

    page.locator("#offboarding").get_by_label("Type the person's uid to confirm").fill(UID)
    page.locator("#offboarding").get_by_role("button", name="Offboard").click()
    expect(page.locator(".offboarding-state")).to_have_text("Requested")
    screenshot("requested")
    run = OffboardingRun.objects.get(person__uid=UID)
    assert _run(run.job_id) == "succeeded"
    # The page follows the job by itself (htmx polling) until the person is offboarded.
    expect(page.locator(".offboarding-state")).to_have_text("Offboarded", timeout=10_000)
    steps = page.locator("table.offboarding-steps tbody tr")
    expect(steps).to_have_count(2)
    expect(steps.filter(has_text="lab-pg")).to_contain_text("db1: rolcanlogin=false")
    expect(steps.filter(has_text="lab-mariadb")).to_contain_text("my1: account_locked=true")
    screenshot("offboarded")

    with page.expect_download() as download:
        page.get_by_role("link", name="PDF").click()
    path = tmp_path / "evidence.pdf"
    download.value.save_as(path)
    text = " ".join(PdfReader(path).pages[0].extract_text().split())
    assert "Offboarding evidence: erin (Erin Evans)" in text and "hana" in text
    assert "'erin'@'%'" in text

    page.get_by_label("Type the person's uid to confirm").fill(UID)
    page.get_by_role("button", name="Undo the offboarding").click()
    expect(page.locator(".offboarding-state")).to_have_text("Undone")
    expect(page.get_by_text("accounts unlocked")).to_be_visible()
    my_connect(UID, DB_PASSWORD).close()  # she can log in again
    screenshot("undone")
    assert re.search(r"/people/erin/$", page.url)


def test_a_server_down_shows_incomplete_with_the_reason_until_the_retry(
    fleet, lab, page, screenshot, e2e_broker
):
    make_user("hana", persona="helpdesk")
    _sign_in(page, "hana")
    page.goto(f"/people/{UID}/")
    faults.stop_server(lab, "mariadb")
    try:
        page.get_by_label("Type the person's uid to confirm").fill(UID)
        page.get_by_role("button", name="Offboard").click()
        run = OffboardingRun.objects.get(person__uid=UID)
        assert _run(run.job_id) == "failed"
        expect(page.locator(".offboarding-state")).to_have_text("Incomplete", timeout=10_000)
        expect(page.locator(".offboarding-reason")).to_contain_text("cannot connect to my1")
        expect(page.locator(".person-offboarding")).to_have_text("Incomplete")
        screenshot("incomplete")
    finally:
        faults.start_server(lab, "mariadb")
    OffboardingRun.objects.filter(pk=run.pk).update(next_retry_at=None)
    (retried,) = offboarding.retry_offboardings()
    assert _run(retried.job_id) == "succeeded"
    page.reload()
    expect(page.locator(".offboarding-state")).to_have_text("Offboarded")
    expect(page.locator("#offboarding")).to_contain_text("2 attempts")
    screenshot("offboarded-after-retry")
