"""pgpool-II deployed by the console in front of the lab's db1 (primary) and db2 (synchronous
standby), on lb1, in a directory of this lab (LAB_DIR/ha-pgpool) on the lab pgpool-II's port
after stopping it (rebuild_parts gives the lab its own back afterwards): SHOW POOL_NODES, a
write answered by the primary, a read served by the standby, pool_passwd AES entries with no
password in any audit entry or job log; PCP detach and attach through the console."""

import os
from pathlib import Path

import psycopg
import pytest

from clusters.ha import config, deploy, remote
from clusters.ha import ops as ha_ops
from clusters.models import Cluster, HaSetup, Node
from console import audit
from console.lab import faults
from console.lab.demo import register_demo
from console.models import AuditEntry
from console.secrets import store_credential

pytestmark = pytest.mark.django_db(transaction=True)

APP_USER, APP_PASSWORD = "ha_app", "ha-app-password-5e1f"


def lab_records(lab) -> dict:
    return lab.load()["parts"]


def superuser(host: str, **kw) -> psycopg.Connection:
    return psycopg.connect(host=host, port=5432, dbname="postgres", user="postgres",
                           password=os.environ["LAB_PG_PASSWORD"], connect_timeout=3,
                           autocommit=True, **kw)  # fmt: skip


def through_pgpool(user: str = APP_USER, password: str = APP_PASSWORD, **kw):
    kw.setdefault("connect_timeout", 5)
    return psycopg.connect(host=os.environ["LAB_PGPOOL_HOST"], port=9999, dbname="postgres",
                           user=user, password=password, **kw)  # fmt: skip


def ensure_app_role() -> None:
    with superuser(os.environ["LAB_PG_HOST"]) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_USER]).fetchone():
            conn.execute(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'")
        conn.execute(f"GRANT ALL ON SCHEMA public TO {APP_USER}")


def make_setup(lab, actor=None) -> HaSetup:
    """The lab registered (lab-pg: db1, db2, lb1) and an HaSetup for it: PCP and replication
    credentials from the lab, the app role in pool_passwd, LAB_DIR/ha-pgpool on lb1."""
    register_demo(os.environ)
    records = lab_records(lab)
    src = AuditEntry.Source.CLI
    pcp = store_credential("ha-pcp", "pcp-password", records["pgpool"]["pcp_password"],
                           actor=None, username="pcpadmin", source=src)  # fmt: skip
    repl = store_credential("ha-replication", "password",
                            records["primary"]["replication_password"],
                            actor=None, username="replicator", source=src)  # fmt: skip
    store_credential("ha-app", "password", APP_PASSWORD, actor=None, username=APP_USER, source=src)
    cluster = Cluster.objects.get(name="lab-pg")
    return deploy.save_setup(
        cluster, pgpool=Node.objects.get(name="lb1"), directory=f"{lab.dir}/ha-pgpool",
        pcp_credential=pcp, replication_credential=repl, client_networks=[os.environ["LAB_NET"]],
        pool_users=["ha-app"], weights={"db1": 1, "db2": 1}, actor=actor, source=src,
    )  # fmt: skip


@pytest.fixture
def ha_setup(lab, rebuild_parts):
    """The lab's own pgpool-II stopped, ours deployed on lb1:9999; ours stopped afterwards."""
    rebuild_parts("primary", "standby", "pgpool")
    faults.stop_server(lab, "pgpool")
    if not (lab.parts["primary"].running() and lab.parts["standby"].running()):
        # An earlier test of the module failed over: db1 primary, db2 its standby again.
        lab.up(["primary", "standby"], report=lambda line: None)
    ensure_app_role()
    setup = make_setup(lab)
    yield setup
    setup.refresh_from_db()
    deploy.stop_pgpool(setup, remote.call())


def test_deploy_routes_writes_to_primary_and_reads_to_standby(
    ha_setup, lab, assert_no_secret_stored
):
    found = deploy.deploy_pgpool(ha_setup)
    db1, db2 = os.environ["LAB_PG_HOST"], os.environ["LAB_PG_STANDBY_HOST"]
    assert found["writes_to"] == db1
    assert db2 in found["reads_served_by"]
    nodes = {n["hostname"]: n for n in found["nodes"]}
    assert nodes[db1]["role"] == "primary" and nodes[db2]["role"] == "standby"
    assert nodes[db2]["replication_sync_state"] == "sync"
    # A commit through pgpool-II is on the standby at once (remote_apply); the app role logs in
    # with SCRAM thanks to its AES pool_passwd entry.
    with through_pgpool(autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ha_probe (id int)")
        conn.execute("INSERT INTO ha_probe VALUES (42)")
    with superuser(db2) as conn:
        assert conn.execute("SELECT count(*) FROM ha_probe WHERE id = 42").fetchone()[0] >= 1
    passwd = Path(lab.dir, "ha-pgpool", "pool_passwd").read_text()
    assert f"{APP_USER}:AES" in passwd and "postgres:AES" in passwd
    assert APP_PASSWORD not in passwd
    entry = AuditEntry.objects.filter(action=audit.HA_PGPOOL_DEPLOYED).latest("id")
    assert entry.status == "succeeded" and "reads served by" in entry.output
    records = lab_records(lab)
    assert_no_secret_stored(APP_PASSWORD, os.environ["LAB_PG_PASSWORD"],
                            records["pgpool"]["pcp_password"],
                            records["primary"]["replication_password"])  # fmt: skip


def test_pcp_detach_and_attach_a_standby(ha_setup):
    deploy.deploy_pgpool(ha_setup)
    db2 = Node.objects.get(name="db2")
    ha_ops.pcp_operation(ha_setup, "detach", db2)
    assert remote.pool_nodes(ha_setup)[1]["status"] == "down"
    ha_ops.pcp_operation(ha_setup, "attach", db2)
    remote.wait_for(lambda: remote.pool_nodes(ha_setup)[1]["status"] in ("up", "waiting"), 20,
                    "db2 attached")  # fmt: skip
    assert config.parse_pcp_node_info("") == {}
