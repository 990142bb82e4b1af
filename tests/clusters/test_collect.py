"""The monitoring collector against the lab: one cycle over the demo clusters, a hanging node
that does not delay the others, the log cursor, retention; and the must-show of issue 4: db2's
PostgreSQL stopped makes lab-pg degraded with "no sync standby" within two cycles, and healthy
again once it is back."""

import os
import time
from datetime import timedelta

import psycopg
import pytest
from django.test import override_settings
from django.utils import timezone

from clusters import registration
from clusters.collect import collect_cycle
from clusters.collect_store import rollup_and_prune
from clusters.health import DEGRADED, HEALTHY, health_of_clusters
from clusters.models import Cluster, Node, NodeStatus, Sample, SampleRollup
from clusters.tasks import collect as collect_task
from clusters.tasks import collect_all
from console import jobs
from console.lab import faults
from console.lab.demo import register_demo
from console.lab.parts import pgha, pgpool
from console.lab.proc import LabError
from console.models import AuditEntry, Job
from tests.factories import make_job
from tests.lab.ha import ha_from_env

pytestmark = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions


@pytest.fixture
def demo(lab_env) -> list[Node]:
    """The lab registered as in `lab up --demo`, with its facts (data directory, log) read."""
    register_demo({**os.environ, **lab_env})
    for cluster in Cluster.objects.all():
        registration.rediscover_cluster(cluster)
    return list(Node.objects.exclude(service=Node.Service.NONE))


def _health(name: str):
    cluster = Cluster.objects.get(name=name)
    return health_of_clusters([cluster])[cluster.pk]


def test_a_cycle_records_every_lab_server_up_with_samples(demo):
    result = collect_cycle(demo)
    assert result.up == ["db1", "db2", "lb1", "my1"] and result.timed_out == []
    statuses = {s.node.name: s for s in NodeStatus.objects.select_related("node")}
    assert {n: s.state for n, s in statuses.items()} == dict.fromkeys(result.up, "up")
    assert (statuses["db1"].role_seen, statuses["db2"].role_seen) == ("primary", "standby")
    ups = Sample.objects.filter(metric="up", value=1.0).values_list("node__name", flat=True)
    assert sorted(ups) == result.up
    assert Sample.objects.filter(node__name="db1", metric="connections.total").exists()


def test_a_standby_gets_its_replication_state_from_the_primary(demo):
    collect_cycle(demo)
    db2 = NodeStatus.objects.get(node__name="db2")
    assert (db2.replication_state, db2.sync_state) == ("streaming", "sync")
    assert db2.replay_lag_bytes is not None and db2.replay_lag_bytes >= 0
    assert Sample.objects.filter(node__name="db2", metric="replication.replay_lag_bytes").exists()


def test_the_lab_clusters_are_healthy_after_a_cycle(demo):
    collect_cycle(demo)
    pg = _health("lab-pg")
    assert (pg.state, pg.reasons, pg.standbys_in_sync) == (HEALTHY, [], 1)
    assert _health("lab-mariadb").state == HEALTHY


def test_pgpool_backends_are_read_through_lb1(demo):
    collect_cycle(demo)
    lb1 = NodeStatus.objects.get(node__name="lb1")
    assert [b["status"] in ("up", "waiting") for b in lb1.details["backends"]] == [True, True]


def test_every_remote_call_of_a_cycle_is_audited(demo):
    collect_cycle(demo)
    entries = AuditEntry.objects.filter(action__startswith="remote.")
    assert {e.node for e in entries} >= {"db1", "db2", "lb1", "my1"}
    started = entries.filter(status=AuditEntry.Status.STARTED).count()
    assert started and started == entries.exclude(status=AuditEntry.Status.STARTED).count()


@override_settings(EXECUTOR_CONNECT_TIMEOUT=30)
def test_a_server_that_never_answers_does_not_delay_the_others(demo, silent_port):
    db1 = Node.objects.get(name="db1")
    hung = Node.objects.create(
        name="hung", service=Node.Service.POSTGRESQL, role=Node.Role.STANDBY,
        address="127.0.0.1", db_port=silent_port, known_hosts="",
        db_credential=db1.db_credential,
    )  # fmt: skip
    result = collect_cycle([*demo, hung], timeout_per_node=2)
    assert result.timed_out == ["hung"]
    assert result.duration_s < 2 + 2 + 1.5  # the node's deadline and grace, not the 30 s
    assert result.up == ["db1", "db2", "lb1", "my1"]
    assert max(r.poll_ms for r in result.results.values() if r.name != "hung") < 2000
    status = NodeStatus.objects.get(node=hung)
    assert (status.state, status.error) == ("down", "no answer within 2 s")


def test_the_log_cursor_starts_at_the_end_and_then_counts_a_failed_login(demo, lab_env):
    db1 = Node.objects.filter(name="db1")
    collect_cycle(db1, disk=False)
    first = NodeStatus.objects.get(node__name="db1")
    assert first.log_inode is not None and first.log_auth_failures == 0
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host=lab_env["LAB_PG_HOST"], port=lab_env["LAB_PG_PORT"], user="postgres",
            password="wrong", dbname="postgres", connect_timeout=5,
        )  # fmt: skip
    deadline = time.monotonic() + 15
    status = first
    while status.log_auth_failures == 0 and time.monotonic() < deadline:
        collect_cycle(db1, disk=False)
        status = NodeStatus.objects.get(node__name="db1")
    assert status.log_auth_failures >= 1 and status.log_fatals >= 1
    assert status.log_offset > first.log_offset
    assert Sample.objects.filter(node__name="db1", metric="log.auth_failure", value__gte=1).exists()


def test_the_data_directory_disk_use_is_read_on_the_first_cycle(demo):
    collect_cycle(demo)
    for name in ("db1", "db2", "my1"):
        percent = NodeStatus.objects.get(node__name=name).disk_used_percent
        assert percent is not None and 0 < percent <= 100


def test_the_collect_job_runs_a_cycle_and_reports_it(demo):
    job = make_job(kind="clusters.collect")
    assert jobs.run_job(job.pk, collect_task.body) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.result["nodes"] == 4 and job.result["up"] == 4
    assert AuditEntry.objects.filter(job_id=job.pk, node="db1").exists()


def test_the_beat_does_not_enqueue_a_cycle_while_one_is_pending(db):
    make_job(kind="clusters.collect", status=Job.Status.RUNNING)
    collect_all()
    assert Job.objects.filter(kind="clusters.collect").count() == 1


@override_settings(CLUSTERS_SAMPLE_RAW_DAYS=7)
def test_rolling_up_again_merges_late_samples_into_their_hour(demo):
    node, now = demo[0], timezone.now()
    hour = (now - timedelta(days=9)).replace(minute=0, second=0, microsecond=0)
    Sample.objects.create(node=node, metric="m", ts=hour + timedelta(minutes=5), value=1.0)
    rollup_and_prune(now)
    Sample.objects.create(node=node, metric="m", ts=hour + timedelta(minutes=50), value=7.0)
    rollup_and_prune(now)
    rollup = SampleRollup.objects.get()
    assert (rollup.min, rollup.max, rollup.avg, rollup.count) == (1, 7, 4, 2)
    assert not Sample.objects.filter(metric="m").exists()


@override_settings(CLUSTERS_SAMPLE_RAW_DAYS=7, CLUSTERS_SAMPLE_ROLLUP_DAYS=90)
def test_old_samples_are_rolled_up_into_hours_then_deleted(demo):
    node, now = demo[0], timezone.now()
    hour = (now - timedelta(days=8)).replace(minute=0, second=0, microsecond=0)
    for minute, value in ((1, 2.0), (20, 4.0), (40, 9.0)):
        Sample.objects.create(
            node=node, metric="m", ts=hour + timedelta(minutes=minute), value=value
        )
    recent = Sample.objects.create(node=node, metric="m", ts=now - timedelta(days=1), value=1.0)
    SampleRollup.objects.create(node=node, metric="m", hour=now - timedelta(days=91),
                                min=0, max=0, avg=0, count=1)  # fmt: skip
    assert rollup_and_prune(now) == {"hours_rolled": 1, "samples_deleted": 3, "rollups_expired": 1}
    rollup = SampleRollup.objects.get()
    assert (rollup.hour, rollup.min, rollup.max, rollup.avg, rollup.count) == (hour, 2, 9, 5, 3)
    assert list(Sample.objects.filter(metric="m")) == [recent]


# --- the must-show: a standby stopped, then started ----------------------------------------------


@pytest.fixture
def db2_stopped_then_restored(lab, lab_env):
    """Stops nothing itself; afterwards db2 runs again, streams in sync, and pgpool has it
    attached (the HA parts are rebuilt if they do not get there)."""
    ha = ha_from_env(lab_env, lab)
    yield ha
    try:
        faults.start_server(lab, "standby")
        pgha.wait_for_sync(ha.primary, timeout=30)
        _attach_standby_in_pgpool(ha)
    except LabError:
        ha.rebuild()


def _attach_standby_in_pgpool(ha) -> None:
    part, rec = ha.lab.parts["pgpool"], ha.lab.load()["parts"]["pgpool"]
    if pgpool.pcp_nodes(part, rec)[1]["status"] == "down":
        part.pcp(rec, "attach_node", "-n", "1")
    pgpool.wait_for_pool_nodes(ha.pool, pgpool.NORMAL_NODES, timeout=30)


def _cycles_until(nodes, state: str, cycles: int = 2):
    """Run up to `cycles` collection cycles; return the cluster's health after the first one
    that shows `state` (or after the last)."""
    for _ in range(cycles):
        collect_cycle(nodes, disk=False)
        health = _health("lab-pg")
        if health.state == state:
            break
    return health


def test_db2_stopped_degrades_lab_pg_with_no_sync_standby_and_back_to_healthy(
    demo, db2_stopped_then_restored
):
    ha = db2_stopped_then_restored
    assert _cycles_until(demo, HEALTHY, cycles=1).state == HEALTHY
    faults.stop_server(ha.lab, "standby")
    degraded = _cycles_until(demo, DEGRADED)
    assert degraded.state == DEGRADED
    assert "no sync standby" in degraded.reasons and "standby db2 is down" in degraded.reasons
    assert NodeStatus.objects.get(node__name="db2").state == "down"

    faults.start_server(ha.lab, "standby")
    pgha.wait_for_sync(ha.primary, timeout=30)
    _attach_standby_in_pgpool(ha)  # pgpool detached it; a DBA attaches it again
    healthy = _cycles_until(demo, HEALTHY)
    assert (healthy.state, healthy.reasons, healthy.standbys_in_sync) == (HEALTHY, [], 1)
