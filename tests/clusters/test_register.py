"""Registering clusters and servers: audited, idempotent, refused cleanly, reachable."""

from pathlib import Path

import pytest
from django.test import Client

from clusters.actions import NodeSpec, RegistrationRefused, register_cluster, register_host
from clusters.models import Cluster, Node
from console import audit, secrets
from console.executor import run_command
from console.executor.ssh import fingerprint
from console.models import AuditEntry


@pytest.fixture
def lab_node(lab_env, dba) -> NodeSpec:
    secrets.store_credential(
        "lab-ssh-key",
        "ssh-key",
        Path(lab_env["LAB_SSH_KEY"]).read_text(),
        actor=dba,
        username="root",
    )
    return NodeSpec(
        name="lab-host",
        service=Node.Service.NONE,
        address=lab_env["LAB_SSH_HOST"],
        ssh_port=int(lab_env["LAB_SSH_PORT"]),
        ssh_credential="lab-ssh-key",
        known_hosts=Path(lab_env["LAB_SSH_KNOWN_HOSTS"]).read_text(),
    )


def _register(spec: NodeSpec, actor, name: str = "lab-pg") -> Cluster:
    return register_cluster(
        name, Cluster.Kind.POSTGRESQL, environment="lab", nodes=[spec], actor=actor
    )


@pytest.mark.django_db(transaction=True)
def test_a_registered_node_is_reached_with_its_recorded_key_and_credential(lab_node, dba):
    cluster = _register(lab_node, dba)
    node = cluster.nodes.get()
    result = run_command(node, ["id", "-un"], actor=dba)
    assert result.stdout.strip() == "root"
    assert AuditEntry.objects.filter(action=audit.REMOTE_COMMAND, node="lab-host").count() == 2


@pytest.mark.django_db
def test_registering_twice_changes_nothing_the_second_time(lab_node, dba):
    _register(lab_node, dba)
    before = AuditEntry.objects.count()
    _register(lab_node, dba)
    assert AuditEntry.objects.count() == before
    assert AuditEntry.objects.filter(action=audit.CLUSTER_REGISTERED).count() == 1
    assert AuditEntry.objects.filter(action=audit.NODE_REGISTERED, target="node:lab-host").exists()


@pytest.mark.django_db
def test_an_unknown_credential_is_refused_and_nothing_is_saved(lab_node, dba):
    spec = NodeSpec(**{**lab_node.__dict__, "db_credential": "nope"})
    with pytest.raises(RegistrationRefused, match="no stored credential named 'nope'"):
        _register(spec, dba)
    assert not Cluster.objects.exists() and not Node.objects.exists()


@pytest.mark.django_db
def test_a_node_without_a_valid_host_key_is_refused(lab_node, dba):
    for bad in ("", "not a key"):
        spec = NodeSpec(**{**lab_node.__dict__, "known_hosts": bad})
        with pytest.raises(RegistrationRefused, match="lab-host"):
            _register(spec, dba)
    assert not Node.objects.exists()


@pytest.mark.django_db
def test_a_node_of_another_cluster_is_refused(lab_node, dba):
    _register(lab_node, dba, name="first")
    with pytest.raises(RegistrationRefused, match="already registered in first"):
        _register(lab_node, dba, name="second")
    assert not Cluster.objects.filter(name="second").exists()


@pytest.mark.django_db
def test_cluster_page_lists_nodes_with_their_host_key_fingerprints(lab_node, dba):
    _register(lab_node, dba)
    register_host(NodeSpec(**{**lab_node.__dict__, "name": "bare"}), actor=dba)
    client = Client()
    client.force_login(dba)
    page = client.get("/clusters/inventory/").content.decode()
    assert "lab-pg" in page and "lab-host" in page and "Servers in no cluster" in page
    assert fingerprint(lab_node.known_hosts.splitlines()[0]) in page


@pytest.mark.django_db
def test_cluster_page_refuses_helpdesk_wrong_method_and_anonymous(helpdesk, dba):
    client = Client()
    assert client.get("/clusters/inventory/").status_code == 302
    client.force_login(helpdesk)
    assert client.get("/clusters/inventory/").status_code == 403
    client.force_login(dba)
    assert client.post("/clusters/inventory/").status_code == 405
