"""The per-cluster summary (ClusterStatus) the collect job writes (clusters.status) and the
dashboard reads: a new cycle shows only once summarised, summarising costs the same queries for
3 and 30 clusters, and the firing alert counts follow their alerts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters.models import Alert, Cluster, ClusterStatus, Environment, NodeStatus
from clusters.status import refresh_alert_counts, refresh_cluster_status
from tests.clusters._dashboard import FLEET, _fleet_of, _pg_cluster


@pytest.mark.django_db
def test_the_fleet_reads_the_summary_rows_and_a_new_cluster_is_unknown_until_summarised(
    client, dba
):
    client.force_login(dba)
    _fleet_of(3)
    status = NodeStatus.objects.get(node__name="c001-s")
    status.polled, status.state = timezone.now(), NodeStatus.State.DOWN  # a new cycle
    status.save()
    assert 'data-cluster="c001"' not in client.get(FLEET + "?state=degraded").content.decode()
    assert refresh_cluster_status(Cluster.objects.filter(name="c001")) == 1
    page = client.get(FLEET + "?state=degraded").content.decode()
    assert 'data-cluster="c001"' in page and "standby c001-s is down" in page
    assert ClusterStatus.objects.get(cluster__name="c001").state == "degraded"
    _pg_cluster("newcomer", Environment.objects.get(name="prod"))  # no summary row yet
    page = client.get(FLEET + "?state=unknown").content.decode()
    row = page.split('data-cluster="newcomer"')[1].split("</tr>")[0]
    assert "state-unknown" in row and "not collected yet" in row and ">never<" in row
    summary = page.split('class="fleet-summary"')[1].split("</p>")[0]
    assert "1 unknown" in summary
    refresh_cluster_status()
    assert ClusterStatus.objects.count() == 4
    assert "state-healthy" in client.get(FLEET).content.decode().split(
        'data-cluster="newcomer"')[1].split("</tr>")[0]  # fmt: skip


@pytest.mark.django_db
def test_summarising_costs_the_same_queries_for_3_and_30_clusters():
    _fleet_of(3)
    with CaptureQueriesContext(connection) as small:
        assert refresh_cluster_status() == 3
    for i in range(3, 30):
        _pg_cluster(f"more{i}", Environment.objects.get(name="prod"))
    with CaptureQueriesContext(connection) as large:
        assert refresh_cluster_status() == 30
    assert len(large) == len(small) == 4  # kinds, nodes with status, firing alerts, upsert
    assert ClusterStatus.objects.filter(state="healthy").count() == 29  # c000's standby down


@pytest.mark.django_db
def test_the_summary_counts_firing_alerts_after_they_change(client, dba):
    client.force_login(dba)
    c000 = _fleet_of(3)[0]
    assert ClusterStatus.objects.get(cluster=c000).alerts_warning == 1
    Alert.objects.filter(cluster=c000).update(state=Alert.State.CLEARED, cleared=timezone.now())
    assert refresh_alert_counts() == 3
    row = ClusterStatus.objects.get(cluster=c000)
    assert (row.alerts_critical, row.alerts_warning) == (0, 0)
    c001 = ClusterStatus.objects.get(cluster__name="c001")
    assert (c001.alerts_critical, c001.alerts_warning) == (1, 0)
