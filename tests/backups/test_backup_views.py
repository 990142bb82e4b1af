"""The backups overview and policy pages: DBAs create, edit, enable, disable and delete policies
(with a typed confirmation) and start a backup now; managers and auditors read; others get 403.
Each change goes through backups.schedule's actions (so the PeriodicTask follows); bad input is
a form error naming the field and changes nothing."""

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from backups import schedule
from backups.models import BackupCatalog, BackupPolicy, BackupRun
from console import audit
from console.models import AuditEntry, Job
from tests import factories


@pytest.fixture
def catalog(db):
    cluster = factories.make_monitored_cluster("bk-views")
    return BackupCatalog.objects.create(cluster=cluster, name="repo", engine="pgbackrest",
                                        path="/srv/repo", stanza="main")  # fmt: skip


@pytest.fixture
def policy(catalog, dba):
    return schedule.create_policy(BackupPolicy(catalog=catalog, name="nightly", mode="incr",
                                               schedule="0 1 * * *"), actor=dba)  # fmt: skip


def form(catalog_, **values) -> dict:
    data = {"catalog": catalog_.pk, "name": "weekly", "schedule": "0 2 * * 0", "mode": "full",
            "source_node": ""}  # fmt: skip
    data.update(values)
    return data


def test_the_overview_lists_policies_with_their_next_run_and_the_latest_runs(
    client, dba, policy, catalog
):
    run = BackupRun.objects.create(catalog=catalog, cluster=catalog.cluster, mode="full",
                                   status="ok", backup_id="20261126-010000F",
                                   policy=policy)  # fmt: skip
    client.force_login(dba)
    page = client.get(reverse("backups:overview")).content.decode()
    assert "nightly" in page and "<code>0 1 * * *</code>" in page
    next_run = schedule.next_run(policy)
    assert f"{next_run:%Y-%m-%d %H:%M}" in page
    assert "20261126-010000F" in page and "Back up now" in page and "New policy" in page
    row = page.split('id="policy-', 1)[1].split("</tr>", 1)[0]
    assert reverse("backups:run_detail", args=[run.pk]) in row and "OK" in row  # its last run
    assert reverse("backups:overview") in page  # the menu entry


def test_managers_read_the_pages_without_any_button_and_outsiders_get_403(
    client, manager, outsider, policy
):
    client.force_login(manager)
    page = client.get(reverse("backups:overview")).content.decode()
    assert "nightly" in page and "Back up now" not in page and "New policy" not in page
    for name in ("policy_create", "policy_edit", "policy_delete"):
        args = [policy.pk] if name != "policy_create" else []
        assert client.get(reverse(f"backups:{name}", args=args)).status_code == 403
    for name in ("policy_disable", "policy_backup_now"):
        assert client.post(reverse(f"backups:{name}", args=[policy.pk])).status_code == 403
    assert client.post(reverse("backups:policy_create"), {}).status_code == 403
    client.force_login(outsider)
    assert client.get(reverse("backups:overview")).status_code == 403
    assert client.get(reverse("backups:run_list")).status_code == 403
    policy.refresh_from_db()
    assert policy.enabled and not BackupRun.objects.exists()


def test_a_bad_cron_is_a_form_error_on_the_schedule_and_nothing_is_saved(client, dba, catalog):
    client.force_login(dba)
    response = client.post(reverse("backups:policy_create"), form(catalog, schedule="0 26 * * *"))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["schedule"] and "Not a valid cron schedule" in errors["schedule"][0]
    assert not BackupPolicy.objects.exists() and not PeriodicTask.objects.filter(
        task=schedule.TASK).exists()  # fmt: skip
    assert not AuditEntry.objects.filter(action=audit.BACKUP_POLICY_CREATED).exists()
    # A mode the engine does not take: an error on the mode.
    response = client.post(reverse("backups:policy_create"), form(catalog, mode="incremental"))
    assert list(response.context["form"].errors) == ["mode"]
    # pgBackRest from a standby: refused on the source node.
    standby = catalog.cluster.nodes.get(role="standby")
    response = client.post(reverse("backups:policy_create"), form(catalog, source_node=standby.pk))
    assert "pgBackRest backups on the primary" in response.context["form"].errors["source_node"][0]
    assert not BackupPolicy.objects.exists()


def test_a_dba_creates_a_policy_and_its_periodic_task(client, dba, catalog):
    client.force_login(dba)
    response = client.post(reverse("backups:policy_create"), form(catalog, retention_full="2"))
    assert response.status_code == 302 and response.url == reverse("backups:overview")
    policy = BackupPolicy.objects.get()
    assert (policy.name, policy.schedule, policy.mode, policy.retention_full) == (
        "weekly", "0 2 * * 0", "full", 2)  # fmt: skip
    assert PeriodicTask.objects.get(name=schedule.task_name(policy)).enabled
    assert AuditEntry.objects.get(action=audit.BACKUP_POLICY_CREATED).actor == dba
    assert client.put(reverse("backups:policy_create")).status_code == 405


def test_editing_a_policy_changes_its_task_and_a_bad_value_changes_nothing(client, dba, policy):
    client.force_login(dba)
    url = reverse("backups:policy_edit", args=[policy.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, form(policy.catalog, name="nightly", schedule="61 1 * * *",
                                      mode="incr"))  # fmt: skip
    assert list(response.context["form"].errors) == ["schedule"]
    policy.refresh_from_db()
    assert policy.schedule == "0 1 * * *"
    primary = policy.catalog.cluster.nodes.get(role="primary")
    response = client.post(url, form(policy.catalog, name="nightly", schedule="15 1 * * *",
                                      mode="incr", catalog="", source_node=primary.pk))  # fmt: skip
    assert response.status_code == 302
    policy.refresh_from_db()
    task = PeriodicTask.objects.get(name=schedule.task_name(policy))
    assert policy.schedule == "15 1 * * *" and task.crontab.minute == "15"
    assert policy.source_node == primary
    assert "schedule: 0 1 * * * -> 15 1 * * *" in AuditEntry.objects.get(
        action=audit.BACKUP_POLICY_CHANGED).output  # fmt: skip
    assert client.get(reverse("backups:policy_edit", args=[policy.pk + 99])).status_code == 404


def test_disable_enable_and_delete_with_a_typed_confirmation(client, dba, policy):
    client.force_login(dba)
    assert client.get(reverse("backups:policy_disable", args=[policy.pk])).status_code == 405
    client.post(reverse("backups:policy_disable", args=[policy.pk]))
    assert not PeriodicTask.objects.get(name=schedule.task_name(policy)).enabled
    client.post(reverse("backups:policy_enable", args=[policy.pk]))
    assert PeriodicTask.objects.get(name=schedule.task_name(policy)).enabled
    url = reverse("backups:policy_delete", args=[policy.pk])
    assert "Type the policy" in client.get(url).content.decode()
    page = client.post(url, {"confirm_name": "nightl"}).content.decode()
    assert "Type the policy&#x27;s name, nightly, to delete it." in page
    assert BackupPolicy.objects.filter(pk=policy.pk).exists()
    assert client.post(url, {"confirm_name": "nightly"}).status_code == 302
    assert not BackupPolicy.objects.exists()
    assert not PeriodicTask.objects.filter(name=schedule.task_name(policy)).exists()
    assert client.post(url, {"confirm_name": "nightly"}).status_code == 404  # gone


def test_back_up_now_queues_the_policys_run_and_a_second_is_refused(client, dba, policy):
    client.force_login(dba)
    url = reverse("backups:policy_backup_now", args=[policy.pk])
    response = client.post(url)
    run = BackupRun.objects.get()
    assert response.url == reverse("backups:run_detail", args=[run.pk])
    assert (run.policy, run.mode, run.status) == (policy, "incr", "pending")
    page = client.get(response.url).content.decode()
    assert reverse("job_detail", args=[run.job_id]) in page and "pending" in page
    refused = client.post(url, follow=True).content.decode()
    assert "already queued or running; one at a time" in refused
    assert BackupRun.objects.count() == 1 and Job.objects.count() == 1
    assert client.get(reverse("backups:run_list")).status_code == 200
    assert client.get(reverse("backups:run_detail", args=[run.pk + 99])).status_code == 404
