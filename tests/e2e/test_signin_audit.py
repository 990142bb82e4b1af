"""In a real Chromium: a DBA signs in, reads the audit log, filters it and starts a verify job."""

import os
import re

import pytest
import redis
from playwright.sync_api import expect

from console import audit
from console.jobs import run_job
from console.lab.seed import LAB_PEOPLE
from console.models import AuditEntry, Job
from console.tasks import verify_audit
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, username: str, password: str) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def _open_audit_log(page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")


def _own_login_row(page, username: str):
    rows = page.locator("table.audit-table tbody tr:not(.details-row)")
    return rows.filter(has_text="auth.login").filter(has_text=username).first


def test_dba_signs_in_reads_the_audit_log_and_starts_a_verify_job(page, screenshot, e2e_broker):
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    make_user("helen", persona="helpdesk")
    _sign_in(page, "dana", PASSWORD)
    expect(page.locator(".nav-user")).to_contain_text("Dana Admin")
    expect(page.locator(".nav-user .persona")).to_have_text(["dba"])
    screenshot("home")

    _open_audit_log(page)
    expect(_own_login_row(page, "dana")).to_be_visible()
    screenshot("audit-log")

    page.get_by_label("Action").fill("auth.login")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=auth\.login"))
    actions = page.locator("table.audit-table tbody tr:not(.details-row) td:nth-child(5)")
    expect(actions.first).to_have_text("auth.login")
    assert set(actions.all_inner_texts()) == {"auth.login"}
    screenshot("audit-filtered")

    page.get_by_role("button", name="Verify chain").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify the audit chain")
    job = Job.objects.get(kind="console.verify_audit")
    expect(page).to_have_url(re.compile(rf"/jobs/{job.pk}/$"))
    expect(page.locator("#job-live .status")).to_have_text(re.compile("pending|running"))
    expect(page.get_by_role("status")).to_contain_text("queued")
    # The live fragment polls while the job is unfinished.
    with page.expect_response(re.compile(rf"/jobs/{job.pk}/live/$")) as polled:
        pass
    assert polled.value.status == 200
    screenshot("job-page")

    # Run the job body here (a real worker is another test's subject): the page follows it
    # live to its end, and the finished fragment carries no polling trigger any more.
    run_job(job.pk, verify_audit.body)
    live = page.locator("#job-live")
    expect(live.locator(".status")).to_have_text("succeeded")
    expect(live).to_contain_text("chain intact")
    expect(live).not_to_have_attribute("hx-trigger", re.compile(".*"))
    screenshot("job-finished")

    # The job went to the broker (after the commit), to this test's own Redis database.
    queued = redis.Redis.from_url(e2e_broker)
    assert queued.llen("celery") == 1
    queued.close()


def test_directory_person_signs_in_and_sees_their_login_in_the_audit_log(page, screenshot):
    if not os.environ.get("LDAP_SERVER_URI"):
        pytest.fail("LDAP_SERVER_URI is not set: start the lab (`manage.py lab up`) first")
    alice = next(p for p in LAB_PEOPLE if p["uid"] == "alice")
    _sign_in(page, alice["uid"], alice["password"])
    expect(page.locator(".nav-user")).to_contain_text(alice["cn"])
    expect(page.locator(".nav-user .persona")).to_have_text(["dba"])
    _open_audit_log(page)
    expect(_own_login_row(page, "alice")).to_be_visible()
    screenshot("audit-log")
    assert AuditEntry.objects.filter(action=audit.AUTH_LOGIN, actor_name="alice").exists()


def test_helpdesk_user_sees_no_audit_link_and_is_refused_the_page(page, screenshot):
    make_user("helen", persona="helpdesk")
    _sign_in(page, "helen", PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
    expect(nav.get_by_role("link", name="Jobs")).to_be_visible()
    screenshot("home")
    response = page.goto("/audit/")
    assert response.status == 403
