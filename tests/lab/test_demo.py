"""`lab up --demo`: the lab's clusters and servers registered in the console, and reachable."""

import os

import pytest

from clusters.models import Cluster, Node
from console.executor import run_command, run_sql
from console.lab.demo import known_hosts_of, register_demo
from console.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(lab_env):
    return register_demo(os.environ)


def test_demo_registers_the_lab_clusters_and_servers(demo):
    assert sorted(Cluster.objects.values_list("name", flat=True)) == ["lab-mariadb", "lab-pg"]
    roles = dict(Node.objects.filter(cluster__name="lab-pg").values_list("name", "role"))
    assert roles == {"db1": "primary", "db2": "standby", "lb1": "balancer"}
    assert set(Node.objects.filter(cluster__isnull=True).values_list("name", flat=True)) == {
        "bare1", "bare2",
    }  # fmt: skip


def test_every_registered_server_answers_with_its_own_hostname(demo):
    for node in Node.objects.all():
        result = run_command(node, ["hostname"])
        assert result.stdout.strip() == node.name


def test_registered_databases_answer_in_their_roles(demo):
    db1, db2, lb1, my1 = (Node.objects.get(name=n) for n in ("db1", "db2", "lb1", "my1"))
    assert run_sql(db1.pg_target(), "SELECT pg_is_in_recovery()").rows == [(False,)]
    assert run_sql(db2.pg_target(), "SELECT pg_is_in_recovery()").rows == [(True,)]
    assert run_sql(lb1.pg_target(), "SELECT 1").rows == [(1,)]
    assert run_sql(my1.mysql_target(), "SELECT 1").rows == [(1,)]


def test_running_the_demo_again_changes_nothing(demo):
    before = AuditEntry.objects.count()
    register_demo(os.environ)
    assert AuditEntry.objects.count() == before


def test_a_node_trusts_only_its_own_host_key():
    text = "db1,10.77.0.11 ssh-ed25519 AAAA1\n[10.77.0.12]:22 ssh-ed25519 AAAA2\nbad\n"
    assert known_hosts_of(text, "10.77.0.11") == "db1,10.77.0.11 ssh-ed25519 AAAA1"
    assert known_hosts_of(text, "10.77.0.12") == "[10.77.0.12]:22 ssh-ed25519 AAAA2"
    assert known_hosts_of(text, "10.77.0.1") == ""
