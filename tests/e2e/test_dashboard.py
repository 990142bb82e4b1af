"""In a real Chromium: a DBA opens the fleet dashboard after a collection of the lab, filters
it, opens lab-pg's cluster page, sees its topology and the charts drawn from stored samples,
switches the range, and opens a node page with the same charts."""

import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from clusters import registration
from clusters.collect import collect_cycle
from clusters.models import Cluster, Environment, Node, Sample
from clusters.status import refresh_cluster_status
from console.lab.demo import register_demo
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, username: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def _history(hours: int = 6) -> None:
    """Earlier samples of the lab's nodes, one a minute, so the charts have a shape (the real
    cycle above adds the latest point)."""
    now = timezone.now()
    rows = []
    for node in Node.objects.exclude(service=Node.Service.NONE):
        for i in range(1, hours * 60):
            ts, wave = now - timedelta(minutes=i), math.sin(i / 18)
            rows += [
                Sample(node=node, metric="connections.active", ts=ts, value=3 + 2 * wave),
                Sample(node=node, metric="connections.idle", ts=ts, value=6 + wave),
                Sample(node=node, metric="disk.used_percent", ts=ts, value=41 + i / 200),
                Sample(node=node, metric="archive.ready_count", ts=ts, value=float(i % 14 == 0)),
                Sample(node=node, metric="log.error", ts=ts, value=float(i % 22 == 0)),
            ]
            if node.name == "db2":
                lag = max(0.0, 40_000 * wave)
                rows.append(Sample(node=node, metric="replication.replay_lag_bytes", ts=ts,
                                   value=lag))  # fmt: skip
    Sample.objects.bulk_create(rows, batch_size=2000)


def _register_and_collect() -> None:
    register_demo(os.environ)
    for cluster in Cluster.objects.all():
        registration.rediscover_cluster(cluster)
    collect_cycle(list(Node.objects.exclude(service=Node.Service.NONE)))
    refresh_cluster_status()  # as the collect job does after its cycle


def test_dba_filters_the_fleet_and_reads_a_cluster_page(lab_env, page, screenshot):
    # The executor's SSH calls run their own event loop: not in this thread, where
    # Playwright's runs.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_register_and_collect).result()
    staging = Environment.objects.create(name="staging")
    Cluster.objects.create(name="never-collected", kind=Cluster.Kind.POSTGRESQL,
                           environment=staging)  # fmt: skip
    _history()
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana")

    page.get_by_role("link", name="Dashboard").click()
    expect(page).to_have_url(re.compile(r"/clusters/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Fleet")
    pg = page.locator("tr.fleet-row[data-cluster='lab-pg']")
    expect(pg.locator(".state")).to_have_text("healthy")
    expect(pg).to_contain_text("db1")
    expect(pg).to_contain_text("1/1")
    expect(pg).to_contain_text("2/2 up")
    expect(page.locator("tr.fleet-row")).to_have_count(3)
    expect(page.locator(".fleet-summary")).to_contain_text("2 healthy")
    screenshot("fleet")

    page.get_by_label("Environment", exact=True).select_option("staging")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"env=staging"))
    expect(page.locator("tr.fleet-row")).to_have_count(1)
    expect(page.locator("tr.fleet-row .state")).to_have_text("unknown")
    page.get_by_label("Environment", exact=True).select_option("")
    page.get_by_label("State", exact=True).select_option("healthy")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("tr.fleet-row")).to_have_count(2)
    screenshot("fleet-filtered")
    # The live refresh swaps the table in place and keeps the filter.
    with page.expect_response(re.compile(r"/clusters/\?state=healthy")) as refresh:
        page.evaluate("htmx.ajax('GET', document.getElementById('fleet').getAttribute("
                      "'hx-get'), {target: '#fleet', swap: 'outerHTML'})")  # fmt: skip
    assert refresh.value.status == 200
    expect(page.locator("tr.fleet-row")).to_have_count(2)

    page.get_by_role("link", name="lab-pg").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("lab-pg")
    topology = page.locator("figure.topology svg")
    for name in ("db1", "db2", "lb1"):
        expect(topology.locator(f"a[data-node='{name}']")).to_be_visible()
    expect(topology).to_contain_text("primary · read-write")
    expect(topology.locator(".repl-sync .edge-label")).to_contain_text(re.compile(r"^sync · "))
    expect(page.locator("table.replication-table")).to_contain_text("streaming")
    expect(page.locator("table.pool-table tbody tr")).to_have_count(2)
    lag = page.locator("#chart-lag canvas")
    expect(lag).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
    drawn = page.evaluate(
        "c => Chart.getChart(c).data.datasets[0].data.filter(p => p.y !== null).length",
        lag.element_handle(),
    )
    assert drawn > 300  # 6 h of samples a minute apart in 1-minute buckets
    expect(page.locator("#chart-connections canvas")).to_have_attribute(
        "data-points", re.compile(r"^[1-9]")
    )
    screenshot("cluster-page")

    with page.expect_response(re.compile(r"/clusters/series/\?.*range=1h")):
        page.get_by_role("button", name="1h", exact=True).click()
    expect(page.get_by_role("button", name="1h", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(lag).to_have_attribute("data-points", re.compile(r"^[1-9]\d?$"))  # < 100 in 1 h
    segments = page.evaluate(
        "c => Chart.getChart(c).data.datasets[0].data.filter(p => p.y === null).length",
        lag.element_handle(),
    )
    assert segments == 0  # a sample a minute, collected every 30 s: no gap drawn
    screenshot("cluster-page-1h")

    topology.locator("a[data-node='db2']").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("db2")
    expect(page.locator("#chart-lag canvas")).to_have_attribute(
        "data-points", re.compile(r"^[1-9]")
    )
    screenshot("node-page-charts")
