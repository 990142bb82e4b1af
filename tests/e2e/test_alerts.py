"""In a real Chromium: a DBA opens the alerts page after a collection cycle raised a real alert,
edits a rule (a bad value first, its error next to the field), and puts a cluster in
maintenance, which the alerts page then shows."""

import importlib
import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.apps import apps
from django.db import connection
from playwright.sync_api import expect

from clusters import alerts, registration
from clusters.actions.alerts import update_rule
from clusters.collect import collect_cycle
from clusters.models import AlertRule, Cluster, MaintenanceWindow, Node
from console.lab.demo import register_demo
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

_defaults = importlib.import_module("clusters.migrations.0005_alert_defaults")


def _sign_in(page, username: str) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def _lab_with_a_real_alert() -> None:
    """The demo clusters collected once, with disk_used set to warn above 0 %: a real alert
    on each collected data directory."""
    try:
        register_demo(os.environ)
        for cluster in Cluster.objects.all():
            registration.rediscover_cluster(cluster)  # reads each data directory
        _defaults.create_default_rules(apps, None)
        update_rule(AlertRule.objects.get(key="disk_used"), warning=0, critical=None, actor=None)
        alerts.evaluate(collect_cycle(Node.objects.filter(name__in=["db1", "my1"]), disk=True))
    finally:
        connection.close()  # this thread's own connection


def test_dba_sees_an_alert_edits_a_rule_and_creates_a_maintenance_window(lab_env, page, screenshot):
    # SSH runs asyncio.run(), which Playwright's loop forbids in this thread: set up in another.
    with ThreadPoolExecutor(1) as setup:
        setup.submit(_lab_with_a_real_alert).result()
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerts")
    rows = page.locator("table.alerts-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("firing")
    expect(rows.filter(has_text="db1")).to_contain_text(re.compile(r"disk on db1 is \d+ % full"))
    screenshot("alerts")

    page.get_by_role("button", name="Rules").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alert rules")
    expect(page.locator("#rule-replication_lag")).to_contain_text("1 MiB")
    screenshot("rules")
    page.get_by_role("link", name="Edit Replication lag").click()
    page.get_by_label("Warning above").fill("20000000")
    page.get_by_label("Critical above").fill("10000000")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field-error")).to_contain_text("must not be above the critical")
    expect(page.get_by_label("Warning above")).to_have_attribute("aria-invalid", "true")
    screenshot("rule-refused")
    page.get_by_label("Warning above").fill("2097152")
    page.get_by_label("For (seconds)").fill("120")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("Replication lag: saved.")
    expect(page.locator("#rule-replication_lag")).to_contain_text("2 MiB")
    expect(page.locator("#rule-replication_lag")).to_contain_text("120 s")
    screenshot("rule-saved")

    page.goto("/clusters/alerts/maintenance/")
    page.get_by_role("button", name="New maintenance window").click()
    page.get_by_label("Cluster").select_option(label="lab-pg")
    page.get_by_label("Reason").fill("PostgreSQL 15 minor upgrade")
    screenshot("maintenance-form")
    page.get_by_role("button", name="Create the window").click()
    expect(page.locator(".messages")).to_contain_text("lab-pg is in maintenance")
    expect(page.locator("table.maintenance-table")).to_contain_text("active")
    screenshot("maintenance-list")
    window = MaintenanceWindow.objects.get()
    assert (window.cluster, window.created_by_name) == (Cluster.objects.get(name="lab-pg"), "dana")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page.locator(".maintenance-note")).to_contain_text("lab-pg is in maintenance until")
    expect(page.locator(".maintenance-note")).to_contain_text("PostgreSQL 15 minor upgrade")
    screenshot("alerts-in-maintenance")
