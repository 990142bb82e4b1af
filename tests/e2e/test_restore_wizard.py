"""In a real Chromium: a DBA walks the restore wizard for lab-pg onto bare1 up to its
confirmation. A time that does not exist is refused on its field; the plan shows the backup
taken a moment before (a real pgBackRest backup of db1) and the pre-checks read on bare1 all
pass; the wrong name typed is refused and nothing is queued. Then the right name queues it, a
worker runs it, and the restore's page offers the follow-ups."""

import os
import time

import pytest
from playwright.sync_api import expect

from backups.models import BackupPolicy, RestoreRun
from backups.restore import restore_task
from clusters.models import Node
from console.executor import run_command, run_sql
from console.jobs import run_job
from console.lab.parts.postgres import PG_BIN
from console.models import Job
from tests.backups.test_pgbackrest import backup_now, catalog, db1, site  # noqa: F401
from tests.e2e.test_baseline import _off_the_loop, _sign_in
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _note_a_time_with_a_commit_after_it(actor) -> str:
    """db1's time to the second, then a commit after it, archived: recovery can reach it."""
    db1_node = Node.objects.get(name="db1")
    noted = run_sql(
        db1_node,
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC' + "
        "interval '1 second', 'YYYY-MM-DD HH24:MI:SS')",
        actor=actor,
    ).rows[0][0]
    deadline = time.monotonic() + 30
    while (
        run_sql(
            db1_node,
            "SELECT clock_timestamp() AT TIME ZONE 'UTC' > %s::timestamp",
            [noted],
            actor=actor,
        ).rows[0][0]
        is not True
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)  # polling interval; the deadline decides
    run_sql(db1_node, "CREATE TABLE restore_wizard_e2e ()", actor=actor)
    run_sql(db1_node, "DROP TABLE restore_wizard_e2e", actor=actor)
    segment = run_sql(db1_node, "SELECT pg_walfile_name(pg_switch_wal())", actor=actor).rows[0][0]
    while (
        run_sql(
            db1_node, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver", actor=actor
        ).rows[0][0]
        < segment
    ):
        assert time.monotonic() < deadline + 60, f"{segment} not archived"
        time.sleep(0.2)  # polling interval; the deadline decides
    return noted


def test_dba_walks_the_restore_wizard_up_to_the_confirmation(
    lab_env,
    page,
    screenshot,
    e2e_broker,
    catalog,  # noqa: F811
    site,  # noqa: F811
    dba,
):
    policy = BackupPolicy.objects.create(
        catalog=catalog, name="e2e", schedule="0 4 * * *", mode="full", compress=False
    )
    full = _off_the_loop(backup_now, policy, "full", dba)
    assert full.usable, full.message
    bare1 = Node.objects.get(name="bare1")
    clone = str(site[0] / "clone")
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana", PASSWORD)

    page.goto("/backups/restore/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Restore a cluster")
    page.get_by_label("Cluster").select_option(label="lab-pg")
    screenshot("step-1")
    page.get_by_role("button", name="Next: target node").click()

    expect(page.locator("#step-2")).to_contain_text("where to restore lab-pg")
    page.get_by_label("Target node").select_option(value=str(bare1.pk))
    page.get_by_label("Data directory").fill(clone)
    page.get_by_label("Port").fill("5433")
    screenshot("step-2")
    page.get_by_role("button", name="Next: recovery target").click()

    page.get_by_label("Recover to").select_option("time")
    page.get_by_label("Time, transaction id or timeline").fill("2026-02-30 10:00:00")
    page.get_by_role("button", name="Next: plan and pre-checks").click()
    value = page.get_by_label("Time, transaction id or timeline")
    expect(value).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#step-3")).to_contain_text("not a real date and time")
    screenshot("step-3-bad-time")

    noted = _off_the_loop(_note_a_time_with_a_commit_after_it, dba)
    value.fill(noted)
    page.get_by_role("button", name="Next: plan and pre-checks").click()
    expect(page.locator("#plan-backup")).to_contain_text(full.backup_id)
    expect(page.locator("#plan")).to_contain_text(f"time {noted}+00")
    prechecks = page.locator("#prechecks")
    expect(prechecks).to_contain_text("all passed")
    for name in ("server_stopped", "directory", "disk", "repository", "port"):
        expect(prechecks.locator(f"#check-{name}")).to_contain_text("ok")
    expect(prechecks.locator("#check-repository")).to_contain_text("bare1 sees")
    screenshot("step-4-plan")

    page.get_by_label("Type lab-pg to confirm").fill("lab_pg")
    page.get_by_role("button", name="Restore lab-pg onto bare1").click()
    expect(page.locator("#confirm")).to_contain_text(
        "Nothing was queued: type the cluster's name, lab-pg, to confirm."
    )
    expect(page.get_by_label("Type lab-pg to confirm")).to_have_attribute("aria-invalid", "true")
    screenshot("confirm-wrong-name")
    assert not RestoreRun.objects.exists()
    assert not Job.objects.filter(kind="backups.restore").exists()
    assert not os.path.exists(clone)

    # The right name: queued, the restore's page; a worker runs it; the follow-ups are offered.
    page.get_by_label("Type lab-pg to confirm").fill("lab-pg")
    page.get_by_role("button", name="Restore lab-pg onto bare1").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("lab-pg onto bare1")
    run = RestoreRun.objects.get()
    try:
        status = _off_the_loop(run_job, run.job_id, restore_task.body)
        assert status == "succeeded", Job.objects.get(pk=run.job_id).error
        page.reload()
        expect(page.locator("#outcome")).to_contain_text(full.backup_id)
        expect(page.locator("#follow-ups")).to_contain_text("Remove the recovery settings")
        expect(page.get_by_role("button", name="Queue a full backup of lab-pg")).to_be_visible()
        screenshot("restore-done")
    finally:
        _off_the_loop(
            run_command,
            bare1,
            [f"{PG_BIN}/pg_ctl", "-D", clone, "-m", "immediate", "-w", "stop"],
            actor=dba,
            sudo_user="postgres",
            check=False,
        )
