"""In a real Chromium: a DBA imports lab-pg's pg_hba.conf, adds a rule, fixes it in the form
(which names the bad field), reorders, previews the diff and applies with the cluster's name
typed; the lab's db1 and db2 then refuse the rule's user. The lab's files are put back."""

import os
import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from clusters import hba
from clusters.actions import hba as actions
from clusters.actions import hba_apply as apply_actions
from clusters.actions import hba_live as live_actions
from clusters.models import Cluster, HbaVersion
from clusters.tasks import hba_apply, hba_read
from console.jobs import run_job
from console.lab.demo import register_demo
from console.models import Job
from tests.clusters._hba_lab import PROBE, _probe, lab_files  # noqa: F401 (fixture)
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def _run(job: Job, body) -> str:
    """Run a job body in a thread of its own: Playwright's event loop occupies this one, and
    the SSH executor runs its own (asyncio.run)."""
    outcome = {}

    def target():
        try:
            outcome["status"] = run_job(job.pk, body)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=120)
    return outcome.get("status", "still running")


def _job_from_url(page, kind: str) -> Job:
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    job = Job.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert job.kind == kind
    return job


@pytest.mark.usefixtures("lab_files")
def test_dba_edits_previews_and_applies_a_rule(lab_env, page, screenshot, e2e_broker):
    register_demo(os.environ)
    cluster = Cluster.objects.get(name="lab-pg")
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana")

    page.goto("/clusters/inventory/")
    page.get_by_role("button", name="pg_hba.conf").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("lab-pg: pg_hba.conf")
    expect(page.locator(".empty")).to_contain_text("no rules for this cluster yet")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Import from the nodes").click()
    read = _job_from_url(page, "clusters.hba_read")
    assert _run(read, hba_read.body) == "succeeded", Job.objects.get(pk=read.pk).error
    page.goto(f"/clusters/{cluster.pk}/hba/")
    rows = page.locator("table.hba-rules tbody tr:not(.lint-row)")
    expect(rows).to_have_count(3)
    expect(page.locator("table.hba-drift")).to_contain_text("in sync")
    screenshot("imported")

    # A new rule with a bad address: the form says which field, nothing is saved.
    page.get_by_role("button", name="Add a rule").click()
    page.locator("#id_conn_type").select_option("host")
    page.locator("#id_database").fill("all")
    page.locator("#id_user").fill(PROBE)
    page.locator("#id_address").fill("10.77.0.0/33")
    page.locator("#id_method").select_option("reject")
    page.locator("#id_comment").fill("the probe role may not log in")
    page.get_by_role("button", name="Save rule").click()
    error = page.locator("label[for=id_address] .field-error")
    expect(error).to_contain_text("Invalid CIDR mask /33")
    screenshot("form-error")
    page.locator("#id_address").fill(os.environ["LAB_NET"])
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("status")).to_contain_text("Rule saved")
    expect(rows).to_have_count(4)
    # Last it would never match (rule 3 takes every lab address first): the lint says so.
    expect(page.locator(".lint-shadowed")).to_contain_text("rule 3 above")
    # Move it to the top, where it takes effect.
    for _ in range(3):
        rows.filter(has_text=PROBE).get_by_role("button", name=re.compile("up$")).click()
    expect(rows.first).to_contain_text(PROBE)
    expect(page.locator(".lint-shadowed")).to_have_count(0)
    expect(page.locator("table.hba-drift")).to_contain_text("missing on the node")
    screenshot("rule-added")

    page.get_by_role("button", name="Preview and apply").click()
    db1 = page.locator("#preview-db1 pre.diff")
    expect(db1.locator(".diff-add").filter(has_text=PROBE)).to_have_count(1)
    expect(db1).to_contain_text("# the probe role may not log in")
    screenshot("preview")

    page.get_by_label("Type the cluster's name to confirm").fill("lab")
    page.get_by_role("button", name="Apply to lab-pg").click()
    expect(page.get_by_role("alert")).to_contain_text("Type lab-pg exactly")
    assert not Job.objects.filter(kind="clusters.hba_apply").exists()
    page.get_by_label("Type the cluster's name to confirm").fill("lab-pg")
    page.get_by_role("button", name="Apply to lab-pg").click()
    job = _job_from_url(page, "clusters.hba_apply")
    assert _run(job, hba_apply.body) == "succeeded", Job.objects.get(pk=job.pk).error
    live = page.locator("#job-live")
    expect(live.locator(".status")).to_have_text("succeeded", timeout=30_000)
    expect(live).to_contain_text("db1: applied")
    screenshot("applied-job")

    for name in ("db1", "db2"):
        assert "pg_hba.conf rejects connection" in _probe(name)
    page.goto(f"/clusters/{cluster.pk}/hba/")
    expect(page.locator("table.hba-versions")).to_contain_text("db1: applied, db2: applied")
    expect(page.locator("table.hba-drift .status-succeeded")).to_have_count(2)
    screenshot("after-apply")
    assert HbaVersion.objects.get().status == "applied"
    assert live_actions.drift_report(cluster)[0][0].in_sync


@pytest.mark.usefixtures("lab_files")
def test_refused_file_shows_the_servers_errors_and_rollback(lab_env, page, screenshot, e2e_broker):
    register_demo(os.environ)
    cluster = Cluster.objects.get(name="lab-pg")
    dana = make_user("dana", persona="dba")
    assert (
        _run(live_actions.start_read(cluster, adopt=True, actor=dana), hba_read.body) == "succeeded"
    )
    ruleset = cluster.hba
    first = apply_actions.start_apply(cluster, confirm="lab-pg", actor=dana)
    assert _run(first, hba_apply.body) == "succeeded"
    # Valid for the console, refused by the lab's servers: SSL is off there.
    rule = hba.Rule("hostssl", "all", "all", os.environ["LAB_NET"], method="scram-sha-256",
                    comment="clients over TLS")  # fmt: skip
    actions.save_rule(ruleset, rule, position=0, actor=dana)
    refused = apply_actions.start_apply(cluster, confirm="lab-pg", actor=dana)
    assert _run(refused, hba_apply.body) == "failed"

    _sign_in(page, "dana")
    page.goto(f"/clusters/{cluster.pk}/hba/")
    versions = page.locator("table.hba-versions")
    expect(versions).to_contain_text("refused")
    versions.get_by_role("link", name="2", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Version 2: refused")
    errors = page.locator("#node-db2 table.hba-errors")
    expect(errors).to_contain_text("hostssl record cannot match because SSL is disabled")
    expect(errors.locator("tbody td").nth(1)).to_have_text("1")  # rule 1
    expect(page.locator("#node-db2")).to_contain_text("the old file was put back")
    expect(page.locator("#node-db1")).to_contain_text("skipped")
    screenshot("refused-version")

    page.goto(f"/clusters/{cluster.pk}/hba/versions/1/")
    page.get_by_label("Type the cluster's name to confirm").fill("lab-pg")
    page.get_by_role("button", name="Roll back to version 1").click()
    job = _job_from_url(page, "clusters.hba_apply")
    assert _run(job, hba_apply.body) == "succeeded", Job.objects.get(pk=job.pk).error
    expect(page.locator("#job-live .status")).to_have_text("succeeded", timeout=30_000)
    page.goto(f"/clusters/{cluster.pk}/hba/")
    expect(page.locator("table.hba-rules")).not_to_contain_text("hostssl")
    expect(versions.locator("tbody tr").first).to_contain_text("rollback to 1")
    screenshot("rolled-back")
    assert _probe("db1") == "ok"
