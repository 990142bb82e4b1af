"""The assurance page and its buttons: who reads, who acts, bad input refused naming the field
with nothing changed, another cluster's policy not found, wrong methods refused. The lab
behaviour of the jobs these buttons queue is in test_assurance.py."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from backups import assurance
from backups.models import ArchiveCheck, BackupCatalog, BackupRun, RestoreRun, TestRestorePolicy
from clusters.models import Node
from console import audit
from console.models import AuditEntry, Job
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(dba):
    cluster = factories.make_monitored_cluster("as1")
    db1 = Node.objects.get(name="as1-db1")
    catalog = BackupCatalog.objects.create(cluster=cluster, name="repo", engine="pgbackrest",
                                           path="/srv/repo", stanza="main")  # fmt: skip
    catalog.nodes.add(db1)
    policy = assurance.save_test_restore_policy(TestRestorePolicy(
        cluster=cluster, catalog=catalog, node=db1, data_directory="/srv/scratch", port=5433,
        schedule="0 4 * * 0", check_query="SELECT count(*) FROM pg_class"), actor=dba)  # fmt: skip
    return cluster, catalog, db1, policy


def _page(cluster):
    return reverse("backups:assurance", args=[cluster.pk])


def test_a_manager_reads_the_page_with_rpo_and_test_restore_durations_but_no_buttons(
    client, manager, setup
):
    cluster, catalog, db1, policy = setup
    now = timezone.now()
    run = BackupRun.objects.create(catalog=catalog, cluster=cluster, mode="full", status="ok",
                                   backup_id="20261126-015235F", started=now - timedelta(hours=2),
                                   ended=now - timedelta(hours=2))  # fmt: skip
    RestoreRun.objects.create(cluster=cluster, catalog=catalog, target_node=db1, backup=run,
                              test_restore=True, status="succeeded", started=now,
                              ended=now, duration=timedelta(seconds=12.34),
                              check_result="7", check_ok=True)  # fmt: skip
    ArchiveCheck.objects.create(cluster=cluster, catalog=catalog, backup=run, continuous=True,
                                first_segment="00000001000000000000000A",
                                last_segment="00000001000000000000000F",
                                restorable_to=now - timedelta(minutes=7))  # fmt: skip
    client.force_login(manager)
    page = client.get(_page(cluster))
    assert page.status_code == 200
    body = page.content.decode()
    assert "12.3 s" in body and "continuous" in body and "20261126-015235F" in body
    assert 'id="rpo">7\xa0minutes' in body
    assert "Test restore now" not in body and "Schedule a test restore" not in body
    assert client.post(reverse("backups:test_restore_now", args=[cluster.pk, policy.pk])
                       ).status_code == 403  # fmt: skip
    assert client.post(reverse("backups:archive_check_now", args=[cluster.pk])).status_code == 403
    assert not Job.objects.exists()


def test_a_dba_starts_a_test_restore_once_and_the_page_says_so(client, dba, setup):
    cluster, _catalog, _db1, policy = setup
    client.force_login(dba)
    assert "Test restore now" in client.get(_page(cluster)).content.decode()
    url = reverse("backups:test_restore_now", args=[cluster.pk, policy.pk])
    assert client.get(url).status_code == 405
    response = client.post(url, follow=True)
    job = Job.objects.get(kind="backups.test_restore")
    assert f"job {job.pk}" in response.content.decode() and job.params == {"policy": policy.pk}
    again = client.post(url, follow=True).content.decode()
    assert "already queued or running" in again and Job.objects.count() == 1
    entry = AuditEntry.objects.get(action=audit.BACKUP_TEST_RESTORE_START)
    assert (entry.actor, entry.job_id) == (dba, job.pk)


def test_another_clusters_policy_is_not_found_and_outsiders_see_nothing(
    client, dba, outsider, setup
):
    cluster, _catalog, _db1, policy = setup
    other = factories.make_monitored_cluster("as2")
    client.force_login(dba)
    assert client.post(reverse("backups:test_restore_now", args=[other.pk, policy.pk])
                       ).status_code == 404  # fmt: skip
    assert client.get(reverse("backups:assurance", args=[999999])).status_code == 404
    client.force_login(outsider)
    assert client.get(_page(cluster)).status_code == 403


def test_a_bad_schedule_or_directory_is_refused_naming_the_field_and_nothing_changes(
    client, dba, setup
):
    cluster, catalog, db1, policy = setup
    client.force_login(dba)
    url = reverse("backups:test_restore_policy_edit", args=[cluster.pk, policy.pk])
    entries = AuditEntry.objects.count()
    form = {"catalog": catalog.pk, "node": db1.pk, "data_directory": "/srv/scratch; rm -rf /",
            "port": 5432, "schedule": "61 * * * *", "check_query": "", "enabled": "on"}  # fmt: skip
    page = client.post(url, form)
    assert page.status_code == 200
    errors = page.context["form"].errors
    assert "Not a valid cron schedule" in errors["schedule"][0]
    assert "Letters, digits" in errors["data_directory"][0]
    assert "own server listens on 5432" in errors["port"][0]
    assert "check_query" in errors
    policy.refresh_from_db()
    assert (policy.schedule, policy.data_directory, policy.port) == (
        "0 4 * * 0", "/srv/scratch", 5433)  # fmt: skip
    assert AuditEntry.objects.count() == entries

    form.update(data_directory="/srv/scratch2", port=5434, schedule="15 2 * * *",
                check_query="SELECT 1")  # fmt: skip
    assert client.post(url, form).status_code == 302
    task = PeriodicTask.objects.get(name=policy.periodic_task_name)
    assert (task.crontab.minute, task.crontab.hour, task.enabled) == ("15", "2", True)
    form.pop("enabled")
    client.post(url, form)
    assert not PeriodicTask.objects.get(name=policy.periodic_task_name).enabled
    changes = AuditEntry.objects.filter(action=audit.BACKUP_TEST_RESTORE_POLICY)
    assert changes.count() == 3  # created, changed, disabled
    client.post(url, form)  # unchanged: nothing written
    assert changes.count() == 3

    delete = reverse("backups:test_restore_policy_delete", args=[cluster.pk, policy.pk])
    assert client.post(delete).status_code == 302
    assert not TestRestorePolicy.objects.exists() and not PeriodicTask.objects.filter(
        name=policy.periodic_task_name).exists()  # fmt: skip
    assert client.post(delete).status_code == 404  # gone: safe to retry, nothing to do


def test_a_catalog_the_host_does_not_see_is_refused(dba, setup):
    cluster, catalog, _db1, _policy = setup
    db2 = Node.objects.get(name="as1-db2")
    with pytest.raises(ValidationError, match="does not see the repository"):
        assurance.save_test_restore_policy(TestRestorePolicy(
            cluster=cluster, catalog=catalog, node=db2, data_directory="/srv/other", port=5433,
            schedule="0 4 * * *", check_query="SELECT 1"), actor=dba)  # fmt: skip


def test_a_failed_test_restore_and_an_archive_gap_raise_alerts_and_mail_until_they_are_gone(
    dba, setup, mailoutbox
):
    from clusters import alerts
    from clusters.models import Alert, AlertRule

    cluster, catalog, db1, _policy = setup
    AlertRule.objects.filter(key__in=[assurance.TEST_RESTORE_RULE, assurance.ARCHIVE_RULE]
                             ).update(email_to="dba-team@example.com")  # fmt: skip
    now = timezone.now()
    restore = dict(cluster=cluster, catalog=catalog, target_node=db1, test_restore=True)
    failed = 'the check query failed: relation "t" does not exist'
    RestoreRun.objects.create(**restore, status="failed", started=now, ended=now, message=failed)
    ArchiveCheck.objects.create(cluster=cluster, catalog=catalog, continuous=False,
                                first_gap="00000001000000000000000C", missing=1,
                                restorable_to=now, message="1 segment(s) missing")  # fmt: skip
    alerts.evaluate(now=now)
    firing = {a.rule.key: a for a in Alert.objects.filter(state="firing", cluster=cluster)}
    assert firing[assurance.TEST_RESTORE_RULE].severity == "critical"
    assert 'relation "t" does not exist' in firing[assurance.TEST_RESTORE_RULE].message
    assert (firing[assurance.ARCHIVE_RULE].severity, firing[assurance.ARCHIVE_RULE].message) == (
        "warning", "1 segment(s) missing")  # fmt: skip
    assert any("Test restore failed" in m.subject for m in mailoutbox)

    later = now + timedelta(minutes=5)
    RestoreRun.objects.create(**restore, status="succeeded", started=later, ended=later)
    ArchiveCheck.objects.create(cluster=cluster, catalog=catalog, continuous=True,
                                checked_at=later, restorable_to=later)  # fmt: skip
    alerts.evaluate(now=later)
    assert not Alert.objects.filter(state="firing", cluster=cluster).exists()


def test_a_privileged_port_is_refused(dba, setup):
    cluster, catalog, db1, _policy = setup
    with pytest.raises(ValidationError, match="above 1023"):
        assurance.save_test_restore_policy(TestRestorePolicy(
            cluster=cluster, catalog=catalog, node=db1, data_directory="/srv/other", port=80,
            schedule="0 4 * * *", check_query="SELECT 1"), actor=dba)  # fmt: skip
