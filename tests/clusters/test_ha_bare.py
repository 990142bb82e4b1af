# ruff: noqa: F811  (bare, place and dba_user are test_provision_lab's fixtures, imported)
"""Issue 8 end to end on the lab's bare hosts: a cluster provisioned from nothing on bare1
(clusters.provision), a synchronous hot standby on bare2, then pgpool-II deployed in front of
them by clusters.ha on lb1 (its own port, PCP port and directory under LAB_DIR: the lab's own
pgpool-II keeps running): a commit through pgpool-II is on the standby at once, and a read-only
query through pgpool-II is served by the standby (inet_server_addr, SHOW POOL_NODES select_cnt).
Servers and directories are removed afterwards."""

import os
import secrets

import psycopg
import pytest

from clusters.ha import deploy, remote
from clusters.models import Cluster, Node
from clusters.provision.pg import start_provision
from clusters.provision.standby import start_add_standby
from console.models import AuditEntry, Credential
from console.secrets import store_credential
from tests.clusters.test_provision_lab import (  # noqa: F401  (fixtures)
    PASSWORD,
    _run,
    _spec,
    _standby_spec,
    bare,
    dba_user,
    place,
)

pytestmark = pytest.mark.django_db(transaction=True)

POOL_PORT, PCP_PORT = 9997, 9897  # beside the lab's own pgpool-II (9999, 9898) on lb1


@pytest.fixture
def pool_dir(place):
    """Where this test's pgpool-II keeps its files; stopped before `place` is removed."""
    directory = place / "pgpool"
    yield directory
    from clusters.models import HaSetup

    for setup in HaSetup.objects.filter(directory=str(directory)):
        deploy.stop_pgpool(setup, remote.call())


def test_provisioned_cluster_with_pgpool_in_front(lab, bare, place, pool_dir, dba_user):
    job = _run(start_provision(bare["bare1"], _spec(place, bare["bare1"], "ha-b"), PASSWORD,
                               actor=dba_user))  # fmt: skip
    assert job.status == "succeeded", job.error
    cluster = Cluster.objects.get(name="ha-b")
    sspec = _standby_spec(place, bare["bare2"], "ha-b", "ha_b_s1", sync_method="FIRST",
                          synchronous_commit="remote_apply")  # fmt: skip
    job = _run(start_add_standby(cluster, bare["bare2"], sspec, actor=dba_user))
    assert job.status == "succeeded", job.error
    primary, standby = cluster.nodes.get(role="primary"), cluster.nodes.get(role="standby")

    lb1 = Node.objects.get(name="lb1")
    pool = Node.objects.create(
        cluster=cluster, name="ha-b-pool", service=Node.Service.PGPOOL,
        role=Node.Role.BALANCER, address=lb1.address, known_hosts=lb1.known_hosts,
        ssh_credential=lb1.ssh_credential, db_port=POOL_PORT,
        db_credential=Credential.objects.get(name="ha-b-admin"),
    )  # fmt: skip
    pcp = store_credential("ha-b-pcp", "pcp-password", secrets.token_urlsafe(16), actor=None,
                           username="pcpadmin", source=AuditEntry.Source.CLI)  # fmt: skip
    setup = deploy.save_setup(
        cluster, pgpool=pool, directory=str(pool_dir), pcp_port=PCP_PORT, pcp_credential=pcp,
        replication_credential=None, client_networks=[os.environ["LAB_NET"]],
        weights={primary.name: 0, standby.name: 1}, actor=dba_user,
    )  # fmt: skip
    found = deploy.deploy_pgpool(setup, actor=dba_user)
    assert found["writes_to"] == primary.address
    assert found["reads_served_by"] == [standby.address]
    setup.refresh_from_db()
    assert setup.backend_of(standby)["application_name"] == "ha_b_s1"
    assert setup.backend_of(standby)["synchronous"] is True

    def through_pool():
        return psycopg.connect(host=pool.address, port=POOL_PORT, user="postgres",
                               password=PASSWORD, dbname="postgres", connect_timeout=5,
                               autocommit=True)  # fmt: skip

    with through_pool() as conn:
        conn.execute("CREATE TABLE ha_bare (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO ha_bare VALUES (1, 'through pgpool-II')")
    with psycopg.connect(host=standby.address, user="postgres", password=PASSWORD,
                         dbname="postgres", connect_timeout=5) as conn:  # fmt: skip
        # remote_apply: the commit through pgpool-II is readable on the standby at once
        assert conn.execute("SELECT note FROM ha_bare").fetchall() == [("through pgpool-II",)]
    with through_pool() as conn:
        nodes = _pool_nodes(conn)
        served = conn.execute("SELECT inet_server_addr()::text, count(*) FROM ha_bare").fetchone()
        assert served[0].split("/")[0] == standby.address and served[1] == 1
        after = _pool_nodes(conn)
    standby_id = str(setup.backend_id(standby))
    assert int(after[standby_id]["select_cnt"]) > int(nodes[standby_id]["select_cnt"])
    assert after[standby_id]["replication_sync_state"] == "sync"


def _pool_nodes(conn) -> dict[str, dict]:
    cur = conn.execute("SHOW POOL_NODES")
    names = [c.name for c in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}
