"""In a real Chromium: a helpdesk user finds a person and sees every account they have across
the fleet; a DBA finds a held directory sync and confirms it."""

import os
import re

import pytest
from playwright.sync_api import expect

from clusters.models import Cluster
from console.lab.demo import register_demo
from tests.factories import PASSWORD, make_user
from tests.users.conftest import Directory
from users import actions
from users.models import Person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, username: str) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def test_helpdesk_finds_a_person_and_sees_their_accounts_on_every_server(lab_env, page, screenshot):
    register_demo(os.environ)
    assert actions.sync_directory().status == "applied"
    for cluster in Cluster.objects.all():
        assert actions.import_accounts(cluster).status == "succeeded"
    make_user("hana", persona="helpdesk", first_name="Hana", last_name="Help")
    _sign_in(page, "hana")
    page.goto("/people/")
    expect(page.get_by_role("heading", level=1)).to_have_text("People")
    page.get_by_label("Search people").fill("Ångström")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.people-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("zoe")
    screenshot("search")
    page.get_by_role("link", name="zoe", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Zoë Ångström")
    accounts = page.locator("table.accounts-table").first.locator("tr.account-row")
    expect(accounts).to_have_count(2)
    expect(accounts.filter(has_text="lab-pg")).to_contain_text("can log in")
    expect(accounts.filter(has_text="lab-mariadb")).to_contain_text("'zoe'@'%'")
    expect(page.get_by_role("button", name="Link to this person")).to_have_count(0)
    screenshot("person")
    page.goto("/people/accounts/")
    page.get_by_role("button", name=re.compile(r"To review \(\d+\)")).click()
    orphans = page.locator("table.accounts-table tr.account-row")
    expect(orphans.filter(has_text="old_contractor")).to_have_count(2)  # on db1 and on my1
    expect(orphans.filter(has_text="zoe")).to_have_count(0)
    screenshot("orphans")


def test_dba_sees_a_held_sync_and_confirms_it(lab_env, page, screenshot):
    assert actions.sync_directory().status == "applied"
    directory = Directory(lab_env["LAB_LDAP_URI"], lab_env["LAB_LDAP_ADMIN_DN"],
                          lab_env["LAB_LDAP_ADMIN_PASSWORD"])  # fmt: skip
    try:
        directory.remove("erin")
        directory.remove("imartin")
        assert actions.sync_directory().status == "held"
        make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
        _sign_in(page, "dana")
        page.goto("/people/")
        banner = page.locator(".directory-hold")
        expect(banner).to_contain_text("2 of 13 active people would be marked left")
        screenshot("held-banner")
        banner.get_by_role("link", name="Review it").click()
        expect(page.locator("ul.would-leave")).to_contain_text("erin")
        page.get_by_label("Number of people to mark left").fill("2")
        screenshot("confirm")
        page.get_by_role("button", name="Confirm and apply").click()
        expect(page.locator(".messages")).to_contain_text("confirmed and applied")
        assert Person.objects.get(uid="erin").state == "left"
        screenshot("confirmed")
    finally:
        directory.restore()
        directory.conn.unbind_s()


def test_dba_marks_an_application_account_functional_naming_a_bad_owner_first(
    lab_env, page, screenshot
):
    register_demo(os.environ)
    assert actions.sync_directory().status == "applied"
    for cluster in Cluster.objects.all():
        assert actions.import_accounts(cluster).status == "succeeded"
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
    page.get_by_role("button", name=re.compile(r"^Accounts$")).click()
    page.get_by_label("Cluster").select_option(label="lab-pg")
    page.get_by_label("Search accounts").fill("billing_app")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="billing_app").click()
    expect(page.locator("pre")).to_contain_text("owner=team-billing")
    page.get_by_label("Owning person (uid)").fill("nobody")
    page.get_by_label("Purpose").fill("billing application")
    page.get_by_role("button", name="Mark functional").click()
    expect(page.locator(".field-error")).to_contain_text("No person has the uid 'nobody'")
    screenshot("bad-owner")
    page.get_by_label("Owning person (uid)").fill("erin")
    page.get_by_label("Owning team").fill("team-billing")
    page.get_by_role("button", name="Mark functional").click()
    expect(page.locator(".messages")).to_contain_text("is now a functional account")
    screenshot("functional")
    page.goto("/people/erin/")
    owned = page.locator("table.accounts-table").nth(1)
    expect(owned).to_contain_text("billing_app")
    expect(owned).to_contain_text("billing application")
    screenshot("owner-page")
