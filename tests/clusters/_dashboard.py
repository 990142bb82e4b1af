"""Shared by the dashboard tests (test_dashboard*.py): made-up fleets as the collector leaves
them (NodeStatus rows, summarised with refresh_cluster_status() as the collect job would), the
fleet page's address and query budget, and a query counter that checks no page reads the
samples."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clusters.models import (
    Alert,
    AlertRule,
    Cluster,
    Environment,
    Node,
    NodeStatus,
    Sample,
    SampleRollup,
)
from clusters.status import refresh_cluster_status

FLEET = reverse("clusters:fleet")
MAX_FLEET_QUERIES = 12  # the benchmark's budget per page


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
