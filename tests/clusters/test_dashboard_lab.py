"""The dashboard and the cluster page after a real collection of the lab (the demo fixture of
test_collect), including the must-show: db2's PostgreSQL stopped shows lab-pg degraded with
"no sync standby"."""

import importlib
import re

import pytest
from django.apps import apps
from django.urls import reverse

from clusters.alerts import evaluate
from clusters.collect import collect_cycle
from clusters.models import Alert, Cluster, ClusterStatus, Node, NodeStatus
from clusters.status import refresh_alert_counts, refresh_cluster_status
from clusters.tasks import collect as collect_task
from console import jobs
from console.lab import faults
from console.lab.parts import pgha
from console.models import Job
from tests.clusters._dashboard import FLEET
from tests.clusters.test_collect import (  # noqa: F401 (fixtures)
    _attach_standby_in_pgpool,
    db2_stopped_then_restored,
    demo,
)
from tests.factories import make_job

_defaults = importlib.import_module("clusters.migrations.0005_alert_defaults")

# --- after a real collection of the lab -----------------------------------------------------

pytestmark_lab = pytest.mark.django_db(transaction=True)


@pytestmark_lab
def test_after_a_collection_the_fleet_shows_the_lab_healthy(demo, client, dba):  # noqa: F811
    collect_cycle(demo)
    refresh_cluster_status()
    client.force_login(dba)
    page = client.get(FLEET).content.decode()
    pg = page.split('data-cluster="lab-pg"')[1].split("</tr>")[0]
    assert "state-healthy" in pg and ">db1</a>" in pg and ">1/1<" in pg and "2/2 up" in pg
    my = page.split('data-cluster="lab-mariadb"')[1].split("</tr>")[0]
    assert "state-healthy" in my and ">my1</a>" in my
    mariadb = Cluster.objects.get(name="lab-mariadb")
    detail = client.get(reverse("clusters:cluster_detail", args=[mariadb.pk])).content.decode()
    assert 'data-node="my1"' in detail and '"metric": "connections.threads_connected"' in detail
    assert "Replication slots" not in detail  # PostgreSQL panels only for PostgreSQL


@pytestmark_lab
def test_after_a_collection_the_cluster_page_shows_every_panel(demo, client, dba):  # noqa: F811
    collect_cycle(demo)
    client.force_login(dba)
    cluster = Cluster.objects.get(name="lab-pg")
    page = client.get(reverse("clusters:cluster_detail", args=[cluster.pk])).content.decode()
    topology = page.split('<figure class="topology">')[1].split("</figure>")[0]
    for name in ("db1", "db2", "lb1"):
        assert f'data-node="{name}"' in topology
    assert "primary · read-write" in topology and "standby · streaming" in topology
    assert "pgpool-II · 2/2 up" in topology and re.search(r">sync · \d+ B", topology)
    replication = page.split('class="compact striped replication-table"')[1].split("</table>")[0]
    assert ">db2</a>" in replication and "streaming" in replication and "sync-sync" in replication
    slots = page.split('id="slots-h"')[1].split("</section>")[0]
    assert "<code>db2</code>" in slots and ">yes<" in slots
    receivers = page.split('id="receiver-h"')[1].split("</section>")[0]
    db1 = Node.objects.get(name="db1")
    assert ">db2</a>" in receivers and f"<code>{db1.address}:5432</code>" in receivers
    pool = page.split("SHOW POOL_NODES on")[1].split("</section>")[0]
    assert "delay_threshold 0 (no delay check)" in pool and pool.count("<tr>") == 3
    archive = page.split('id="archive-h"')[1].split("</section>")[0]
    assert ">db1</a>" in archive and re.search(r"<code>0{7}1[0-9A-F]{16}[.\w]*</code>", archive)
    connections = page.split('id="conn-h"')[1].split("</section>")[0]
    assert ">db1</a>" in connections and ">db2</a>" in connections
    assert '"metric": "replication.replay_lag_bytes"' in page  # the charts' specs


def _collect_job() -> Job:
    """The collect job as Celery beat runs it: cycle, summaries, alert evaluation, counts."""
    job = make_job(kind="clusters.collect")
    assert jobs.run_job(job.pk, collect_task.body) == Job.Status.SUCCEEDED
    return job


def _firing(cluster: Cluster, severity: str) -> int:
    return Alert.objects.filter(cluster=cluster, state="firing", severity=severity).count()


@pytestmark_lab
def test_db2_stopped_shows_lab_pg_degraded(demo, db2_stopped_then_restored, client, dba):  # noqa: F811
    _defaults.create_default_rules(apps, None)  # a transactional test's flush removed them
    ha = db2_stopped_then_restored
    faults.stop_server(ha.lab, "standby")
    cluster = Cluster.objects.get(name="lab-pg")
    for _ in range(2):  # no_sync_standby may need a second cycle to fire
        _collect_job()
        if _firing(cluster, "critical"):
            break
    summary = ClusterStatus.objects.get(cluster=cluster)
    assert summary.state == "degraded" and "standby db2 is down" in summary.reasons
    assert (summary.standbys, summary.standbys_in_sync, summary.primary.name) == (1, 0, "db1")
    assert summary.alerts_critical >= 1  # the alert counts follow the evaluation
    assert (summary.alerts_critical, summary.alerts_warning) == (
        _firing(cluster, "critical"), _firing(cluster, "warning"),
    )  # fmt: skip
    client.force_login(dba)
    page = client.get(FLEET + "?state=degraded").content.decode()
    pg = page.split('data-cluster="lab-pg"')[1].split("</tr>")[0]
    assert "state-degraded" in pg and "no sync standby" in pg and "standby db2 is down" in pg
    assert ">0/1<" in pg and f'title="critical">{summary.alerts_critical}<' in pg
    detail = client.get(reverse("clusters:cluster_detail", args=[cluster.pk])).content.decode()
    assert 'class="box box-down" data-node="db2"' in detail and "not streaming" in detail

    faults.start_server(ha.lab, "standby")
    pgha.wait_for_sync(ha.primary, timeout=30)
    _attach_standby_in_pgpool(ha)
    _collect_job()
    summary.refresh_from_db()
    assert summary.state == "healthy" and summary.reasons == ""
    assert (summary.alerts_critical, summary.alerts_warning) == (
        _firing(cluster, "critical"), _firing(cluster, "warning"),
    )  # fmt: skip
    assert not Alert.objects.filter(cluster=cluster, state="firing", rule__key="no_sync_standby")
    page = client.get(FLEET).content.decode()
    assert "state-healthy" in page.split('data-cluster="lab-pg"')[1].split("</tr>")[0]


@pytestmark_lab
def test_an_alert_evaluation_outside_the_job_is_counted_at_the_next_refresh(demo):  # noqa: F811
    _defaults.create_default_rules(apps, None)
    collect_cycle(demo, disk=False)
    refresh_cluster_status()
    db2 = Node.objects.get(name="db2")
    db2.status.state = NodeStatus.State.DOWN  # as a cycle that could not reach db2 stores it
    db2.status.save()
    evaluate(None)
    cluster = Cluster.objects.get(name="lab-pg")
    assert _firing(cluster, "critical") + _firing(cluster, "warning") >= 1
    refresh_alert_counts()
    summary = ClusterStatus.objects.get(cluster=cluster)
    assert (summary.alerts_critical, summary.alerts_warning) == (
        _firing(cluster, "critical"), _firing(cluster, "warning"),
    )  # fmt: skip
