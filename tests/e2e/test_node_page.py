"""In a real Chromium: a DBA opens db1 from the cluster list, reads its facts, opens its server
log and finds a failed login in it, highlighted."""

import os
import re
import time
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import expect

from clusters.actions import NodeSpec, register_host
from clusters.models import Node
from console.lab.demo import PG_PASSWORD, SSH_KEY, known_hosts_of, register_demo
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, username: str, password: str) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def _failed_login(user: str) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=os.environ["LAB_PG_HOST"], port=os.environ["LAB_PG_PORT"], dbname="postgres",
            user=user, password="not-the-password", connect_timeout=5,
        )  # fmt: skip


def _search(page, term: str, wanted: str):
    """Search until the server has written the line (it logs on its own schedule)."""
    deadline = time.monotonic() + 10
    while True:
        page.get_by_label("Search the log").fill(term)
        page.get_by_role("button", name="Search").click()
        expect(page).to_have_url(re.compile(r"term="))
        line = page.locator("pre.log-lines .log-line").filter(has_text=wanted)
        if line.count() or time.monotonic() > deadline:
            return line


def test_dba_opens_db1_from_the_cluster_list_and_searches_its_log(lab_env, page, screenshot):
    register_demo(os.environ)
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana", PASSWORD)
    page.goto("/clusters/inventory/")
    page.get_by_role("link", name="db1", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("db1")
    expect(page.locator(".node-version")).to_contain_text(re.compile(r"^\d+\.\d+"))
    expect(page.locator(".node-state")).to_contain_text("primary (not in recovery)")
    expect(page.locator("table.settings")).to_contain_text("listen_addresses")
    screenshot("node-page")

    user = f"e2e_{time.monotonic_ns()}"
    _failed_login(user)
    page.get_by_role("button", name="Server log").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("db1: server log")
    lines = page.locator("pre.log-lines")
    expect(lines.locator(".log-line").first).to_be_attached()
    # The page opens scrolled to the log's newest lines, at the bottom of the <pre>.
    page.wait_for_function(
        "p => p.scrollTop + p.clientHeight >= p.scrollHeight - 2", arg=lines.element_handle()
    )
    screenshot("log-latest")

    line = _search(page, user, f'password authentication failed for user "{user}"')
    expect(line).to_have_count(1)
    expect(line).to_have_class(re.compile(r"\blog-fatal\b"))
    screenshot("log-search")

    page.get_by_label("Search the log").fill("$(touch /tmp/x); 'quoted' \"both\"")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("pre.log-lines")).to_contain_text("No line contains it.")
    expect(page.locator("main")).to_contain_text("$(touch /tmp/x); 'quoted' \"both\"")
    screenshot("log-search-literal")


def test_manager_sees_mariadb_facts_and_a_node_that_is_down(lab_env, page, screenshot):
    register_demo(os.environ)
    address = os.environ["LAB_BARE2_SSH_HOST"]  # sshd, nothing on 5432
    known = Path(os.environ["LAB_BARE2_SSH_KNOWN_HOSTS"]).read_text()
    register_host(NodeSpec(
        name="pg-down", service=Node.Service.POSTGRESQL, address=address, db_port=5432,
        known_hosts=known_hosts_of(known, address), ssh_credential=SSH_KEY,
        db_credential=PG_PASSWORD,
    ), actor=None)  # fmt: skip
    make_user("mona", persona="manager")
    _sign_in(page, "mona", PASSWORD)
    page.goto("/clusters/inventory/")
    page.get_by_role("link", name="my1", exact=True).click()
    expect(page.locator(".node-version")).to_contain_text("MariaDB")
    expect(page.locator(".node-state")).to_contain_text("read-write")
    expect(page.locator("table.settings")).to_contain_text("bind_address")
    screenshot("mariadb")

    page.goto("/clusters/inventory/")
    page.get_by_role("link", name="pg-down", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("unreachable: ")
    screenshot("down")
