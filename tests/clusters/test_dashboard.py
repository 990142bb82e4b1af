"""The fleet dashboard, the cluster page and the series endpoint of their charts.

Query counts are measured on made-up fleets (3 and 30 clusters: the same count); content is
checked after a real collection of the lab (the demo fixture of test_collect), including the
must-show: db2's PostgreSQL stopped shows lab-pg degraded with "no sync standby". The dashboard
reads the per-cluster summary (ClusterStatus) the collect job writes (clusters.status): made-up
fleets are summarised with refresh_cluster_status() as the job would."""

import importlib
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clusters import dashboard, series
from clusters.alerts import evaluate
from clusters.collect import collect_cycle
from clusters.models import (
    Alert,
    AlertRule,
    Cluster,
    ClusterStatus,
    Environment,
    Node,
    NodeStatus,
    Sample,
    SampleRollup,
)
from clusters.status import refresh_alert_counts, refresh_cluster_status
from clusters.tasks import collect as collect_task
from clusters.templatetags.dashboard_extras import bytes_human, seconds_human
from console import jobs
from console.lab import faults
from console.lab.parts import pgha
from console.models import Job
from tests.clusters.test_collect import (  # noqa: F401 (fixtures)
    _attach_standby_in_pgpool,
    db2_stopped_then_restored,
    demo,
)
from tests.factories import make_job

_defaults = importlib.import_module("clusters.migrations.0005_alert_defaults")
FLEET = reverse("clusters:fleet")
MAX_FLEET_QUERIES = 12  # the benchmark's budget per page


# --- made-up fleets -------------------------------------------------------------------------


def _status(node, **fields) -> NodeStatus:
    fields.setdefault("state", NodeStatus.State.UP)
    fields.setdefault("polled", timezone.now())
    return NodeStatus.objects.create(node=node, reachable=True, **fields)


def _pg_cluster(name: str, env: Environment, *, lag: int = 0, sync: str = "sync",
                standby_up: bool = True) -> Cluster:  # fmt: skip
    """A PostgreSQL cluster as the collector leaves it: primary, one standby, one pgpool."""
    cluster = Cluster.objects.create(name=name, kind=Cluster.Kind.POSTGRESQL, environment=env)
    nodes = {}
    for suffix, service, role, last in (
        ("p", Node.Service.POSTGRESQL, Node.Role.PRIMARY, 1),
        ("s", Node.Service.POSTGRESQL, Node.Role.STANDBY, 2),
        ("lb", Node.Service.PGPOOL, Node.Role.BALANCER, 3),
    ):
        nodes[suffix] = Node.objects.create(
            cluster=cluster, name=f"{name}-{suffix}", service=service, role=role,
            address=f"10.99.{cluster.pk % 250}.{last}", db_port=5432, known_hosts="x",
        )  # fmt: skip
    standby_row = {
        "application_name": f"{name}-s", "client_addr": nodes["s"].address,
        "state": "streaming", "sync_state": sync, "write_lag_bytes": lag,
        "flush_lag_bytes": lag, "replay_lag_bytes": lag, "replay_lag_s": 0.5,
    }  # fmt: skip
    _status(nodes["p"], role_seen="primary", in_recovery=False,
            details={"standbys": [standby_row] if standby_up else []})  # fmt: skip
    if standby_up:
        _status(nodes["s"], role_seen="standby", in_recovery=True,
                replication_state="streaming", sync_state=sync, replay_lag_bytes=lag)  # fmt: skip
    else:
        _status(nodes["s"], state=NodeStatus.State.DOWN, error="connection refused")
    backends = [
        {"node_id": "0", "hostname": nodes["p"].address, "port": "5432", "status": "up",
         "role": "primary"},
        {"node_id": "1", "hostname": nodes["s"].address, "port": "5432",
         "status": "up" if standby_up else "down", "role": "standby"},
    ]  # fmt: skip
    _status(nodes["lb"], role_seen="balancer", details={"backends": backends})
    return cluster


def _fleet_of(count: int) -> list[Cluster]:
    prod, test = Environment.objects.create(name="prod"), Environment.objects.create(name="test")
    rule, _ = AlertRule.objects.get_or_create(key="replication_lag", defaults={"title": "Lag"})
    clusters = []
    for i in range(count):
        cluster = _pg_cluster(f"c{i:03d}", prod if i % 2 else test, lag=i * 1000,
                              standby_up=i % 3 != 0)  # fmt: skip
        now = timezone.now()
        Alert.objects.create(
            rule=rule, cluster=cluster, subject="cluster", state=Alert.State.FIRING,
            severity="critical" if i % 2 else "warning", message="lag", first_seen=now,
            last_seen=now, raised=now,
        )  # fmt: skip
        clusters.append(cluster)
    refresh_cluster_status()
    return clusters


def _count_queries(client, url: str) -> int:
    """The page's queries; none of them reads the samples."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    sample_tables = (Sample._meta.db_table, SampleRollup._meta.db_table)
    assert not [q for q in queries if any(t in q["sql"] for t in sample_tables)]
    return len(queries)


@pytest.mark.django_db
def test_the_fleet_page_costs_the_same_queries_for_3_and_30_clusters(
    client, dba, django_assert_max_num_queries
):
    client.force_login(dba)
    _fleet_of(3)
    small = _count_queries(client, FLEET)
    for i in range(3, 30):
        _pg_cluster(f"more{i}", Environment.objects.get(name="prod"))
    refresh_cluster_status()
    with django_assert_max_num_queries(MAX_FLEET_QUERIES):
        page = client.get(FLEET + "?sort=lag&env=prod").content.decode()
    assert page.count('class="fleet-row') == 28  # c001 and the 27 new ones
    assert _count_queries(client, FLEET) == small
    assert _count_queries(client, FLEET + "?sort=alerts&env=prod&state=healthy&page=2") == small


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
def test_the_last_backup_column_shows_the_newest_usable_backup_only(client, dba):
    from backups.models import BackupCatalog, BackupRun, RunStatus

    client.force_login(dba)
    c000, c001, _ = _fleet_of(3)
    catalog = BackupCatalog.objects.create(
        cluster=c001, name="main", engine="pgbackrest", path="/srv/repo", stanza="c001"
    )
    now = timezone.now()
    for hours, status, backup_id in (
        (30, RunStatus.OK, "a"),
        (3, RunStatus.OK, "b"),
        (1, RunStatus.CORRUPT, "c"),
        (0, RunStatus.DONE, "d"),
    ):
        BackupRun.objects.create(
            catalog=catalog, cluster=c001, mode="full", status=status, backup_id=backup_id,
            started=now - timedelta(hours=hours),
        )  # fmt: skip
    page = client.get(FLEET + "?sort=name").content.decode()
    row = page.split('data-cluster="c001"')[1].split("</tr>")[0]
    assert "3 h ago" in row  # not the corrupt or unvalidated runs after it
    assert "no usable backup recorded" in page.split('data-cluster="c000"')[1].split("</tr>")[0]


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


@pytest.mark.django_db
def test_the_cluster_page_costs_the_same_queries_whatever_the_fleet_size(
    client, dba, django_assert_max_num_queries
):
    client.force_login(dba)
    first = _fleet_of(3)[1]
    url = reverse("clusters:cluster_detail", args=[first.pk])
    small = _count_queries(client, url)
    for i in range(3, 30):
        _pg_cluster(f"more{i}", Environment.objects.get(name="prod"))
    with django_assert_max_num_queries(MAX_FLEET_QUERIES):
        client.get(url)
    assert _count_queries(client, url) == small


@pytest.mark.django_db
def test_the_fleet_shows_state_primary_sync_lag_pgpool_and_alerts(client, manager):
    client.force_login(manager)
    _fleet_of(3)  # c000: standby down (degraded); c001, c002 healthy
    page = client.get(FLEET).content.decode()
    rows = page.split('class="fleet-row')[1:]
    assert 'data-cluster="c000"' in rows[0] and "state-degraded" in rows[0]  # worst first
    assert "standby c000-s is down" in rows[0] and "no sync standby" in rows[0]
    assert ">0/1<" in rows[0] and "1/2 up" in rows[0]
    c001 = next(r for r in rows if 'data-cluster="c001"' in r)
    assert "state-healthy" in c001 and ">c001-p</a>" in c001 and ">1/1<" in c001
    assert "1000 B" in c001 and "2/2 up" in c001
    assert 'title="critical">1<' in c001
    assert 'title="no usable backup recorded"' in page
    summary = page.split('class="fleet-summary"')[1].split("</p>")[0]
    assert "2 healthy" in summary and "1 degraded" in summary and "0 down" in summary


@pytest.mark.django_db
def test_the_fleet_filters_by_environment_and_state_and_sorts(client, dba):
    client.force_login(dba)
    _fleet_of(6)  # odd: prod; c000 and c003 degraded

    def names(query: str) -> list[str]:
        page = client.get(FLEET + query).content.decode()
        return re.findall(r'class="fleet-row[^"]*" data-cluster="([^"]+)"', page)

    assert names("?env=prod&sort=name") == ["c001", "c003", "c005"]
    assert names("?state=degraded&sort=name") == ["c000", "c003"]
    assert names("?env=test&state=healthy&sort=name") == ["c002", "c004"]
    assert names("?sort=lag") == ["c005", "c004", "c002", "c001", "c000", "c003"]  # no lag: last
    assert names("?sort=alerts&env=prod") == ["c003", "c001", "c005"]  # degraded first at par
    assert names("?sort=name") == [f"c{i:03d}" for i in range(6)]


@pytest.mark.django_db
def test_the_fleet_is_paged_after_filtering_and_sorting(client, dba, monkeypatch):
    monkeypatch.setattr(dashboard, "PAGE_SIZE", 2)
    client.force_login(dba)
    _fleet_of(6)
    page = client.get(FLEET + "?env=prod&sort=name&page=2").content.decode()
    assert re.findall(r'data-cluster="([^"]+)"', page) == ["c005"]
    assert "clusters 3–3 of 3 · page 2 of 2" in page
    assert 'href="?env=prod&amp;sort=name&amp;page=1">‹ previous' in page
    assert "next ›" not in page
    last = client.get(FLEET + "?sort=name&page=99").content.decode()  # past the end: the last
    assert re.findall(r'data-cluster="([^"]+)"', last) == ["c004", "c005"]


@pytest.mark.django_db
def test_a_bad_filter_names_its_field_and_is_not_applied(client, dba):
    client.force_login(dba)
    _fleet_of(2)
    page = client.get(FLEET + "?env=nowhere&state=melted").content.decode()
    assert "No environment is called &#x27;nowhere&#x27;." in page
    assert "Select a valid choice. melted is not one of the available choices." in page
    assert page.count('class="fleet-row') == 2


@pytest.mark.django_db
def test_the_live_refresh_returns_the_table_only_and_keeps_the_query(client, dba):
    client.force_login(dba)
    _fleet_of(4)
    response = client.get(FLEET + "?env=prod&sort=lag", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "<html" not in html and html.startswith('<div id="fleet"')
    assert f'hx-get="{FLEET}?env=prod&amp;sort=lag&amp;page=1"' in html
    assert 'hx-trigger="every 15s [document.visibilityState === &#x27;visible&#x27;]"' not in html
    assert "every 15s [document.visibilityState === 'visible']" in html
    assert html.count('class="fleet-row') == 2


@pytest.mark.django_db
def test_pages_refuse_helpdesk_anonymous_and_posts(client, helpdesk, outsider, dba):
    cluster = _fleet_of(1)[0]
    urls = [FLEET, reverse("clusters:cluster_detail", args=[cluster.pk])]
    for url in urls:
        assert client.get(url).status_code == 302
    for user in (helpdesk, outsider):
        client.force_login(user)
        for url in urls:
            assert client.get(url).status_code == 403
    client.force_login(dba)
    for url in urls:
        assert client.post(url).status_code == 405
    assert client.get(reverse("clusters:cluster_detail", args=[99999])).status_code == 404


@pytest.mark.django_db
def test_the_inventory_moved_and_the_nav_links_the_dashboard(client, manager):
    client.force_login(manager)
    assert reverse("clusters:cluster_list") == "/clusters/inventory/"
    home = client.get(reverse("home")).content.decode()
    nav = home.split("<main")[0]
    assert f'href="{FLEET}"' in nav and ">Dashboard<" in nav
    assert f'<a href="{FLEET}">Clusters</a>' in home


# --- the series endpoint --------------------------------------------------------------------


def _node() -> Node:
    env = Environment.objects.create(name="prod")
    return Node.objects.get(name="s1-s", cluster=_pg_cluster("s1", env))


def _series(client, **params):
    return client.get(reverse("clusters:series"), params)


@pytest.mark.django_db
def test_a_day_of_samples_is_downsampled_to_five_minute_buckets(client, dba):
    node, now = _node(), timezone.now().replace(microsecond=0)
    Sample.objects.bulk_create(
        Sample(node=node, metric="replication.replay_lag_bytes",
               ts=now - timedelta(seconds=30 * i), value=float(i % 10))
        for i in range(2880)
    )  # fmt: skip
    client.force_login(dba)
    answer = _series(client, node=node.pk, metric="replication.replay_lag_bytes", range="24h")
    data = answer.json()
    assert answer.status_code == 200 and data["step_s"] == 300 and data["unit"] == "bytes"
    assert 288 <= len(data["points"]) <= 290  # 24 h of 5 min buckets, the ends partial
    assert all(v == 9.0 for _, v in data["points"][1:-1])  # "max" per bucket for a lag
    times = [t for t, _ in data["points"]]
    assert times == sorted(times) and all(t % 300_000 == 0 for t in times)
    hour = _series(client, node=node.pk, metric="replication.replay_lag_bytes", range="1h")
    assert 119 <= len(hour.json()["points"]) <= 121  # 30 s samples in 30 s buckets


@pytest.mark.django_db
def test_thirty_days_read_rollups_and_raw_samples_together(client, dba):
    node, now = _node(), timezone.now().replace(minute=0, second=0, microsecond=0)
    SampleRollup.objects.bulk_create(
        SampleRollup(node=node, metric="connections.active", hour=now - timedelta(hours=h),
                     min=0, max=8, avg=4.0, count=120)
        for h in range(200, 700)
    )  # fmt: skip
    Sample.objects.bulk_create(
        Sample(node=node, metric="connections.active", ts=now - timedelta(minutes=m), value=2.0)
        for m in range(0, 600, 1)
    )  # fmt: skip
    client.force_login(dba)
    data = _series(client, node=node.pk, metric="connections.active", range="30d").json()
    assert data["step_s"] == 7200 and len(data["points"]) <= 360
    values = {v for _, v in data["points"]}
    assert values == {4.0, 2.0}  # averages: hours of rollups, then raw minutes
    old = [t for t, v in data["points"] if v == 4.0]
    assert max(old) < min(t for t, v in data["points"] if v == 2.0)
    # the same buckets computed in Python, for databases other than PostgreSQL
    since = now - timedelta(days=30)
    in_sql = series._buckets_sql(node.pk, "connections.active", since, 7200)
    in_python = series.buckets_python(node.pk, "connections.active", since, 7200)
    assert [(int(t), round(a, 6)) for t, a, *_ in in_sql] == [
        (int(t), round(a, 6)) for t, a, *_ in in_python
    ]


@pytest.mark.django_db
def test_the_series_endpoint_refuses_bad_input_and_unknown_nodes(client, dba):
    node = _node()
    client.force_login(dba)
    answer = _series(client, node=node.pk, metric="no.such.metric", range="1h")
    assert answer.status_code == 400 and "metric" in answer.json()["errors"]
    answer = _series(client, node=node.pk, metric="up", range="2y")
    assert answer.status_code == 400 and "range" in answer.json()["errors"]
    answer = _series(client, node="db1", metric="up")
    assert answer.status_code == 400 and "node" in answer.json()["errors"]
    assert _series(client, node=99999, metric="up").status_code == 404
    assert client.post(reverse("clusters:series"), {"node": node.pk}).status_code == 405


@pytest.mark.django_db
def test_the_series_endpoint_follows_the_cluster_permissions(client, helpdesk, manager):
    node = _node()
    assert _series(client, node=node.pk, metric="up").status_code == 302
    client.force_login(helpdesk)
    assert _series(client, node=node.pk, metric="up").status_code == 403
    client.force_login(manager)
    assert _series(client, node=node.pk, metric="up").json()["points"] == []


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


@pytest.mark.django_db
def test_the_topology_marks_a_standby_down_and_the_pgpool_route_to_it(client, dba):
    cluster = _pg_cluster("t1", Environment.objects.create(name="prod"), standby_up=False)
    client.force_login(dba)
    page = client.get(reverse("clusters:cluster_detail", args=[cluster.pk])).content.decode()
    topology = page.split('<figure class="topology">')[1].split("</figure>")[0]
    assert 'class="box box-down" data-node="t1-s"' in topology
    assert 'class="edge repl-missing"' in topology and ">not streaming<" in topology
    assert topology.count('class="edge route"') == 1  # to the primary
    assert topology.count('class="edge route-down"') == 1  # to the standby, down in pgpool
    assert "standby t1-s is down" in page


def test_sizes_and_durations_read_like_a_dba_writes_them():
    assert [bytes_human(v) for v in (None, 0, 1023, 1536, 48_000_000, 9.8e9)] == [
        "—", "0 B", "1023 B", "1.5 kB", "45.8 MB", "9.1 GB",
    ]  # fmt: skip
    assert [seconds_human(v) for v in (0.04, 2.44, 75, 7000, 200_000)] == [
        "40 ms", "2.4 s", "75 s", "116 min", "2 d 7 h",
    ]  # fmt: skip
