"""The restore wizard's pages without a lab: who may open them, each step's validation (a clear
message on the field, nothing queued), wrong methods, unknown restores. The plan page and the
queued restore against real servers are in test_restore_lab.py and
tests/e2e/test_restore_wizard.py."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from backups.models import BackupCatalog, BackupRun, RestoreDetail, RestoreRun
from clusters.models import Node
from console.models import Job
from tests import factories

WIZARD = "backups:restore_wizard"


@pytest.fixture
def setup(db):
    cluster = factories.make_monitored_cluster("wiz-pg")
    catalog = BackupCatalog.objects.create(
        cluster=cluster, name="repo", engine="pgbackrest", path="/srv/repo", stanza="main"
    )
    ended = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    BackupRun.objects.create(
        catalog=catalog,
        cluster=cluster,
        mode="full",
        status="ok",
        backup_id="20261126-005900F",
        started=ended,
        ended=ended,
    )
    BackupRun.objects.create(
        catalog=catalog,
        cluster=cluster,
        mode="full",
        status="corrupt",
        backup_id="20261126-015900F",
        started=ended,
        ended=ended,
    )
    bare = Node.objects.create(
        name="wiz-bare", service="none", address="192.0.2.20", known_hosts="x"
    )
    return cluster, catalog, bare


def _steps(cluster, catalog, bare, **changes):
    data = {
        "cluster": cluster.pk,
        "catalog": catalog.pk,
        "target_node": bare.pk,
        "data_directory": "/srv/clone",
        "port": "5433",
        "target_kind": "time",
        "target_value": "2026-11-26 02:00:00",
        "target_action": "promote",
        "check_query": "SELECT 1",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_only_dbas_open_the_wizard(client, setup, manager, helpdesk, auditor):
    for user in (manager, helpdesk, auditor):
        client.force_login(user)
        assert client.get(reverse(WIZARD)).status_code == 403
        assert client.post(reverse("backups:restore_start"), {}).status_code == 403


def test_step_one_lists_clusters_with_a_catalog(client, dba, setup):
    cluster, _catalog, _bare = setup
    factories.make_monitored_cluster("wiz-no-catalog")
    client.force_login(dba)
    page = client.get(reverse(WIZARD)).content.decode()
    assert "Step 1" in page and "wiz-pg" in page and "wiz-no-catalog" not in page


@pytest.mark.parametrize(
    ("changes", "step", "words"),
    [
        ({"target_value": "2026-11-31 10:00:00"}, "Step 3", "not a real date and time"),
        ({"target_value": "soon"}, "Step 3", "expected a time as YYYY-MM-DD HH:MM:SS"),
        ({"target_kind": "xid", "target_value": "-4"}, "Step 3", "must be between 1"),
        ({"target_value": "2026-11-26 00:00:00"}, "Step 3", "no usable backup ended before"),
        ({"data_directory": "/srv/clone;rm"}, "Step 2", "an absolute path of letters"),
        ({"port": "80"}, "Step 2", "greater than or equal to 1024"),
        ({"port": None}, "Step 2", "must be a whole number"),
        ({"target_node": "999999"}, "Step 2", "Select a valid choice"),
    ],
)
def test_bad_input_names_the_field_and_queues_nothing(client, dba, setup, changes, step, words):
    client.force_login(dba)
    response = client.get(reverse(WIZARD), _steps(*setup, **changes))
    page = response.content.decode()
    assert response.status_code == 200 and step in page
    assert words in page and 'aria-invalid="true"' in page
    response = client.post(
        reverse("backups:restore_start"), {**_steps(*setup, **changes), "confirm": "wiz-pg"}
    )
    assert response.status_code == 400 and words in response.content.decode()
    assert not RestoreRun.objects.exists() and not Job.objects.exists()


def test_wrong_methods(client, dba, setup):
    client.force_login(dba)
    assert client.post(reverse(WIZARD)).status_code == 405
    assert client.get(reverse("backups:restore_start")).status_code == 405
    assert client.get(reverse("backups:restore_cleanup", args=[1])).status_code == 405


def test_a_restore_page_shows_its_plan_and_follow_ups_and_unknown_ones_are_404(
    client, dba, manager, setup
):
    cluster, catalog, bare = setup
    backup = BackupRun.objects.get(status="ok")
    run = RestoreRun.objects.create(
        cluster=cluster,
        catalog=catalog,
        target_node=bare,
        target_data_directory="/srv/clone",
        backup=backup,
        status="succeeded",
        check_query="SELECT 1",
        check_result="1",
        check_ok=True,
    )
    RestoreDetail.objects.create(
        restore=run,
        port=5433,
        wal_first="000000010000000000000005",
        wal_until="the end of the archived WAL",
        command="pgbackrest …",
        prechecks=[{"name": "server_stopped", "ok": True, "detail": "no server"}],
    )
    client.force_login(manager)  # managers read restores; they start nothing
    page = client.get(reverse("backups:restore_detail", args=[run.pk])).content.decode()
    assert "20261126-005900F" in page and "000000010000000000000005" in page
    assert "Remove the recovery settings" in page and "<form" not in page.split("Follow-ups")[1]
    assert client.post(reverse("backups:restore_cleanup", args=[run.pk])).status_code == 403
    client.force_login(dba)
    page = client.get(reverse("backups:restore_detail", args=[run.pk])).content.decode()
    assert reverse("backups:restore_cleanup", args=[run.pk]) in page
    assert reverse("backups:restore_full_backup", args=[run.pk]) in page
    assert client.get(reverse("backups:restore_detail", args=[run.pk + 99])).status_code == 404
