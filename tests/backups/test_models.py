"""Backup models: what a catalog, a policy, a run and a restore accept, the one-active-run rule,
`usable`, the report's index, and who may see them."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from backups.models import (
    BackupCatalog,
    BackupPolicy,
    BackupRun,
    RestoreRun,
    RunStatus,
    validate_cron,
)
from clusters.models import Cluster, Node
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster():
    return factories.make_monitored_cluster("bk-models")


@pytest.fixture
def catalog(cluster):
    return BackupCatalog.objects.create(
        cluster=cluster, name="main", engine="pg_rman", path="/mnt/backup/bk-models",
        arclog_path="/var/lib/postgresql/archive",
    )  # fmt: skip


def make_run(catalog, **fields) -> BackupRun:
    fields.setdefault("mode", "full")
    return BackupRun.objects.create(catalog=catalog, cluster=catalog.cluster, **fields)


@pytest.mark.parametrize(
    "schedule", ["0 2 * * 0", "*/15 * * * *", "30 1 1,15 * *", "0 3 * * 1-5", "0 0 1 1 *"]
)
def test_valid_cron_schedules_are_accepted(schedule):
    validate_cron(schedule)


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("0 2 * *", "five cron fields"),
        ("every sunday", "five cron fields"),
        ("61 2 * * 0", "Not a valid cron schedule"),
        ("0 25 * * *", "Not a valid cron schedule"),
        ("0 2 * * 9", "Not a valid cron schedule"),
        ("0 2 5-1 * *", "Not a valid cron schedule"),
        ("0 2 * 13 *", "Not a valid cron schedule"),
    ],
)
def test_invalid_cron_schedules_are_refused_with_a_clear_message(schedule, words):
    with pytest.raises(ValidationError) as caught:
        validate_cron(schedule)
    assert words in caught.value.messages[0]


def test_a_policy_with_a_bad_schedule_names_the_field(catalog):
    policy = BackupPolicy(catalog=catalog, name="weekly", schedule="0 2 * * 8", mode="full")
    with pytest.raises(ValidationError) as caught:
        policy.full_clean()
    assert set(caught.value.message_dict) == {"schedule"}


def test_a_pg_rman_policy_takes_pg_rman_modes_and_retention_only(catalog):
    ok = BackupPolicy(catalog=catalog, name="daily", schedule="0 1 * * *", mode="incremental",
                      keep_data_generations=2, keep_arclog_days=7, with_serverlog=True)  # fmt: skip
    ok.full_clean()
    bad = BackupPolicy(catalog=catalog, name="x", schedule="0 1 * * *", mode="diff",
                       retention_full=2, keep_srvlog_files=0)  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        bad.full_clean()
    errors = caught.value.message_dict
    assert errors["mode"] == ["pg_rman takes full, incremental, archive backups."]
    assert errors["retention_full"] == ["Not a pg_rman retention setting."]
    assert errors["keep_srvlog_files"] == ["Keep at least 1, or leave it empty."]


def test_a_pgbackrest_policy_refuses_pg_rman_settings(cluster):
    repo = BackupCatalog.objects.create(cluster=cluster, name="repo", engine="pgbackrest",
                                        path="/var/lib/pgbackrest", stanza="main")  # fmt: skip
    policy = BackupPolicy(catalog=repo, name="d", schedule="0 1 * * *", mode="incremental",
                          keep_data_days=3, with_serverlog=True)  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        policy.full_clean()
    assert set(caught.value.message_dict) == {"mode", "keep_data_days", "with_serverlog"}
    BackupPolicy(catalog=repo, name="d", schedule="0 1 * * *", mode="diff",
                 retention_full=2).full_clean()  # fmt: skip


def test_a_policy_source_node_belongs_to_the_cluster(catalog):
    other = factories.make_monitored_cluster("bk-other")
    stranger = Node.objects.get(name="bk-other-db2")
    policy = BackupPolicy(catalog=catalog, name="s", schedule="0 1 * * *", mode="full",
                          source_node=stranger)  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        policy.full_clean()
    assert "source_node" in caught.value.message_dict
    policy.source_node = Node.objects.get(name="bk-models-db2")  # the standby: allowed
    policy.full_clean()
    assert other.pk != catalog.cluster_id


def test_catalog_paths_must_be_absolute_and_engine_settings_match(cluster):
    catalog = BackupCatalog(cluster=cluster, name="c", engine="pg_rman", path="backup",
                            srvlog_path="log", stanza="main", time_zone="Mars/Olympus")  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        catalog.full_clean()
    errors = caught.value.message_dict
    assert set(errors) == {"path", "srvlog_path", "stanza", "arclog_path", "time_zone"}
    assert "absolute path" in errors["path"][0]


def test_only_an_ok_run_is_usable(catalog):
    usable = {status: make_run(catalog, status=status, found_outside_console=True).usable
              for status in RunStatus.values}  # fmt: skip
    assert [s for s, u in usable.items() if u] == ["ok"]


def test_one_active_console_run_per_cluster(catalog):
    make_run(catalog, status=RunStatus.RUNNING)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_run(catalog, status=RunStatus.PENDING)
    # a backup found running in the catalog (started elsewhere) does not block, nor do ended runs
    make_run(catalog, status=RunStatus.RUNNING, found_outside_console=True, backup_id="x")
    make_run(catalog, status=RunStatus.OK)
    make_run(catalog, status=RunStatus.FAILED)
    other = BackupCatalog.objects.create(
        cluster=factories.make_monitored_cluster("bk-other"), name="main", engine="pg_rman",
        path="/b", arclog_path="/a",
    )  # fmt: skip
    make_run(other, status=RunStatus.RUNNING)  # another cluster may run at the same time


def test_a_backup_id_is_unique_per_catalog(catalog):
    make_run(catalog, status="ok", backup_id="2026-11-25 20:23:43")
    make_run(catalog, status="failed")
    make_run(catalog, status="failed")  # runs without an id do not collide
    with pytest.raises(IntegrityError), transaction.atomic():
        make_run(catalog, status="ok", backup_id="2026-11-25 20:23:43")


def test_one_active_restore_per_target_node(catalog):
    node = Node.objects.get(name="bk-models-db1")
    RestoreRun.objects.create(cluster=catalog.cluster, catalog=catalog, target_node=node,
                              status="running")  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        RestoreRun.objects.create(cluster=catalog.cluster, catalog=catalog, target_node=node)
    RestoreRun.objects.create(cluster=catalog.cluster, catalog=catalog, target_node=node,
                              status="succeeded")  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "value", "field", "words"),
    [
        ("time", "yesterday-ish", "target_value", "YYYY-MM-DD HH:MM:SS"),
        ("time", "2026-02-30 10:00:00", "target_value", "not a real date"),
        ("time", "", "target_value", "Give a point in time."),
        ("xid", "12a", "target_value", "a transaction id is a positive number."),
        ("timeline", "0", "target_value", "the end of a timeline is a positive number."),
        ("latest", "2026-11-25 20:24:23", "target_value", "The latest point takes no value."),
    ],
)
def test_a_restore_target_is_checked_naming_the_field(catalog, kind, value, field, words):
    restore = RestoreRun(cluster=catalog.cluster, catalog=catalog,
                         target_node=Node.objects.get(name="bk-models-db1"),
                         target_kind=kind, target_value=value)  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        restore.full_clean()
    assert words in caught.value.message_dict[field][0]


def test_restore_targets_that_postgresql_reads_pass(catalog):
    node = Node.objects.get(name="bk-models-db1")
    for kind, value in [("latest", ""), ("time", "2026-11-25 20:24:23"),
                        ("time", "2026-11-25 20:24:23.5+09:00"), ("xid", "733"),
                        ("timeline", "2")]:  # fmt: skip
        RestoreRun(cluster=catalog.cluster, catalog=catalog, target_node=node, target_kind=kind,
                   target_value=value).full_clean()  # fmt: skip


def test_the_latest_usable_run_per_cluster_uses_the_partial_index(catalog):
    now = timezone.now()
    for i in range(30):
        make_run(catalog, status="ok" if i % 3 else "error", started=now - timedelta(hours=i),
                 backup_id=str(i), found_outside_console=True)  # fmt: skip
    latest = (
        BackupRun.objects.filter(status="ok")
        .order_by("cluster_id", "-started")
        .distinct("cluster_id")
    )
    assert [r.backup_id for r in latest] == ["1"]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = latest.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "backups_run_usable_latest" in plan


def test_latest_usable_gives_each_clusters_newest_ok_run_in_one_query(
    catalog, django_assert_num_queries
):
    now = timezone.now()
    other = BackupCatalog.objects.create(
        cluster=factories.make_monitored_cluster("bk-other"), name="main", engine="pg_rman",
        path="/b", arclog_path="/a",
    )  # fmt: skip
    factories.make_monitored_cluster("bk-never")  # no run at all: absent from the result
    for i, status in enumerate(["corrupt", "done", "ok", "ok", "error"]):
        make_run(catalog, status=status, started=now - timedelta(hours=i), backup_id=f"a{i}",
                 found_outside_console=True)  # fmt: skip
    make_run(other, status="ok", started=now - timedelta(days=3), backup_id="b0",
             found_outside_console=True)  # fmt: skip
    with django_assert_num_queries(1):
        latest = {r.cluster.name: r.backup_id for r in
                  BackupRun.objects.latest_usable().select_related("cluster")}  # fmt: skip
    assert latest == {"bk-models": "a2", "bk-other": "b0"}
    only = BackupRun.objects.latest_usable(Cluster.objects.filter(name="bk-other"))
    assert [r.backup_id for r in only] == ["b0"]


def test_personas_see_backups_as_their_role_allows(dba, manager, auditor, helpdesk):
    for user in (dba, manager, auditor):
        assert user.has_perm("backups.view_backuprun")
        assert user.has_perm("backups.view_restorerun")
    assert dba.has_perm("backups.add_backuprun") and dba.has_perm("backups.change_backuppolicy")
    for user in (manager, auditor):
        assert not user.has_perm("backups.add_backuprun")
        assert not user.has_perm("backups.change_backupcatalog")
    assert not helpdesk.has_perm("backups.view_backuprun")
