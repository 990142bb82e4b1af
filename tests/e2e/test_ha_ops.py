"""In a real Chromium: a DBA opens lab-pg's page, clicks "Switch over to db2", reads the
prechecks (read from the lab's servers and pgpool-II just now) and the plan, mistypes the
cluster's name (nothing queued), types it, and the switchover job runs against the real db1,
db2 and the lab's pgpool-II: the cluster page then draws db2 as the primary. Every part of the
lab's HA pair is rebuilt afterwards."""

import os
import re
import threading

import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from clusters.ha import deploy, tasks
from clusters.models import Cluster, Node
from console.jobs import run_job
from console.lab.demo import register_demo
from console.models import AuditEntry, Job
from console.secrets import store_credential
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def _run(job: Job, body) -> str:
    """Run a job body in a thread of its own (Playwright's loop occupies this one)."""
    outcome = {}

    def target():
        try:
            outcome["status"] = run_job(job.pk, body)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=240)
    return outcome.get("status", "still running")


def _lab_setup(lab):
    """lab-pg registered with an HA setup over the lab's own pgpool-II (its PCPPASSFILE)."""
    register_demo(os.environ)
    records, src = lab.load()["parts"], AuditEntry.Source.CLI
    pcp = store_credential("ha-pcp", "pcp-password", records["pgpool"]["pcp_password"],
                           actor=None, username="pcpadmin", source=src)  # fmt: skip
    repl = store_credential("ha-replication", "password",
                            records["primary"]["replication_password"], actor=None,
                            username="replicator", source=src)  # fmt: skip
    for name, part in (("db1", "primary"), ("db2", "standby")):
        Node.objects.filter(name=name).update(data_directory=f"{lab.dir}/{part}/data")
    setup = deploy.save_setup(
        Cluster.objects.get(name="lab-pg"), pgpool=Node.objects.get(name="lb1"),
        directory=f"{lab.dir}/pgpool", pcp_credential=pcp, replication_credential=repl,
        client_networks=[os.environ["LAB_NET"]], actor=None, source=src,
    )  # fmt: skip
    for backend in setup.backends:
        backend["synchronous"] = backend["name"] == "db2"
    setup.deployed = timezone.now()
    setup.save()
    return setup


def test_dba_switches_over_from_the_cluster_page(lab, rebuild_parts, page, screenshot, e2e_broker):
    rebuild_parts("primary", "standby", "pgpool")
    setup = _lab_setup(lab)
    cluster = setup.cluster
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana")

    page.goto(f"/clusters/{cluster.pk}/")
    panel = page.locator("section.ha-panel")
    expect(panel).to_contain_text("pgpool-II on lb1")
    screenshot("cluster-page")
    panel.get_by_role("button", name="Switch over to db2…").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Switchover: db2")
    checks = page.locator("article.ha-checks")
    expect(checks).to_contain_text("all pass")
    expect(checks).to_contain_text("db2 synchronous with zero replay lag")
    expect(page.locator("article.ha-plan li")).to_have_count(5)
    screenshot("precheck")

    page.get_by_label("Type the cluster's name to confirm").fill("lab")
    page.get_by_role("button", name="Start: switchover db2").click()
    expect(page.locator(".field-error")).to_contain_text("type the cluster's name, lab-pg")
    assert not Job.objects.filter(kind="clusters.ha_switchover").exists()
    screenshot("wrong-name")

    page.get_by_label("Type the cluster's name to confirm").fill("lab-pg")
    page.get_by_role("button", name="Start: switchover db2").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    job = Job.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert job.kind == "clusters.ha_switchover"
    screenshot("job-queued")
    assert _run(job, tasks.ha_switchover.body) == "succeeded", Job.objects.get(pk=job.pk).error
    expect(page.locator("#job-live .status")).to_have_text("succeeded", timeout=30_000)
    screenshot("job-done")

    page.goto(f"/clusters/{cluster.pk}/")
    box = page.locator('svg a.box[data-node="db2"] .box-sub')
    expect(box).to_have_text("primary · read-write")  # the new topology, at once
    expect(page.locator('svg a.box[data-node="db1"] .box-sub')).to_contain_text("standby")
    assert (Node.objects.get(name="db2").role, Node.objects.get(name="db1").role) == (
        "primary", "standby")  # fmt: skip
    screenshot("after-switchover")
