"""In a real Chromium: a DBA creates a PostgreSQL account named `x"; DROP TABLE t; --`, sees
its password once, locks it with the typed name (the server then refuses the login), and drops
it. Each job runs in a thread of the test, as a worker would."""

import os
import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from console.jobs import run_job
from console.lab.demo import register_demo
from console.models import Job
from tests.factories import PASSWORD, make_user
from tests.users.labdb import Cleanup, pg_admin, pg_can_login
from users import tasks
from users.models import DatabaseAccount

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EVIL = 'x"; DROP TABLE t; --'
BODIES = {
    "users.create_account": tasks.create_account.body,
    "users.lock_account": tasks.lock_account.body,
    "users.drop_account": tasks.drop_account.body,
}


def _sign_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def _run_latest() -> str:
    """The newest job in a thread of its own: Playwright's event loop occupies this one."""
    job = Job.objects.latest("id")
    outcome = {}

    def target():
        try:
            outcome["status"] = run_job(job.pk, BODIES[job.kind])
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=120)
    return outcome.get("status", "still running")


@pytest.fixture
def cleanup(lab_env):
    c = Cleanup(lab_env)
    c.pg_roles.append(EVIL)
    with pg_admin(lab_env) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id int)")
    yield c
    c.run()
    with pg_admin(lab_env) as conn:
        conn.execute("DROP TABLE IF EXISTS t")


def test_dba_creates_locks_and_drops_an_account_named_like_sql(
    lab_env, page, screenshot, e2e_broker, cleanup
):
    register_demo(os.environ)
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana")

    page.goto("/people/accounts/")
    page.get_by_role("button", name="New account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New database account")
    page.get_by_label("Cluster").select_option(label="lab-pg")
    page.get_by_label("Kind").select_option("unclassified")
    page.get_by_label("Name").fill("é" * 40)
    page.get_by_role("button", name="Create the account").click()
    expect(page.locator(".field-error")).to_contain_text("at most 63 bytes")
    screenshot("name-refused")
    page.get_by_label("Name").fill(EVIL)
    page.get_by_role("button", name="Create the account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("One-time password")
    assert _run_latest() == "succeeded"
    page.reload()
    screenshot("password-ready")
    page.get_by_role("button", name="Show the password once").click()
    password = page.locator("#one-time-password").inner_text()
    screenshot("password-shown")
    assert len(password) == 32 and pg_can_login(lab_env, EVIL, password)
    page.goto(page.url)
    expect(page.get_by_text("The password was shown already")).to_be_visible()

    page.get_by_role("link", name="Manage the account").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(EVIL)
    lock = page.locator("#lock")
    lock.get_by_label("Type the account name to confirm").fill("x")
    lock.get_by_role("button", name="Lock").click()
    expect(page.locator("#lock .field-error")).to_contain_text("Type the account name exactly")
    page.locator("#lock").get_by_label("Type the account name to confirm").fill(EVIL)
    page.locator("#lock").get_by_role("button", name="Lock").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/"))
    assert _run_latest() == "succeeded"
    assert not pg_can_login(lab_env, EVIL, password)

    account = DatabaseAccount.objects.get(name=EVIL)
    page.goto(f"/people/accounts/{account.pk}/manage/")
    expect(page.locator("#lock")).to_contain_text("Unlock")
    screenshot("locked")
    drop = page.locator("#drop")
    drop.get_by_label("Type the account name to confirm").fill(EVIL)
    drop.get_by_role("button", name="Drop the account").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/"))
    assert _run_latest() == "succeeded"
    page.reload()
    screenshot("dropped-job")
    with pg_admin(lab_env) as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (EVIL,)).fetchone() is None
        assert conn.execute("SELECT to_regclass('public.t') IS NOT NULL").fetchone()[0]
    account.refresh_from_db()
    assert account.gone_at is not None
