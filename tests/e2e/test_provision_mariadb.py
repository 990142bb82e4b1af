"""In a real Chromium: a DBA opens the MariaDB provisioning form, gives an address that is not
the host's (named on its field, nothing started), then a good request; the job page lists the
steps, which the worker runs live, and the new server is registered with its baseline passing."""

import re
import subprocess

import pytest
from playwright.sync_api import expect

from clusters.models import BaselineResult, Node
from clusters.provision.mariadb import KIND, provision_mariadb
from console.jobs import run_job
from console.lab import faults
from console.models import Job
from tests.clusters.test_provision_mariadb import (  # noqa: F401 (fixtures)
    LISTENER,
    _base,
    hosts,
    root_history,
    servers,
)
from tests.e2e.test_baseline import _off_the_loop, _sign_in
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ADMIN_PASSWORD = "E2e-Prov-admin-pw-9931"


def test_dba_provisions_mariadb_on_bare1_from_the_form(
    lab_env,
    page,
    screenshot,
    e2e_broker,
    hosts,  # noqa: F811
    servers,  # noqa: F811
    root_history,  # noqa: F811
):
    bare1 = hosts["bare1"]
    servers.append("mpe2e")
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana", PASSWORD)

    page.goto("/clusters/provision/mariadb/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Provision MariaDB")
    page.get_by_label("Bare host").select_option(label="bare1")
    page.get_by_label("Cluster name").fill("mpe2e")
    page.get_by_label("Environment").fill("lab")
    page.get_by_label("Interface address (bind-address)").fill("10.99.0.1")
    page.get_by_label("Base directory").fill(str(_base("mpe2e")))
    page.locator("#id_password").fill(ADMIN_PASSWORD)
    page.get_by_label("Admin password again").fill(ADMIN_PASSWORD)
    screenshot("form")
    page.get_by_role("button", name="Provision MariaDB").click()
    field = page.locator("label", has=page.get_by_label("Interface address (bind-address)"))
    expect(field.locator(".field-error")).to_contain_text(
        f"the console reaches the server at bare1's address {bare1.address}"
    )
    expect(page.get_by_label("Interface address (bind-address)")).to_have_attribute(
        "aria-invalid", "true"
    )
    assert not Job.objects.filter(kind=KIND).exists()
    screenshot("refused")

    page.get_by_label("Interface address (bind-address)").fill("")  # the host's address
    page.locator("#id_password").fill(ADMIN_PASSWORD)
    page.get_by_label("Admin password again").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Provision MariaDB").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/"))
    expect(page.locator("main")).to_contain_text("Provision MariaDB mpe2e on bare1")
    expect(page.locator("main")).to_contain_text("Waiting for a worker")
    job = Job.objects.get(kind=KIND)
    assert job.params["bind_address"] == bare1.address

    # The worker runs the job; the page, polling, shows each step as it ends.
    assert _off_the_loop(run_job, job.pk, provision_mariadb.body) == Job.Status.SUCCEEDED
    steps = page.locator("ol.job-steps li")
    expect(steps).to_have_count(14)
    expect(page.locator("#job-live")).to_have_attribute("data-status", "succeeded")
    expect(steps.filter(has_text="Install the MariaDB server package")).to_have_attribute(
        "data-status", "skipped"
    )
    expect(steps.filter(has_text="Create the admin account")).to_have_attribute(
        "data-status", "done"
    )
    expect(steps.filter(has_text="Run the security baseline check")).to_contain_text(
        "7/7 baseline checks pass"
    )
    expect(page.locator("main")).not_to_contain_text(ADMIN_PASSWORD)
    screenshot("job")

    node = Node.objects.get(name="mpe2e-bare1")
    assert set(BaselineResult.objects.filter(node=node).values_list("status", flat=True)) == {
        "pass"
    }
    page.goto("/clusters/provision/mariadb/")
    expect(page.locator("table")).to_contain_text("Provision MariaDB mpe2e on bare1")
    expect(page.locator("table")).to_contain_text("succeeded")
    screenshot("list")


def test_a_job_stopped_by_a_port_in_use_shows_why_and_is_rerun_from_the_page(
    lab,
    page,
    screenshot,
    e2e_broker,
    hosts,  # noqa: F811
    servers,  # noqa: F811
    root_history,  # noqa: F811
):
    bare2 = hosts["bare2"]
    servers.append("mpe2f")
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana", PASSWORD)
    page.goto("/clusters/provision/mariadb/")
    page.get_by_label("Bare host").select_option(label="bare2")
    page.get_by_label("Cluster name").fill("mpe2f")
    page.get_by_label("Base directory").fill(str(_base("mpe2f")))
    page.get_by_role("button", name="Provision MariaDB").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/"))
    job = Job.objects.get(kind=KIND)

    listener = subprocess.Popen(lab.host("bare2").argv(["python3", "-c", LISTENER, bare2.address]),
                                stdin=subprocess.PIPE)  # fmt: skip
    try:
        faults.wait_port_open(bare2.address, 3306, timeout=10)
        assert _off_the_loop(run_job, job.pk, provision_mariadb.body) == Job.Status.FAILED
    finally:
        listener.stdin.close()
        listener.wait(timeout=10)
    live = page.locator("#job-live")
    expect(live).to_have_attribute("data-status", "failed")
    start = page.locator("ol.job-steps li").filter(has_text="Start mariadbd")
    expect(start).to_have_attribute("data-status", "failed")
    expect(start).to_contain_text(f"port 3306 on {bare2.address} is already in use")
    expect(live.locator("pre.error")).to_contain_text(
        "Already done: Detect the OS family; Install the MariaDB server package;"
    )
    expect(page.locator("ol.job-steps li[data-status=pending]")).to_have_count(8)
    screenshot("failed")

    page.goto("/clusters/provision/mariadb/")
    expect(page.get_by_role("button", name=f"Re-run #{job.pk}")).to_be_visible()
    screenshot("list-failed")

    page.goto(f"/jobs/{job.pk}/")
    page.get_by_role("button", name="Re-run: resume at the failed step").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/"))
    expect(page.locator("main")).to_contain_text(f"re-runs job #{job.pk}")
    again = Job.objects.exclude(pk=job.pk).get(kind=KIND)
    assert _off_the_loop(run_job, again.pk, provision_mariadb.body) == Job.Status.SUCCEEDED
    expect(page.locator("#job-live")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("ol.job-steps li[data-status=skipped]")).not_to_have_count(0)
    expect(page.locator("ol.job-steps li").filter(has_text="Start mariadbd")).to_have_attribute(
        "data-status", "done"
    )
    screenshot("rerun")
