# ruff: noqa: F811 (the lab fixtures db1, db2, site and the tmpfs come from their test modules)
"""Backup catalogs made by DBAs (backups.catalog_admin and its pages), against the lab's db1/db2
with pgBackRest, and pg_rman's road where its binary is missing:

- a catalog on a fresh path under the lab directory: the directory made, the stanza created,
  `check` passed, the repository read (a backup taken outside the console appears as a run);
- a path postgres cannot write, a path db2 does not share (a tmpfs over it in db2's mount
  namespace only), a pg_rman catalog where pg_rman is not installed: a form error on the field,
  nothing saved, no directory left behind;
- delete refused while a policy uses the catalog, then confirmed by the name typed;
- managers read the pages without a button; outsiders get 403; bad input is named on its field.
"""

import shutil
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from backups import actions, catalog_admin, schedule
from backups.drivers import pgbackrest
from backups.models import BackupCatalog, BackupPolicy, BackupRun
from clusters.models import Node
from console import audit
from console.models import AuditEntry
from tests import factories
from tests.backups.test_backup_faults import db2, db2_sees_other_storage  # noqa: F401
from tests.backups.test_pg_rman_e2e import PG_RMAN
from tests.backups.test_pgbackrest import STANZA, db1, site  # noqa: F401


def _form(cluster, nodes, **values) -> dict:
    data = {"cluster": cluster.pk, "name": "lab-repo", "engine": "pgbackrest", "path": "",
            "nodes": [n.pk for n in nodes], "stanza": STANZA, "arclog_path": "",
            "srvlog_path": "", "time_zone": "UTC"}  # fmt: skip
    data.update(values)
    return data


def _engine_ran() -> bool:
    commands = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND)
    return commands.filter(command__regex=r"pgbackrest .*(stanza-create|check)$").exists()


@pytest.mark.django_db(transaction=True)
def test_a_catalog_on_a_fresh_path_is_created_initialised_and_read(client, dba, db1, site):
    parent, repo, instance, _original = site
    # A backup made outside the console, before the console knows the repository.
    outside = pgbackrest.Repository(path=repo.path, stanza=STANZA)
    actions.run_pgbackrest(db1, pgbackrest.stanza_create(outside, instance), actor=dba)
    taken = actions.run_pgbackrest(db1, pgbackrest.backup(outside, instance, "full"), actor=dba,
                                   timeout=600)  # fmt: skip
    label = pgbackrest.new_label(taken.stdout)
    assert label

    client.force_login(dba)
    response = client.post(reverse("backups:catalog_create"),
                           _form(db1.cluster, [db1], path=repo.path))  # fmt: skip
    catalog = BackupCatalog.objects.get()
    assert response.status_code == 302, response.context["form"].errors
    assert response.url == reverse("backups:catalog_detail", args=[catalog.pk])
    assert catalog.initialized is not None and catalog.last_read is not None
    assert list(catalog.nodes.all()) == [db1]
    run = BackupRun.objects.get(catalog=catalog)
    assert (run.backup_id, run.found_outside_console, run.status, run.usable) == (
        label, True, "ok", True)  # fmt: skip
    created = AuditEntry.objects.get(action=audit.BACKUP_CATALOG_CREATED)
    assert created.target == f"backup_catalog:{catalog.pk}" and created.actor == dba
    assert f"stanza {STANZA} created on db1" in created.output
    assert "pgBackRest check passed" in created.output
    checks = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND, node="db1")
    assert checks.filter(command__contains="pgbackrest", command__endswith=" check").exists()
    assert checks.filter(command__endswith="stanza-create").exists()

    page = client.get(response.url).content.decode()
    assert label in page and "Read now" in page and "Check" in page and repo.path in page

    # "Check" again: nothing to do on a set-up repository, and it says so in the audit log.
    client.post(reverse("backups:catalog_check", args=[catalog.pk]))
    checked = AuditEntry.objects.get(action=audit.BACKUP_CATALOG_CHECKED)
    assert checked.status == "succeeded" and "pgBackRest check passed" in checked.output
    # "Read now": nothing changed, nothing new.
    response = client.post(reverse("backups:catalog_read", args=[catalog.pk]), follow=True)
    assert "Read: 1 backup listed; 0 new, 0 changed." in response.content.decode()
    assert BackupRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_path_postgres_cannot_write_is_a_form_error_and_nothing_is_saved(
    client, dba, db1, lab_env
):
    parent = Path(lab_env["LAB_DIR"]) / "catalog-admin-ro"
    shutil.rmtree(parent, ignore_errors=True)
    parent.mkdir(mode=0o755)  # root's: postgres may read, not write
    try:
        client.force_login(dba)
        path = str(parent / "repo")
        response = client.post(reverse("backups:catalog_create"),
                               _form(db1.cluster, [db1], path=path))  # fmt: skip
        assert response.status_code == 200
        errors = response.context["form"].errors
        assert list(errors) == ["path"]
        assert errors["path"][0].startswith(f"postgres cannot create {path} on db1: mkdir: ")
        assert errors["path"][0].endswith("Permission denied")
        assert not BackupCatalog.objects.exists() and not _engine_ran()
        assert not AuditEntry.objects.filter(action=audit.BACKUP_CATALOG_CREATED).exists()
        assert list(parent.iterdir()) == []
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.django_db(transaction=True)
def test_a_path_the_nodes_do_not_share_is_a_form_error_on_nodes_and_nothing_is_left(
    client, dba, db1, db2, site, db2_sees_other_storage
):
    _parent, repo, _instance, _original = site
    client.force_login(dba)
    response = client.post(reverse("backups:catalog_create"),
                           _form(db1.cluster, [db1, db2], path=repo.path))  # fmt: skip
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["nodes"]
    assert errors["nodes"][0] == (
        f"The catalog {repo.path} is not shared: a file written there on db1 is not visible on "
        "db2. Mount the same storage on every node of the catalog; nothing was saved."
    )
    assert not BackupCatalog.objects.exists() and not _engine_ran()
    assert not Path(repo.path).exists()  # the directory the check made is removed again
    marker_seen = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND, node="db2",
                                            command__contains="test -f")  # fmt: skip
    assert marker_seen.exists()
    page = response.content.decode()
    assert 'id="catalog-nodes" aria-invalid="true"' in page and "is not shared" in page


@pytest.mark.skipif(PG_RMAN is not None, reason="pg_rman is installed: its end-to-end tests run")
@pytest.mark.django_db(transaction=True)
def test_a_pg_rman_catalog_where_pg_rman_is_missing_says_so_and_saves_nothing(
    client, dba, db1, site, lab_env
):
    parent, _repo, _instance, _original = site
    client.force_login(dba)
    path = str(parent / "pg_rman")
    data = _form(db1.cluster, [db1], engine="pg_rman", path=path, stanza="",
                 arclog_path=str(parent))  # fmt: skip
    response = client.post(reverse("backups:catalog_create"), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["engine"]
    assert errors["engine"][0].startswith("pg_rman is not installed on this host")
    assert "(db1): install pg_rman there, or choose pgBackRest." in errors["engine"][0]
    assert not BackupCatalog.objects.exists()
    assert not Path(path).exists()
    ran = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND, node="db1",
                                    command__contains="pg_rman init").order_by("id")  # fmt: skip
    assert [e.status for e in ran] == ["started", "failed"]


# --- without the lab: delete, permissions, input named on its field -----------------------------


@pytest.fixture
def catalog(db):
    cluster = factories.make_monitored_cluster("bk-catalogs")
    return BackupCatalog.objects.create(cluster=cluster, name="repo", engine="pgbackrest",
                                        path="/srv/repo", stanza="main")  # fmt: skip


def test_delete_is_refused_while_a_policy_uses_the_catalog_then_confirmed_by_its_name(
    client, dba, catalog
):
    policy = schedule.create_policy(BackupPolicy(catalog=catalog, name="nightly", mode="full",
                                                 schedule="0 1 * * *"), actor=dba)  # fmt: skip
    client.force_login(dba)
    url = reverse("backups:catalog_delete", args=[catalog.pk])
    response = client.post(url, {"confirm_name": "repo"})
    assert response.status_code == 200
    assert response.context["refused"] == (
        "bk-catalogs/repo is still used by 1 policy: delete its policies first; a catalog with "
        "runs or restores is kept as their record."
    )
    assert BackupCatalog.objects.filter(pk=catalog.pk).exists()
    assert not AuditEntry.objects.filter(action=audit.BACKUP_CATALOG_DELETED).exists()

    schedule.delete_policy(policy, actor=dba)
    response = client.post(url, {"confirm_name": "rep"})  # a wrong name: asked again
    assert response.status_code == 200
    assert response.context["form"].errors["confirm_name"] == [
        "Type the catalog's name, repo, to delete it."
    ]
    assert BackupCatalog.objects.filter(pk=catalog.pk).exists()

    response = client.post(url, {"confirm_name": " repo "})
    assert response.status_code == 302 and response.url == reverse("backups:catalog_list")
    assert not BackupCatalog.objects.filter(pk=catalog.pk).exists()
    deleted = AuditEntry.objects.get(action=audit.BACKUP_CATALOG_DELETED)
    assert deleted.target == f"backup_catalog:{catalog.pk}" and deleted.actor == dba
    assert "/srv/repo" in deleted.output and "files on the hosts were kept" in deleted.output
    catalog_admin.delete_catalog(catalog, actor=dba)  # a retry does nothing
    assert AuditEntry.objects.filter(action=audit.BACKUP_CATALOG_DELETED).count() == 1


def test_delete_is_refused_while_runs_refer_to_the_catalog(dba, catalog):
    BackupRun.objects.create(catalog=catalog, cluster=catalog.cluster, mode="full", status="ok",
                             backup_id="20261126-010000F")  # fmt: skip
    with pytest.raises(catalog_admin.CatalogRefused, match="still used by 1 run:"):
        catalog_admin.delete_catalog(catalog, actor=dba)
    assert BackupCatalog.objects.filter(pk=catalog.pk).exists()


def test_managers_read_the_catalog_pages_without_buttons_and_outsiders_get_403(
    client, manager, outsider, catalog
):
    client.force_login(manager)
    listing = client.get(reverse("backups:catalog_list")).content.decode()
    assert "bk-catalogs/repo" in listing and "New catalog" not in listing
    detail = client.get(reverse("backups:catalog_detail", args=[catalog.pk])).content.decode()
    assert "/srv/repo" in detail and "Read now" not in detail and "Delete" not in detail
    for name in ("catalog_edit", "catalog_delete"):
        assert client.get(reverse(f"backups:{name}", args=[catalog.pk])).status_code == 403
    for name in ("catalog_read", "catalog_check"):
        assert client.post(reverse(f"backups:{name}", args=[catalog.pk])).status_code == 403
    assert client.get(reverse("backups:catalog_create")).status_code == 403
    client.force_login(outsider)
    assert client.get(reverse("backups:catalog_list")).status_code == 403
    assert client.get(reverse("backups:catalog_detail", args=[catalog.pk])).status_code == 403
    overview = reverse("backups:overview")
    client.force_login(manager)
    assert reverse("backups:catalog_list") in client.get(overview).content.decode()


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"path": "srv/repo"}, "path", "absolute"),
        ({"stanza": ""}, "stanza", "pgBackRest needs a stanza name."),
        ({"arclog_path": "/srv/wal"}, "arclog_path", "This is a pg_rman setting"),
        ({"engine": "pg_rman", "stanza": ""}, "arclog_path", "pg_rman needs the directory"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "Not a known time zone"),
        ({"name": "repo"}, None, "already exists"),
    ],
)
def test_bad_input_is_named_on_its_field_and_nothing_is_saved_or_run(
    client, dba, catalog, values, field, message
):
    other = factories.make_monitored_cluster("bk-other")
    node = Node.objects.filter(cluster=catalog.cluster, service=Node.Service.POSTGRESQL).first()
    client.force_login(dba)
    data = _form(
        catalog.cluster, [node] if node else [], **{"path": "/srv/new", "stanza": "main", **values}
    )
    response = client.post(reverse("backups:catalog_create"), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    key = field or "__all__"
    assert key in errors and message in " ".join(errors[key]), errors
    assert BackupCatalog.objects.count() == 1
    assert not AuditEntry.objects.filter(action=audit.BACKUP_COMMAND).exists()
    # A node of another cluster is named on the nodes field.
    stranger = Node.objects.filter(cluster=other, service=Node.Service.POSTGRESQL).first()
    if stranger is not None:
        data = _form(catalog.cluster, [stranger], path="/srv/new", stanza="main", name="n2")
        errors = client.post(reverse("backups:catalog_create"), data).context["form"].errors
        assert list(errors) == ["nodes"] and "Not nodes of bk-catalogs" in errors["nodes"][0]


def test_an_edit_of_the_name_is_audited_and_a_new_path_is_refused_while_runs_live_in_the_old(
    client, dba, catalog
):
    node = Node.objects.get(name="bk-catalogs-db1")
    catalog.nodes.add(node)
    client.force_login(dba)
    url = reverse("backups:catalog_edit", args=[catalog.pk])
    data = _form(catalog.cluster, [node], name="main-repo", path="/srv/repo", stanza="main")
    response = client.post(url, data)
    assert response.status_code == 302
    catalog.refresh_from_db()
    assert catalog.name == "main-repo"
    changed = AuditEntry.objects.get(action=audit.BACKUP_CATALOG_CHANGED)
    assert changed.output == "catalog bk-catalogs/main-repo: name: repo -> main-repo"
    assert not AuditEntry.objects.filter(action=audit.BACKUP_COMMAND).exists()  # no check needed

    BackupRun.objects.create(catalog=catalog, cluster=catalog.cluster, mode="full", status="ok",
                             backup_id="20261126-010000F")  # fmt: skip
    response = client.post(url, {**data, "path": "/srv/elsewhere"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert (
        list(errors) == ["path"] and "has 1 run whose backups are in /srv/repo" in errors["path"][0]
    )
    catalog.refresh_from_db()
    assert catalog.path == "/srv/repo"
    assert AuditEntry.objects.filter(action=audit.BACKUP_CATALOG_CHANGED).count() == 1
    assert not AuditEntry.objects.filter(action=audit.BACKUP_COMMAND).exists()


@pytest.mark.django_db(transaction=True)
def test_adding_a_node_that_does_not_share_the_path_is_refused_and_the_nodes_stay(
    dba, db1, db2, site, db2_sees_other_storage
):
    _parent, repo, _instance, _original = site
    draft = BackupCatalog(cluster=db1.cluster, name="lab", engine="pgbackrest", path=repo.path,
                          stanza=STANZA)  # fmt: skip
    saved = catalog_admin.create_catalog(draft, [db1], actor=dba)
    assert saved.read_error == "" and saved.read.total == 0
    catalog = saved.catalog
    with pytest.raises(ValidationError) as caught:
        catalog_admin.update_catalog(catalog, {"nodes": [db1, db2]}, actor=dba)
    assert list(caught.value.message_dict) == ["nodes"]
    assert "is not visible on db2" in caught.value.message_dict["nodes"][0]
    catalog.refresh_from_db()
    assert list(catalog.nodes.all()) == [db1]
    assert not AuditEntry.objects.filter(action=audit.BACKUP_CATALOG_CHANGED).exists()
    assert Path(repo.path).is_dir()  # the repository that was there stays


@pytest.mark.django_db(transaction=True)
def test_a_repository_the_server_does_not_archive_into_fails_its_check_and_is_not_saved(
    client, dba, db1, site, settings
):
    """db1 archives into the site's repository, not this one: stanza-create works, `check`
    waits for its WAL segment in vain (BACKUPS_CHECK_ARCHIVE_TIMEOUT, 3 s here instead of
    30), and the directory made for it is removed."""
    settings.BACKUPS_CHECK_ARCHIVE_TIMEOUT = 3
    parent, _repo, _instance, _original = site
    other = str(parent / "not-archived")
    client.force_login(dba)
    response = client.post(reverse("backups:catalog_create"),
                           _form(db1.cluster, [db1], path=other))  # fmt: skip
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["stanza"]
    message = errors["stanza"][0]
    assert message.startswith("pgBackRest check on db1: WAL was not archived in time")
    assert message.endswith(
        f"stopped. The server must archive its WAL into this repository (archive_command: "
        f"pgbackrest --stanza={STANZA} --repo1-path={other} archive-push %p)."
    )
    assert not BackupCatalog.objects.exists() and not Path(other).exists()
