"""The monitoring API: /api/clusters/, /api/nodes/, /api/samples/, /api/alerts/. Against the lab
after a real collection cycle, then on rows as a cycle leaves them for filters, paging, 400s,
403s and the query count of a cluster page."""

import os
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from clusters import registration
from clusters.collect import collect_cycle
from clusters.models import Alert, AlertRule, Cluster, Node, Sample
from console.lab.demo import register_demo
from tests.factories import make_monitored_cluster

ENDPOINTS = ("/api/clusters/", "/api/nodes/", "/api/samples/?node=1", "/api/alerts/")


def _client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _names(response, key: str = "name") -> list:
    assert response.status_code == 200, response.content
    return [row[key] for row in response.json()["results"]]


# --- against the lab ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the executor audits outside transactions
def test_the_api_shows_the_lab_after_a_cycle(lab_env, dba):
    register_demo({**os.environ, **lab_env})
    for cluster in Cluster.objects.all():
        registration.rediscover_cluster(cluster)
    collect_cycle(Node.objects.exclude(service=Node.Service.NONE), disk=False)
    api = _client(dba)

    clusters = {c["name"]: c for c in api.get("/api/clusters/").json()["results"]}
    pg = clusters["lab-pg"]
    assert (pg["state"], pg["reasons"], pg["standbys"], pg["standbys_in_sync"]) == (
        "healthy", [], 1, 1,
    )  # fmt: skip
    assert pg["worst_lag_bytes"] is not None and pg["worst_lag_bytes"] >= 0
    assert pg["alerts_firing"] == {"warning": 0, "critical": 0}
    assert (pg["kind"], pg["environment"]) == ("postgresql", "lab")
    assert clusters["lab-mariadb"]["state"] == "healthy"

    detail = api.get(f"/api/clusters/{pg['id']}/").json()
    assert {(n["name"], n["state"]) for n in detail["nodes"]} == {
        ("db1", "up"), ("db2", "up"), ("lb1", "up"),
    }  # fmt: skip

    assert _names(api.get("/api/nodes/", {"cluster": pg["id"]})) == ["db1", "db2", "lb1"]
    assert _names(api.get("/api/nodes/", {"service": "pgpool"})) == ["lb1"]
    assert _names(api.get("/api/nodes/", {"state": "up"})) == ["db1", "db2", "lb1", "my1"]
    assert _names(api.get("/api/nodes/", {"state": "unknown"})) == ["bare1", "bare2"]
    db2 = Node.objects.get(name="db2")
    status = api.get(f"/api/nodes/{db2.pk}/").json()["status"]
    assert (status["state"], status["role_seen"], status["sync_state"]) == (
        "up", "standby", "sync",
    )  # fmt: skip
    assert status["replay_lag_bytes"] is not None

    db1 = Node.objects.get(name="db1")
    ups = api.get("/api/samples/", {"node": db1.pk, "metric": "up"}).json()["results"]
    assert [(s["node"], s["metric"], s["value"]) for s in ups] == [(db1.pk, "up", 1.0)]
    everything = api.get("/api/samples/", {"node": db1.pk}).json()["results"]
    assert {"up", "connections.total", "archive.failed_count"} <= {s["metric"] for s in everything}


# --- paging and filters, on rows as a cycle leaves them -----------------------------------------


@pytest.mark.django_db
def test_samples_are_paged_newest_first_without_repeats_across_equal_times(dba):
    make_monitored_cluster("pg-a")
    db1 = Node.objects.get(name="pg-a-db1")
    start = timezone.now() - timedelta(hours=1)
    for cycle in range(4):  # four cycles of five metrics: every time is shared by five rows
        Sample.objects.bulk_create(
            Sample(node=db1, metric=f"m.{i}", ts=start + timedelta(minutes=cycle), value=cycle)
            for i in range(5)
        )
    wanted = list(
        Sample.objects.filter(node=db1, metric__startswith="m.")
        .order_by("-ts", "-id")
        .values_list("id", flat=True)
    )
    api = _client(dba)
    response = api.get("/api/samples/", {"node": db1.pk, "until": start + timedelta(minutes=3),
                                         "page_size": 3})  # fmt: skip
    seen = _names(response, "id")
    while response.json()["next"]:
        response = api.get(response.json()["next"])
        seen += _names(response, "id")
    assert seen == wanted


@pytest.mark.django_db
def test_samples_filter_by_metric_and_time(dba):
    make_monitored_cluster("pg-a")
    db1 = Node.objects.get(name="pg-a-db1")
    now = timezone.now()
    old = Sample.objects.create(node=db1, metric="up", ts=now - timedelta(days=2), value=0)
    api = _client(dba)
    since = (now - timedelta(days=1)).isoformat()
    assert len(_names(api.get("/api/samples/", {"node": db1.pk, "metric": "up"}), "id")) == 2
    recent = api.get("/api/samples/", {"node": db1.pk, "metric": "up", "since": since})
    assert _names(recent, "value") == [1.0]
    until = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    older = api.get("/api/samples/", {"node": db1.pk, "until": until})
    assert _names(older, "id") == [old.pk]


@pytest.mark.django_db
def test_sample_page_size_is_capped_at_1000(dba):
    make_monitored_cluster("pg-a")
    db1 = Node.objects.get(name="pg-a-db1")
    now = timezone.now()
    Sample.objects.bulk_create(
        Sample(node=db1, metric="m", ts=now - timedelta(seconds=i), value=i) for i in range(1001)
    )
    response = _client(dba).get("/api/samples/", {"node": db1.pk, "metric": "m",
                                                   "page_size": 5000})  # fmt: skip
    assert len(response.json()["results"]) == 1000 and response.json()["next"]


@pytest.mark.parametrize(
    "params, field, words",
    [
        ({}, "node", "Give the node's id"),
        ({"node": "db1"}, "node", "whole number"),
        ({"node": 999999}, "node", "No node has id 999999"),
        ({"node": "{db1}", "metric": "up; drop"}, "metric", "only a-z"),
        ({"node": "{db1}", "since": "last tuesday"}, "since", "valid date/time"),
        ({"node": "{db1}", "since": "2026-02-01T00:00Z", "until": "2026-01-01T00:00Z"},
         "until", "must not be before"),
    ],
)  # fmt: skip
@pytest.mark.django_db
def test_bad_sample_parameters_are_a_400_naming_the_parameter(dba, params, field, words):
    make_monitored_cluster("pg-a")
    db1 = Node.objects.get(name="pg-a-db1")
    params = {k: str(v).replace("{db1}", str(db1.pk)) for k, v in params.items()}
    response = _client(dba).get("/api/samples/", params)
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])


@pytest.mark.parametrize(
    "path, params, field",
    [
        ("/api/nodes/", {"state": "sleeping"}, "state"),
        ("/api/nodes/", {"cluster": "lab-pg"}, "cluster"),
        ("/api/nodes/", {"service": "oracle"}, "service"),
        ("/api/alerts/", {"severity": "apocalyptic"}, "severity"),
        ("/api/alerts/", {"state": "open"}, "state"),
        ("/api/alerts/", {"rule": "no spaces"}, "rule"),
        ("/api/clusters/", {"kind": "oracle"}, "kind"),
    ],
)
@pytest.mark.django_db
def test_bad_filters_are_a_400_naming_the_filter(dba, path, params, field):
    response = _client(dba).get(path, params)
    assert response.status_code == 400
    assert field in response.json()


def _alert(cluster, rule, *, state="firing", severity="critical", minutes_ago=0, node=None):
    seen = timezone.now() - timedelta(minutes=minutes_ago)
    return Alert.objects.create(
        rule=rule, cluster=cluster, node=node, subject=f"node:{node.pk}" if node else "cluster",
        state=state, severity=severity, message=f"{rule.key} on {cluster}", first_seen=seen,
        last_seen=seen, cleared=seen if state == "cleared" else None,
    )  # fmt: skip


@pytest.fixture
def alerts(db):
    """Alerts on two clusters: {name: Alert}."""
    a, b = make_monitored_cluster("pg-a"), make_monitored_cluster("pg-b")
    down, _ = AlertRule.objects.get_or_create(key="node_down", defaults={"title": "Node down"})
    lag, _ = AlertRule.objects.get_or_create(key="replication_lag",
                                             defaults={"title": "Replication lag"})  # fmt: skip
    db2 = Node.objects.get(name="pg-a-db2")
    return {
        "a-lag-old": _alert(a, lag, state="cleared", severity="warning", minutes_ago=30),
        "a-down": _alert(a, down, node=db2, minutes_ago=10),
        "a-lag": _alert(a, lag, severity="warning", minutes_ago=5),
        "b-down": _alert(b, down, minutes_ago=1),
    }


@pytest.mark.parametrize(
    "params, names",
    [
        ({}, ["b-down", "a-lag", "a-down", "a-lag-old"]),
        ({"cluster": "{pg-a}"}, ["a-lag", "a-down", "a-lag-old"]),
        ({"state": "firing"}, ["b-down", "a-lag", "a-down"]),
        ({"state": "cleared"}, ["a-lag-old"]),
        ({"severity": "warning"}, ["a-lag", "a-lag-old"]),
        ({"rule": "node_down", "cluster": "{pg-a}"}, ["a-down"]),
    ],
)
@pytest.mark.django_db
def test_alerts_filter_and_come_newest_first(dba, alerts, params, names):
    pg_a = Cluster.objects.get(name="pg-a")
    params = {k: v.replace("{pg-a}", str(pg_a.pk)) for k, v in params.items()}
    ids = _names(_client(dba).get("/api/alerts/", params), "id")
    assert ids == [alerts[name].pk for name in names]


@pytest.mark.django_db
def test_an_alert_names_its_rule_cluster_and_node(dba, alerts):
    row = _client(dba).get(f"/api/alerts/{alerts['a-down'].pk}/").json()
    assert (row["rule"], row["cluster_name"], row["node_name"], row["state"]) == (
        "node_down", "pg-a", "pg-a-db2", "firing",
    )  # fmt: skip


@pytest.mark.django_db
def test_alerts_are_paged_by_cursor(dba, alerts):
    api = _client(dba)
    response = api.get("/api/alerts/", {"page_size": 1})
    seen = _names(response, "id")
    while response.json()["next"]:
        response = api.get(response.json()["next"])
        seen += _names(response, "id")
    assert seen == [alerts[n].pk for n in ("b-down", "a-lag", "a-down", "a-lag-old")]


@pytest.mark.django_db
def test_cluster_list_counts_firing_alerts_and_says_why_a_cluster_is_degraded(dba, alerts):
    Node.objects.get(name="pg-b-db2").status.__class__.objects.filter(node__name="pg-b-db2").update(
        state="down", reachable=False, sync_state="", replication_state=""
    )
    rows = {c["name"]: c for c in _client(dba).get("/api/clusters/").json()["results"]}
    assert rows["pg-a"]["alerts_firing"] == {"warning": 1, "critical": 1}
    assert (rows["pg-a"]["state"], rows["pg-a"]["standbys_in_sync"]) == ("healthy", 1)
    assert rows["pg-b"]["state"] == "degraded"
    assert rows["pg-b"]["reasons"] == ["standby pg-b-db2 is down", "no sync standby"]


@pytest.mark.django_db
def test_clusters_filter_by_environment(dba):
    make_monitored_cluster("pg-a", environment="production")
    make_monitored_cluster("pg-b", environment="staging")
    assert _names(_client(dba).get("/api/clusters/", {"environment": "staging"})) == ["pg-b"]


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_a_cluster_page_costs_the_same_queries_for_3_or_40_clusters(
    dba, django_assert_max_num_queries
):
    api = _client(dba)
    for i in range(3):
        make_monitored_cluster(f"pg-{i:02}")
    few = {path: _queries(api, path) for path in ("/api/clusters/", "/api/nodes/")}
    for i in range(3, 40):
        make_monitored_cluster(f"pg-{i:02}")
    with django_assert_max_num_queries(few["/api/clusters/"]):
        assert len(api.get("/api/clusters/").json()["results"]) == 40
    with django_assert_max_num_queries(few["/api/nodes/"]):
        assert len(api.get("/api/nodes/").json()["results"]) == 100


@pytest.mark.django_db
def test_an_unknown_cluster_or_node_is_404(dba):
    api = _client(dba)
    assert api.get("/api/clusters/999999/").status_code == 404
    assert api.get("/api/nodes/999999/").status_code == 404


# --- who may read -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.django_db
def test_without_credentials_the_api_is_401(path):
    assert APIClient().get(path).status_code == 401


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.django_db
def test_helpdesk_may_not_read_monitoring(helpdesk, path):
    make_monitored_cluster("pg-a")
    assert _client(helpdesk).get(path).status_code == 403


@pytest.mark.django_db
def test_a_manager_reads_with_a_session(manager, alerts):
    api = APIClient()
    api.force_login(manager)
    db1 = Node.objects.get(name="pg-a-db1")
    for path in ("/api/clusters/", "/api/nodes/", f"/api/samples/?node={db1.pk}", "/api/alerts/"):
        assert api.get(path).status_code == 200, path


@pytest.mark.django_db
def test_the_monitoring_api_is_read_only(dba):
    cluster = make_monitored_cluster("pg-a")
    api = _client(dba)
    assert api.post("/api/clusters/", {"name": "x"}).status_code == 405
    assert api.delete(f"/api/clusters/{cluster.pk}/").status_code == 405
    assert api.post("/api/samples/", {}).status_code == 405
    assert api.patch("/api/alerts/1/", {}).status_code == 405


@pytest.mark.django_db
def test_the_schema_has_the_monitoring_endpoints(dba):
    api = APIClient()
    api.force_login(dba)
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = set(response.json()["paths"])
    assert {"/api/clusters/", "/api/clusters/{id}/", "/api/nodes/", "/api/nodes/{id}/",
            "/api/samples/", "/api/alerts/", "/api/alerts/{id}/"} <= paths  # fmt: skip
    assert "/metrics" not in paths


@pytest.mark.django_db
def test_no_credential_is_exposed_by_the_node_api(dba):
    from console.crypto import encrypt
    from console.models import Credential

    secret = "s3cret-for-the-node-api"
    cred = Credential.objects.create(name="c", kind="password", secret_token=encrypt(secret))
    make_monitored_cluster("pg-a")
    Node.objects.filter(name="pg-a-db1").update(db_credential=cred, known_hosts="ssh-ed25519 AAA")
    body = _client(dba).get("/api/nodes/").content
    assert secret.encode() not in body and b"known_hosts" not in body
    assert b"credential" not in body
