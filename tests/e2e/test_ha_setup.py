"""In a real Chromium: a DBA opens lab-pg's page (no HA setup yet), clicks "Set up pgpool-II",
fills the form with a PCP port out of range (refused on that field, nothing saved), corrects it,
saves, and finds the HA panel with Deploy and Edit; Deploy opens its precheck page. Nothing is
deployed (the lab's pgpool-II is left alone)."""

import os
import re

import pytest
from playwright.sync_api import expect

from clusters.models import HaSetup
from console import audit
from console.lab.demo import register_demo
from console.models import AuditEntry
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PCP_SECRET = "pcp-E2e-Secret-42"


def _sign_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def test_dba_sets_up_pgpool_from_the_cluster_page(lab, page, screenshot):
    register_demo(os.environ)
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana")
    page.goto("/clusters/")
    page.get_by_role("link", name="lab-pg", exact=True).first.click()
    panel = page.locator(".ha-panel")
    expect(panel).to_contain_text("pgpool-II was not deployed by the console")
    panel.scroll_into_view_if_needed()
    screenshot("no-setup-panel")
    panel.get_by_role("button", name="Set up pgpool-II").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up pgpool-II: lab-pg")

    page.get_by_label("pgpool-II host").select_option(label="lb1")
    page.get_by_label("Directory on that host").fill("/var/lib/pgpool-dbconsole/lab-pg")
    page.get_by_label("Client networks").fill(os.environ["LAB_NET"])
    page.get_by_label("Weight of db1").fill("0")
    page.get_by_label("PCP port").fill("70000")
    page.get_by_label("PCP password").fill(PCP_SECRET)
    page.get_by_label("Replication password").fill("repl-E2e-Secret-7")
    page.get_by_label("Health check period (s)").fill("2")
    screenshot("filled-bad-port")
    page.get_by_role("button", name="Record pgpool-II setup").click()

    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    port = page.get_by_label("PCP port")
    expect(port).to_have_attribute("aria-invalid", "true")
    expect(page.locator("label", has=port)).to_contain_text("less than or equal to 65535")
    expect(page.get_by_label("PCP password")).to_have_value("")  # never rendered back
    assert PCP_SECRET not in page.content()
    assert not HaSetup.objects.exists()
    screenshot("bad-port-refused")

    port.fill("9898")
    page.get_by_label("PCP password").fill(PCP_SECRET)
    page.get_by_label("Replication password").fill("repl-E2e-Secret-7")
    page.get_by_role("button", name="Record pgpool-II setup").click()

    expect(
        page.get_by_text("HA settings recorded: deploy pgpool-II to apply them.")
    ).to_be_visible()
    panel = page.locator(".ha-panel")
    expect(panel).to_contain_text("not deployed yet")
    expect(panel).to_contain_text("health check every 2 s")
    expect(panel.get_by_role("button", name="Deploy pgpool-II…")).to_be_visible()
    expect(panel.get_by_role("button", name="Edit HA settings")).to_be_visible()
    setup = HaSetup.objects.get()
    assert setup.pcp_port == 9898 and setup.pcp_credential.reveal() == PCP_SECRET
    assert AuditEntry.objects.filter(action=audit.HA_SETUP_SAVED).count() == 1
    panel.scroll_into_view_if_needed()
    screenshot("saved-panel-with-deploy")

    panel.get_by_role("button", name="Edit HA settings").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit HA settings: lab-pg")
    expect(page.get_by_label("PCP port")).to_have_value("9898")
    expect(page.get_by_label("PCP password")).to_have_value("")
    assert PCP_SECRET not in page.content()
    screenshot("edit-page")

    page.go_back()
    page.locator(".ha-panel").get_by_role("button", name="Deploy pgpool-II…").click()
    expect(page).to_have_url(re.compile(r"/ha/deploy/$"))
    expect(page.locator(".ha-checks")).to_contain_text("all pass")
    expect(page.get_by_role("button", name="Start: deploy pgpool-ii")).to_be_visible()
    screenshot("deploy-precheck")
