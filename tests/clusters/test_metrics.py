"""/metrics for Prometheus: after real collection cycles over the lab the scrape shows the lab as
it is (db1 up, db2 a streaming synchronous standby with its lag, lab-pg healthy), and db2's
PostgreSQL stopped shows up 0 and degraded at the next cycle. Token and session sign-in, the
view_node permission, and a constant number of queries whatever the fleet size."""

import os
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from clusters import registration
from clusters.collect import collect_cycle
from clusters.models import Alert, AlertRule, Cluster, Node, NodeStatus
from console.lab import faults
from console.lab.demo import register_demo
from console.lab.parts import pgha, pgpool
from console.lab.proc import LabError
from tests.factories import make_audit_entry, make_monitored_cluster, make_user
from tests.lab.ha import ha_from_env

CLUSTER_STATES = ("healthy", "degraded", "down", "unknown")


def _archiver_failed_count() -> float:
    """db1's own pg_stat_archiver.failed_count, read by the test straight from the server."""
    import psycopg

    with psycopg.connect(
        host=os.environ["LAB_PG_HOST"], port=os.environ["LAB_PG_PORT"], dbname="postgres",
        user=os.environ["LAB_PG_USER"], password=os.environ["LAB_PG_PASSWORD"], connect_timeout=5,
    ) as conn:  # fmt: skip
        return float(conn.execute("SELECT failed_count FROM pg_stat_archiver").fetchone()[0])


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _scrape(client: APIClient) -> dict[tuple, float]:
    """GET /metrics, parse it as Prometheus does; {(sample name, sorted labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def _value(samples: dict, name: str, **labels) -> float | None:
    """The value of the one sample named `name` whose labels include `labels` (None if none)."""
    found = [
        v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()
    ]
    assert len(found) <= 1, f"{name} {labels} matches {len(found)} series"
    return found[0] if found else None


# --- against the lab ----------------------------------------------------------------------------


@pytest.fixture
def demo(lab_env) -> list[Node]:
    """The lab registered as in `lab up --demo`, with its facts read (as in test_collect)."""
    register_demo({**os.environ, **lab_env})
    for cluster in Cluster.objects.all():
        registration.rediscover_cluster(cluster)
    return list(Node.objects.exclude(service=Node.Service.NONE))


@pytest.mark.django_db(transaction=True)
def test_a_scrape_after_a_cycle_shows_the_lab_as_it_runs(demo, dba):
    collect_cycle(demo, disk=True)
    m = _scrape(_client(dba))
    for name in ("db1", "db2", "lb1", "my1"):
        assert _value(m, "dbconsole_node_up", node=name) == 1, name
    assert _value(m, "dbconsole_node_up", node="db1", role="primary", cluster="lab-pg") == 1
    states = {s: _value(m, "dbconsole_cluster_state", cluster="lab-pg", state=s) for s in
              CLUSTER_STATES}  # fmt: skip
    assert states == {"healthy": 1, "degraded": 0, "down": 0, "unknown": 0}
    assert _value(m, "dbconsole_cluster_state", cluster="lab-mariadb", state="healthy") == 1
    assert _value(m, "dbconsole_cluster_standbys", cluster="lab-pg") == 1
    assert _value(m, "dbconsole_cluster_standbys_in_sync", cluster="lab-pg") == 1
    assert _value(m, "dbconsole_replication_in_sync", node="db2") == 1
    for kind in ("replay", "write", "flush"):
        lag = _value(m, f"dbconsole_replication_{kind}_lag_bytes", node="db2")
        assert lag is not None and 0 <= lag < 16 * 1024**2, kind
    assert _value(m, "dbconsole_replication_replay_lag_seconds", node="db2") >= 0
    assert _value(m, "dbconsole_replication_replay_lag_bytes", node="db1") is None
    # the collector's own statement is an active client backend on db1
    assert _value(m, "dbconsole_connections", node="db1", state="active") >= 1
    assert 0 < _value(m, "dbconsole_connections_used_percent", node="db1") <= 100
    assert _value(m, "dbconsole_mariadb_threads_connected", node="my1") >= 1
    # pg_stat_archiver.failed_count is cumulative: other tests of the run may have failed archiving
    assert _value(m, "dbconsole_archive_failed_total", node="db1") == _archiver_failed_count()
    assert _value(m, "dbconsole_archive_wal_files_waiting", node="db1") >= 0
    assert 0 < _value(m, "dbconsole_disk_used_percent", node="db1") <= 100
    assert _value(m, "dbconsole_pgpool_backends", node="lb1", status="up") == 2
    assert _value(m, "dbconsole_pgpool_backends", node="lb1", status="down") == 0
    assert _value(m, "dbconsole_log_lines_total", node="db1", level="fatal") == 0
    status = NodeStatus.objects.get(node__name="db1")
    polled = _value(m, "dbconsole_node_last_poll_timestamp_seconds", node="db1")
    assert polled == pytest.approx(status.polled.timestamp())
    assert _value(m, "dbconsole_node_poll_duration_seconds", node="db1") == status.poll_ms / 1000
    info = _value(m, "dbconsole_node_info", node="db2", role_seen="standby", service="postgresql")
    assert info == 1
    assert _value(m, "dbconsole_alerts_firing", cluster="lab-pg", severity="critical") == 0
    assert _value(m, "dbconsole_audit_last_entry_id") > 0


@pytest.fixture
def db2_stopped_then_restored(lab, lab_env):
    """As in test_collect: afterwards db2 runs again, streams in sync, and pgpool has it
    attached (the HA parts are rebuilt if they do not get there)."""
    ha = ha_from_env(lab_env, lab)
    yield ha
    try:
        faults.start_server(lab, "standby")
        pgha.wait_for_sync(ha.primary, timeout=30)
        part, rec = ha.lab.parts["pgpool"], ha.lab.load()["parts"]["pgpool"]
        if pgpool.pcp_nodes(part, rec)[1]["status"] == "down":
            part.pcp(rec, "attach_node", "-n", "1")
        pgpool.wait_for_pool_nodes(ha.pool, pgpool.NORMAL_NODES, timeout=30)
    except LabError:
        ha.rebuild()


@pytest.mark.django_db(transaction=True)
def test_db2_stopped_shows_node_down_and_lab_pg_degraded_at_the_next_cycle(
    demo, dba, db2_stopped_then_restored
):
    collect_cycle(demo, disk=False)
    assert _value(_scrape(_client(dba)), "dbconsole_node_up", node="db2") == 1
    faults.stop_server(db2_stopped_then_restored.lab, "standby")
    deadline, m = time.monotonic() + 30, {}
    while time.monotonic() < deadline:  # one cycle should do; poll the stop with a deadline
        collect_cycle(demo, disk=False)
        m = _scrape(_client(dba))
        if _value(m, "dbconsole_node_up", node="db2") == 0:
            break
    assert _value(m, "dbconsole_node_up", node="db2") == 0
    assert _value(m, "dbconsole_node_up", node="db1") == 1
    assert _value(m, "dbconsole_cluster_state", cluster="lab-pg", state="degraded") == 1
    assert _value(m, "dbconsole_cluster_state", cluster="lab-pg", state="healthy") == 0
    assert _value(m, "dbconsole_cluster_standbys_in_sync", cluster="lab-pg") == 0
    assert _value(m, "dbconsole_replication_in_sync", node="db2") == 0
    # no lag figure from an older poll is shown for a server that does not answer
    assert _value(m, "dbconsole_replication_replay_lag_bytes", node="db2") is None


# --- sign-in and permission ---------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_without_credentials_is_401_with_a_challenge():
    response = APIClient().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_metrics_with_a_bad_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    assert client.get("/metrics").status_code == 401


@pytest.mark.django_db
def test_metrics_with_a_helpdesk_token_is_403(helpdesk):
    assert _client(helpdesk).get("/metrics").status_code == 403


@pytest.mark.django_db
def test_metrics_for_a_manager_session(manager):
    make_monitored_cluster("pg-a")
    client = APIClient()
    client.force_login(manager)
    assert client.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_metrics_is_get_only(dba):
    assert _client(dba).post("/metrics").status_code == 405


@pytest.mark.django_db
def test_metrics_answers_openmetrics_when_prometheus_asks_for_it(dba):
    make_monitored_cluster("pg-a")
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    response = _client(dba).get("/metrics", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    families = {f.name: f for f in parse_om(response.content.decode())}
    assert families["dbconsole_archive_failed"].type == "counter"
    assert families["dbconsole_cluster_state"].type == "gauge"


# --- figures without servers: rows as a cycle leaves them ---------------------------------------


@pytest.mark.django_db
def test_cluster_state_has_one_series_per_state_and_alerts_by_severity(dba):
    cluster = make_monitored_cluster("pg-a", lag=4096)
    Node.objects.create(
        cluster=cluster,
        name="pg-a-db3",
        service="postgresql",
        role="standby",
        address="192.0.2.3",
        known_hosts="",
    )  # fmt: skip  (never collected)
    rule, _ = AlertRule.objects.get_or_create(key="node_down", defaults={"title": "Node down"})
    now = NodeStatus.objects.first().polled
    for state, severity in (("firing", "critical"), ("firing", "critical"), ("cleared", "warning")):
        Alert.objects.create(rule=rule, cluster=cluster, subject=f"x{Alert.objects.count()}",
                             state=state, severity=severity, message="m", first_seen=now,
                             last_seen=now)  # fmt: skip
    m = _scrape(_client(dba))
    states = {s: _value(m, "dbconsole_cluster_state", cluster="pg-a", state=s) for s in
              CLUSTER_STATES}  # fmt: skip
    assert states == {"healthy": 1, "degraded": 0, "down": 0, "unknown": 0}
    assert _value(m, "dbconsole_alerts_firing", cluster="pg-a", severity="critical") == 2
    assert _value(m, "dbconsole_alerts_firing", cluster="pg-a", severity="warning") == 0
    assert _value(m, "dbconsole_replication_replay_lag_bytes", node="pg-a-db2") == 4096
    assert _value(m, "dbconsole_connections", node="pg-a-db1", state="idle") == 3
    assert _value(m, "dbconsole_connections", node="pg-a-db1", state="disabled") == 0
    assert _value(m, "dbconsole_pgpool_backend_up", node="pg-a-lb1", backend_host="192.0.2.1") == 1
    assert _value(m, "dbconsole_node_up", node="pg-a-db3") is None  # no made-up figure


@pytest.mark.django_db
def test_only_the_latest_cycle_is_shown(dba):
    from datetime import timedelta

    from clusters.models import Sample

    make_monitored_cluster("pg-a", lag=100)
    db2 = Node.objects.get(name="pg-a-db2")
    older = db2.status.polled - timedelta(seconds=30)
    Sample.objects.create(node=db2, metric="replication.replay_lag_bytes", ts=older, value=9e9)
    # pg-b was last polled by that older cycle, which also polled pg-a-db2
    make_monitored_cluster("pg-b", polled=older, lag=7)
    m = _scrape(_client(dba))
    assert _value(m, "dbconsole_replication_replay_lag_bytes", node="pg-a-db2") == 100
    assert _value(m, "dbconsole_replication_replay_lag_bytes", node="pg-b-db2") == 7


def _queries_of_a_scrape(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/metrics").status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_a_scrape_costs_the_same_queries_for_3_or_40_clusters(dba, django_assert_max_num_queries):
    client = _client(dba)
    make_audit_entry("test.metrics")
    for i in range(3):
        make_monitored_cluster(f"pg-{i:02}")
    few = _queries_of_a_scrape(client)
    for i in range(3, 40):
        make_monitored_cluster(f"pg-{i:02}")
    with django_assert_max_num_queries(few):
        response = client.get("/metrics")
    series = [s for s in text_string_to_metric_families(response.content.decode())
              if s.name == "dbconsole_node_up"][0].samples  # fmt: skip
    assert len(series) == 120
    assert few <= 8  # token, user, permissions, then the five reads of clusters.metrics


@pytest.mark.django_db
def test_no_stored_secret_or_credential_in_metrics(dba):
    make_monitored_cluster("pg-a")
    make_user("other", persona="dba")
    body = _client(dba).get("/metrics").content
    assert b"password" not in body.lower() and b"known_hosts" not in body
