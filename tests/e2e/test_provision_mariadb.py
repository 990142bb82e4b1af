"""In a real Chromium: a DBA opens the MariaDB provisioning form, gives an address that is not
the host's (named on its field, nothing started), then a good request; the job page lists the
steps, which the worker runs live, and the new server is registered with its baseline passing."""

import re

import pytest
from playwright.sync_api import expect

from clusters.models import BaselineResult, Node
from clusters.provision.mariadb import KIND, provision_mariadb
from console.jobs import run_job
from console.models import Job
from tests.clusters.test_provision_mariadb import (  # noqa: F401 (fixtures)
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
