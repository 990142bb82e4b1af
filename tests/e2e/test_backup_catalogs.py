"""In a real Chromium: a DBA opens Backups, then the catalogs, and creates a pgBackRest catalog
for the lab's db1. A path postgres cannot write is refused on the path field and nothing is
saved; the right path is checked on db1 (directory, stanza-create, check), saved, read, and the
catalog appears in the list."""

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from backups import actions, schedule
from backups.drivers import pgbackrest
from backups.models import BackupCatalog, BackupPolicy
from clusters.models import Node
from console import audit
from console.lab.demo import register_demo
from console.models import AuditEntry
from tests.backups.test_pgbackrest import STANZA
from tests.e2e.test_backup_policies import (
    _archive_command,
    _off_the_loop,
    _reset_archive_command,
    _sign_in,
)
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lab_paths(lab_env, lab):
    """db1 registered; a directory of postgres's with db1 archiving into `<it>/repo` (and into
    the lab archive), and one of root's postgres may not write. All undone after."""
    register_demo({**os.environ, **lab_env})
    db1 = Node.objects.get(name="db1")
    parent = Path(lab_env["LAB_DIR"]) / "pgbackrest-e2e-catalogs"
    locked = Path(lab_env["LAB_DIR"]) / "pgbackrest-e2e-catalogs-ro"
    for directory in (parent, locked):
        shutil.rmtree(directory, ignore_errors=True)
    parent.mkdir(mode=0o700)
    shutil.chown(parent, "postgres", "postgres")
    locked.mkdir(mode=0o755)
    repo = pgbackrest.Repository(path=str(parent / "repo"), stanza=STANZA)
    instance, settings = _off_the_loop(actions.pg_instance, db1, actor=None)
    original = settings["archive_command"]
    pushed = f"{pgbackrest.archive_command(repo, instance.path)} && {original}"
    _off_the_loop(_archive_command, db1, pushed)
    try:
        yield db1, repo.path, str(locked / "repo")
    finally:
        _off_the_loop(_reset_archive_command, db1, original)
        for directory in (parent, locked):
            shutil.rmtree(directory, ignore_errors=True)


def test_dba_creates_a_catalog_after_a_path_postgres_cannot_write(page, screenshot, lab_paths):
    db1, good, bad = lab_paths
    make_user("dana", persona="dba", first_name="Dana", last_name="Admin")
    _sign_in(page, "dana", PASSWORD)

    page.get_by_role("link", name="Backups", exact=True).click()
    page.get_by_role("link", name="Manage catalogs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Backup catalogs")
    expect(page.locator("#catalogs")).to_contain_text("No catalog yet.")
    page.get_by_role("button", name="New catalog").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New backup catalog")
    page.get_by_label("Cluster").select_option(label=db1.cluster.name)
    page.get_by_label("Engine").select_option("pgbackrest")
    page.get_by_label("Name", exact=True).fill("lab-repo")
    page.get_by_label("Path").fill(bad)
    page.locator("#catalog-nodes").get_by_label(re.compile(r"^\s*db1 \(")).check()
    page.get_by_label("Stanza (pgBackRest)").fill(STANZA)
    screenshot("form")
    page.get_by_role("button", name="Check and create the catalog").click()
    error = page.locator("label[for=id_path] .field-error")
    expect(error).to_contain_text(f"postgres cannot create {bad} on db1")
    expect(error).to_contain_text("Permission denied")
    expect(page.get_by_label("Path")).to_have_attribute("aria-invalid", "true")
    screenshot("path-refused")
    assert not BackupCatalog.objects.exists()
    assert not AuditEntry.objects.filter(action=audit.BACKUP_CATALOG_CREATED).exists()

    page.get_by_label("Path").fill(good)
    page.get_by_role("button", name="Check and create the catalog").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Catalog {db1.cluster.name}/lab-repo", timeout=120_000
    )
    expect(page.locator("main")).to_contain_text(f"stanza {STANZA} created on db1")
    expect(page.locator("main")).to_contain_text("pgBackRest check passed")
    expect(page.locator("#catalog-facts")).to_contain_text(good)
    catalog = BackupCatalog.objects.get()
    assert catalog.initialized is not None and catalog.last_read is not None
    screenshot("created")

    page.get_by_role("link", name="Catalogs").click()
    row = page.locator("#catalogs tr", has_text="lab-repo")
    expect(row).to_contain_text("pgBackRest")
    expect(row).to_contain_text(good)
    expect(row).to_contain_text("db1")
    screenshot("listed")

    # Delete: refused while a policy uses the catalog, then confirmed by the name typed.
    policy = schedule.create_policy(BackupPolicy(catalog=catalog, name="nightly", mode="full",
                                                 schedule="0 1 * * *"), actor=None)  # fmt: skip
    row.get_by_role("link", name=str(catalog)).click()
    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Delete catalog {catalog}?")
    page.get_by_label("Type the catalog's name to confirm").fill("lab-repo")
    page.get_by_role("button", name="Delete the catalog").click()
    expect(page.locator("#delete-refused")).to_have_text(
        f"{catalog} is still used by 1 policy: delete its policies first; a catalog with runs "
        "or restores is kept as their record."
    )
    screenshot("delete-refused")
    assert BackupCatalog.objects.filter(pk=catalog.pk).exists()
    schedule.delete_policy(policy, actor=None)
    page.get_by_label("Type the catalog's name to confirm").fill("lab-repo")
    page.get_by_role("button", name="Delete the catalog").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Backup catalogs")
    expect(page.locator("main")).to_contain_text("its files on the hosts were kept")
    expect(page.locator("#catalogs")).to_contain_text("No catalog yet.")
    assert not BackupCatalog.objects.exists() and Path(good).is_dir()
    screenshot("deleted")
