"""The fleet dashboard and the cluster page on made-up fleets: the same query count for 3 and 30
clusters, what each row and panel shows, filters, sorting, paging, the live refresh, and who may
see them. The summary rows they read: test_dashboard_summary.py; the series endpoint of their
charts: test_dashboard_series.py; the lab after a real collection: test_dashboard_lab.py."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters import dashboard
from clusters.models import Environment
from clusters.status import refresh_cluster_status
from clusters.templatetags.dashboard_extras import bytes_human, seconds_human
from tests.clusters._dashboard import (
    FLEET,
    MAX_FLEET_QUERIES,
    _count_queries,
    _fleet_of,
    _pg_cluster,
)


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
