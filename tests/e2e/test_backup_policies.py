"""In a real Chromium: a DBA opens Backups, creates a policy with a bad cron (the error is shown on
the schedule, nothing is saved), then a good one, clicks "Back up now" and sees the run; the job
(run here as the worker would) takes a real pgBackRest backup of the lab's db1 and the run page
shows it validated and usable."""

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django_celery_beat.models import PeriodicTask
from playwright.sync_api import expect
from psycopg import sql

from backups import actions, schedule, tasks
from backups.drivers import pgbackrest
from backups.models import BackupCatalog, BackupPolicy, BackupRun
from clusters.models import Node
from console.executor import run_sql
from console.jobs import run_job
from console.lab.demo import register_demo
from tests.backups.test_pgbackrest import STANZA, sql1, wait_for
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _off_the_loop(func, *args, **kwargs):
    """Executor work in another thread: Playwright's sync API keeps an asyncio loop running in
    this one, where the SSH executor's asyncio.run() cannot start."""
    from django.db import connection

    def run():
        try:
            return func(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def _archive_command(node, command: str) -> None:
    run_sql(node, sql.SQL("ALTER SYSTEM SET archive_command = {}").format(sql.Literal(command)))
    run_sql(node, "SELECT pg_reload_conf()")
    wait_for("db1's archive_command", lambda: sql1(node, "SHOW archive_command", actor=None)
             == command)  # fmt: skip


def _reset_archive_command(node, original: str) -> None:
    run_sql(node, "ALTER SYSTEM RESET archive_command")
    run_sql(node, "SELECT pg_reload_conf()")
    wait_for("db1's own archive_command back",
             lambda: sql1(node, "SHOW archive_command", actor=None) == original)  # fmt: skip


@pytest.fixture
def lab_repository(lab_env, lab):
    """db1 registered, a pgBackRest repository under the lab directory with db1 archiving into
    it (and into the lab archive); all undone after. Set up off Playwright's loop."""
    register_demo({**os.environ, **lab_env})
    db1 = Node.objects.get(name="db1")
    parent = Path(lab_env["LAB_DIR"]) / "pgbackrest-e2e-policies"
    shutil.rmtree(parent, ignore_errors=True)
    parent.mkdir(mode=0o700)
    shutil.chown(parent, "postgres", "postgres")
    repo = pgbackrest.Repository(path=str(parent / "repo"), stanza=STANZA)
    instance, settings = _off_the_loop(actions.pg_instance, db1, actor=None)
    original = settings["archive_command"]
    pushed = f"{pgbackrest.archive_command(repo, instance.path)} && {original}"
    _off_the_loop(_archive_command, db1, pushed)
    catalog = BackupCatalog.objects.create(cluster=db1.cluster, name="lab", engine="pgbackrest",
                                           path=repo.path, stanza=STANZA)  # fmt: skip
    catalog.nodes.add(db1)
    try:
        yield catalog
    finally:
        _off_the_loop(_reset_archive_command, db1, original)
        shutil.rmtree(parent, ignore_errors=True)


def _sign_in(page, username: str, password: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def test_dba_creates_a_policy_after_a_bad_cron_and_backs_up_now(
    page, screenshot, e2e_broker, lab_repository
):
    catalog = lab_repository
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana", PASSWORD)

    page.get_by_role("link", name="Backups", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Backups")
    expect(page.locator("#policies")).to_contain_text("No policy yet.")
    page.get_by_role("button", name="New policy").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New backup policy")
    page.get_by_label("Catalog").select_option(label=str(catalog))
    page.get_by_label("Name").fill("nightly-full")
    page.get_by_label("Schedule (cron)").fill("0 25 * * *")
    page.get_by_label("Mode").select_option("full")
    page.get_by_role("button", name="Create the policy").click()
    error = page.locator("label[for=id_schedule] .field-error")
    expect(error).to_contain_text("Not a valid cron schedule")
    expect(page.get_by_label("Schedule (cron)")).to_have_attribute("aria-invalid", "true")
    screenshot("bad-cron")
    assert not BackupPolicy.objects.exists()
    assert not PeriodicTask.objects.filter(task=schedule.TASK).exists()

    page.get_by_label("Schedule (cron)").fill("30 1 * * *")
    page.get_by_role("button", name="Create the policy").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Backups")
    row = page.locator("#policies tr", has_text="nightly-full")
    expect(row).to_contain_text("30 1 * * *")
    expect(row.get_by_role("button", name="Disable")).to_be_visible()  # enabled
    policy = BackupPolicy.objects.get()
    expect(row).to_contain_text(f"{schedule.next_run(policy):%Y-%m-%d %H:%M}")
    assert PeriodicTask.objects.get(name=schedule.task_name(policy)).enabled
    screenshot("policy-created")

    row.get_by_role("button", name="Back up now").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"full backup of {catalog.cluster}")
    expect(page.locator("hgroup")).to_contain_text("pending")
    run = BackupRun.objects.get()
    assert (run.policy, run.status) == (policy, "pending")
    screenshot("run-queued")

    # The worker's part, as a Celery worker runs it (off the browser's loop).
    assert _off_the_loop(run_job, run.job_id, tasks.run_backup.body) == "succeeded"
    page.reload()
    expect(page.locator("hgroup")).to_contain_text("OK")
    expect(page.locator("hgroup")).to_contain_text("usable: validated and sound")
    run.refresh_from_db()
    expect(page.locator("#run-facts")).to_contain_text(run.backup_id)
    screenshot("run-usable")
    page.get_by_role("link", name=f"job #{run.job_id}: live progress and log").click()
    expect(page.get_by_text(f"backup {run.backup_id}: OK (validated, usable)")).to_be_visible()
    screenshot("job-log")
    page.get_by_role("link", name="Backups", exact=True).click()
    expect(page.locator("#runs")).to_contain_text(run.backup_id)
    screenshot("overview")
