"""In a real Chromium: a DBA opens the PostgreSQL provisioning form, gives a network with host
bits set (named on its field, nothing started), then a good request on bare1; the job page
lists the steps, which the worker runs while the page polls, live, and the cluster is
registered. Then the add-standby form from the cluster page makes bare2 a synchronous standby."""

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from playwright.sync_api import expect

from clusters.models import Cluster
from clusters.provision import tasks
from console.jobs import run_job
from console.models import Job
from tests.clusters.test_provision_lab import bare, place  # noqa: F401, F811 (fixtures)
from tests.e2e.test_baseline import _sign_in
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ADMIN_PASSWORD = "E2e-Provision-pg-pw-4410"


def _run_in_thread(pool, job: Job, body):
    def run():
        try:
            return run_job(job.pk, body)
        finally:
            connection.close()

    return pool.submit(run)


def test_dba_provisions_postgresql_and_a_synchronous_standby(
    lab,
    page,
    screenshot,
    e2e_broker,
    bare,  # noqa: F811
    place,  # noqa: F811
):
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana", PASSWORD)
    page.goto("/clusters/inventory/")
    page.get_by_role("button", name="Provision PostgreSQL on a bare host").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Provision a PostgreSQL cluster")
    page.get_by_label("Bare host").select_option(label="bare1")
    page.get_by_label("Cluster name").fill("pge2e")
    page.get_by_label("Environment").fill("lab")
    page.locator("#id_data_directory").fill(str(place / "bare1" / "data"))
    page.get_by_label("Allowed networks").fill("10.77.86.5/24")
    page.get_by_label("WAL archive directory").fill(str(place / "archive"))
    page.locator("#id_admin_password").fill(ADMIN_PASSWORD)
    page.get_by_label("Admin password again").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Provision").click()
    field = page.locator("label", has=page.get_by_label("Allowed networks"))
    expect(field.locator(".field-error")).to_contain_text("'10.77.86.5/24' is not a network")
    expect(page.get_by_label("Allowed networks")).to_have_attribute("aria-invalid", "true")
    assert not Job.objects.exists()
    screenshot("refused")

    page.get_by_label("Allowed networks").fill(os.environ["LAB_NET"])
    page.locator("#id_admin_password").fill(ADMIN_PASSWORD)
    page.get_by_label("Admin password again").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Provision").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/"))
    expect(page.locator("main")).to_contain_text("Provision PostgreSQL 15 cluster pge2e")
    job = Job.objects.get(kind="clusters.provision_pg")

    # The worker runs the job; the page, polling every second, shows the steps as they end.
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = _run_in_thread(pool, job, tasks.provision_pg.body)
        steps = page.locator("ol.job-steps li")
        expect(steps).to_have_count(11, timeout=30_000)
        expect(steps.filter(has_text="initdb")).to_have_attribute(
            "data-status", "done", timeout=60_000
        )
        if future.running():
            screenshot("live")
        assert future.result(timeout=120) == Job.Status.SUCCEEDED
    expect(page.locator("#job-live")).to_have_attribute("data-status", "succeeded")
    expect(steps.filter(has_text="Install the PostgreSQL 15 server package")).to_have_attribute(
        "data-status", "skipped"
    )
    expect(steps.filter(has_text="Local socket access")).to_have_attribute("data-status", "done")
    screenshot("provisioned")

    cluster = Cluster.objects.get(name="pge2e")
    page.goto(f"/clusters/{cluster.pk}/")
    page.get_by_role("button", name="Add a standby").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a standby to pge2e")
    page.get_by_label("Bare host").select_option(label="bare2")
    page.get_by_label("Standby name").fill("pge2e_s1")
    page.locator("#id_data_directory").fill(str(place / "bare2" / "data"))
    screenshot("standby-form")
    page.get_by_role("button", name="Add the standby").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/"))
    job = Job.objects.get(kind="clusters.add_standby")
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert _run_in_thread(pool, job, tasks.add_pg_standby.body).result(timeout=180) == (
            Job.Status.SUCCEEDED
        )
    expect(page.locator("#job-live")).to_have_attribute("data-status", "succeeded")
    expect(
        page.locator("ol.job-steps li").filter(has_text="Verify sync_state = sync")
    ).to_have_attribute("data-status", "done")
    screenshot("standby-added")


def test_a_failed_provisioning_is_resumed_from_the_job_page(
    lab,
    page,
    screenshot,
    e2e_broker,
    bare,  # noqa: F811
    place,  # noqa: F811
):
    """Something already listens on bare1:5432: the job stops at its start step, the page shows
    what was done and the reason; once the port is free, Re-run resumes at that step."""
    from tests.clusters.test_provision_lab import _listener

    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana", PASSWORD)
    page.goto("/clusters/provision/")
    page.get_by_label("Bare host").select_option(label="bare1")
    page.get_by_label("Cluster name").fill("pgrerun")
    page.locator("#id_data_directory").fill(str(place / "bare1" / "data"))
    page.get_by_label("Allowed networks").fill(os.environ["LAB_NET"])
    page.get_by_label("WAL archive directory").fill(str(place / "archive"))
    page.locator("#id_admin_password").fill(ADMIN_PASSWORD)
    page.get_by_label("Admin password again").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Provision").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/"))
    first = Job.objects.get(kind="clusters.provision_pg")

    squatter = _listener(lab, "bare1", bare["bare1"].address, 5432)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            status = _run_in_thread(pool, first, tasks.provision_pg.body).result(timeout=120)
    finally:
        squatter.kill()
        squatter.wait()
    assert status == Job.Status.FAILED
    expect(page.locator("#job-live")).to_have_attribute("data-status", "failed")
    start = page.locator("ol.job-steps li").filter(has_text="Start the server")
    expect(start).to_have_attribute("data-status", "failed")
    expect(start).to_contain_text("port 5432 is already in use on bare1")
    expect(page.locator("pre.error")).to_contain_text("Already done: Detect the OS family")
    screenshot("failed")

    page.get_by_role("button", name="Re-run: resume at the failed step").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/"))
    second = Job.objects.exclude(pk=first.pk).get(kind="clusters.provision_pg")
    assert page.url.endswith(f"/jobs/{second.pk}/")
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert _run_in_thread(pool, second, tasks.provision_pg.body).result(timeout=120) == (
            Job.Status.SUCCEEDED
        )
    expect(page.locator("#job-live")).to_have_attribute("data-status", "succeeded")
    steps = page.locator("ol.job-steps li")
    expect(steps.filter(has_text="initdb")).to_have_attribute("data-status", "skipped")
    expect(steps.filter(has_text="Start the server")).to_have_attribute("data-status", "done")
    screenshot("resumed")
    assert Cluster.objects.filter(name="pgrerun").exists()
