"""A cluster's state from its nodes' NodeStatus rows: pure, on constructed rows (no database).
The lab's cluster going degraded and back is in test_collect.py."""

from clusters.health import DEGRADED, DOWN, HEALTHY, UNKNOWN, cluster_health
from clusters.models import Cluster, Node, NodeStatus

PG, MARIADB = Cluster.Kind.POSTGRESQL, Cluster.Kind.MARIADB
UP, GONE = NodeStatus.State.UP, NodeStatus.State.DOWN


def _primary(state=UP) -> NodeStatus:
    node = Node(name="db1", service=Node.Service.POSTGRESQL, role=Node.Role.PRIMARY)
    return NodeStatus(node=node, state=state, in_recovery=False if state == UP else None)


def _standby(name="db2", state=UP, replication="streaming", sync="sync", lag=0) -> NodeStatus:
    node = Node(name=name, service=Node.Service.POSTGRESQL, role=Node.Role.STANDBY)
    up = state == UP
    return NodeStatus(
        node=node, state=state, in_recovery=True if up else None,
        replication_state=replication, sync_state=sync, replay_lag_bytes=lag,
    )  # fmt: skip


def _pgpool(state=UP, backends=("up", "up")) -> NodeStatus:
    node = Node(name="lb1", service=Node.Service.PGPOOL, role=Node.Role.BALANCER)
    rows = [
        {"hostname": f"10.0.0.{i}", "port": "5432", "status": s} for i, s in enumerate(backends)
    ]
    return NodeStatus(node=node, state=state, details={"backends": rows})


def test_all_up_with_a_sync_standby_is_healthy():
    health = cluster_health(PG, [_primary(), _standby(lag=128), _pgpool()])
    assert (health.state, health.reasons) == (HEALTHY, [])
    assert (health.standbys, health.standbys_in_sync, health.worst_lag_bytes) == (1, 1, 128)


def test_a_primary_alone_is_healthy():
    assert cluster_health(PG, [_primary()]).state == HEALTHY


def test_an_unreachable_primary_makes_the_cluster_down():
    health = cluster_health(PG, [_primary(GONE), _standby(replication="", sync="")])
    assert health.state == DOWN
    assert health.reasons == ["primary db1 unreachable"]


def test_a_down_standby_degrades_and_leaves_no_sync_standby():
    health = cluster_health(PG, [_primary(), _standby(state=GONE, replication="", sync="")])
    assert health.state == DEGRADED
    assert health.reasons == ["standby db2 is down", "no sync standby"]
    assert health.standbys_in_sync == 0


def test_an_async_standby_only_is_degraded_for_no_sync_standby():
    health = cluster_health(PG, [_primary(), _standby(sync="async")])
    assert (health.state, health.reasons) == (DEGRADED, ["no sync standby"])


def test_a_standby_that_does_not_stream_is_degraded():
    health = cluster_health(PG, [_primary(), _standby(), _standby("db3", replication="", sync="")])
    assert (health.state, health.reasons) == (DEGRADED, ["standby db3 is not streaming"])


def test_a_backend_pgpool_reports_down_degrades_the_cluster():
    health = cluster_health(PG, [_primary(), _standby(), _pgpool(backends=("up", "down"))])
    assert health.state == DEGRADED
    assert health.reasons == ["pgpool-II lb1 reports backend 10.0.0.1:5432 down"]


def test_an_unreachable_pgpool_degrades_the_cluster():
    health = cluster_health(PG, [_primary(), _standby(), _pgpool(state=GONE)])
    assert (health.state, health.reasons) == (DEGRADED, ["pgpool-II lb1 is down"])


def test_the_worst_lag_is_the_largest_of_the_standbys():
    rows = [_primary(), _standby(lag=10), _standby("db3", sync="potential", lag=5000)]
    health = cluster_health(PG, rows)
    assert (health.worst_lag_bytes, health.standbys, health.standbys_in_sync) == (5000, 2, 1)


def test_a_cluster_never_collected_is_unknown():
    assert cluster_health(PG, []).state == UNKNOWN
    node = Node(name="db1", service=Node.Service.POSTGRESQL, role=Node.Role.PRIMARY)
    assert cluster_health(PG, [NodeStatus(node=node)]).state == UNKNOWN


def test_a_mariadb_server_answering_as_primary_is_healthy_and_down_when_it_does_not():
    node = Node(name="my1", service=Node.Service.MARIADB, role=Node.Role.PRIMARY)
    up = NodeStatus(node=node, state=UP, role_seen="primary")
    assert cluster_health(MARIADB, [up]).state == HEALTHY
    assert cluster_health(MARIADB, [NodeStatus(node=node, state=GONE)]).state == DOWN
