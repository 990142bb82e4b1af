"""Discovery: a cluster registered from its primary alone, clean failures, rediscovery and drift."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from clusters import registration
from clusters.actions import NodeSpec, register_cluster
from clusters.discovery import DiscoveryFailed, discover_mariadb
from clusters.models import Cluster, ClusterDrift, Node, PendingRegistration
from clusters.tasks import discover_registration, rediscover_cluster
from console import audit, jobs
from console.executor import HostUnreachable, MysqlTarget, SshTarget
from console.lab.demo import known_hosts_of, register_demo
from console.models import AuditEntry, Credential, Job
from tests.factories import make_job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lab(lab_env) -> dict:
    """The lab's variables, including the HA ones lab_env does not list."""
    names = ("LAB_PG_STANDBY_HOST", "LAB_PGPOOL_HOST", "LAB_PGPOOL_PORT", "LAB_DB1_SSH_HOST")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.fail(f"lab HA variables unset: {', '.join(missing)}", pytrace=False)
    return {**lab_env, **{k: v for k, v in os.environ.items() if k.startswith("LAB_")}}


def _fields(lab: dict, **overrides) -> dict:
    fields = {
        "name": "pg-main", "kind": Cluster.Kind.POSTGRESQL, "environment": "lab",
        "address": lab["LAB_PG_HOST"], "ssh_port": 22, "ssh_user": "root",
        "db_port": int(lab["LAB_PG_PORT"]), "db_user": lab["LAB_PG_USER"],
        "pgpool_address": lab["LAB_PGPOOL_HOST"], "pgpool_port": int(lab["LAB_PGPOOL_PORT"]),
    }  # fmt: skip
    return {**fields, **overrides}


def _secrets(lab: dict, **overrides) -> dict:
    secrets = {
        "ssh_key": Path(lab["LAB_SSH_KEY"]).read_text(),
        "db_password": lab["LAB_PG_PASSWORD"],
    }
    return {**secrets, **overrides}


def _discover(pending: PendingRegistration, dba, capture) -> Job:
    with capture(execute=False):
        job = registration.confirm_host_key(pending, actor=dba)
    jobs.run_job(job.pk, discover_registration.body)
    job.refresh_from_db()
    return job


def _nothing_saved() -> bool:
    return not (Cluster.objects.exists() or Node.objects.exists() or Credential.objects.exists())


def test_the_primary_standby_and_pgpool_are_discovered_from_the_primary_alone(
    lab, dba, django_capture_on_commit_callbacks
):
    pending = registration.start_registration(_fields(lab), _secrets(lab), actor=dba)
    job = _discover(pending, dba, django_capture_on_commit_callbacks)
    assert job.status == Job.Status.SUCCEEDED, job.error
    pending.refresh_from_db()
    registration.register_discovered(pending, actor=dba)

    nodes = {n.address: n for n in Cluster.objects.get(name="pg-main").nodes.all()}
    primary, standby = nodes[lab["LAB_PG_HOST"]], nodes[lab["LAB_PG_STANDBY_HOST"]]
    assert (primary.role, standby.role) == (Node.Role.PRIMARY, Node.Role.STANDBY)
    assert nodes[lab["LAB_PGPOOL_HOST"]].service == Node.Service.PGPOOL
    assert primary.version_num >= 100000 and primary.timeline >= 1
    assert primary.system_identifier == standby.system_identifier != ""
    assert primary.data_directory and primary.config_file.endswith("postgresql.conf")
    assert primary.log_path.startswith("/") and primary.last_discovered is not None
    assert pending.discovery["warnings"] == []
    assert Credential.objects.filter(name__startswith="pg-main-").count() == 2
    assert bytes(PendingRegistration.objects.get(pk=pending.pk).secrets_token) == b""


def test_a_wrong_database_password_fails_clearly_and_saves_nothing(
    lab, dba, django_capture_on_commit_callbacks
):
    pending = registration.start_registration(
        _fields(lab), _secrets(lab, db_password="wrong-password-1"), actor=dba
    )
    job = _discover(pending, dba, django_capture_on_commit_callbacks)
    assert job.status == Job.Status.FAILED
    assert "password authentication failed" in job.error
    pending.refresh_from_db()
    assert pending.status == PendingRegistration.Status.FAILED
    assert bytes(pending.secrets_token) == b""
    assert _nothing_saved()


def test_an_unreachable_primary_fails_clearly_and_saves_nothing(lab, dba):
    bare2 = lab["LAB_BARE2_SSH_HOST"]
    with pytest.raises(HostUnreachable):
        registration.start_registration(
            _fields(lab, address=bare2, ssh_port=5432), _secrets(lab), actor=dba
        )
    assert _nothing_saved() and not PendingRegistration.objects.exists()


def test_no_database_listening_fails_the_discovery_and_saves_nothing(
    lab, dba, django_capture_on_commit_callbacks
):
    fields = _fields(lab, address=lab["LAB_BARE2_SSH_HOST"], pgpool_address="")
    pending = registration.start_registration(fields, _secrets(lab), actor=dba)
    job = _discover(pending, dba, django_capture_on_commit_callbacks)
    assert job.status == Job.Status.FAILED
    assert "refused" in job.error.lower() or "cannot reach" in job.error.lower()
    assert _nothing_saved()


def test_nothing_runs_before_the_host_key_is_confirmed(lab, dba):
    pending = registration.start_registration(_fields(lab), _secrets(lab), actor=dba)
    before = AuditEntry.objects.count()
    with pytest.raises(DiscoveryFailed, match="not confirmed"):
        registration.discover_registration(pending, actor=dba)
    assert AuditEntry.objects.count() == before
    assert _nothing_saved()


def _demo_cluster(lab, dba) -> Cluster:
    register_demo(lab)
    return Cluster.objects.get(name="lab-pg")


def test_rediscovery_of_an_unchanged_cluster_records_no_drift_and_is_idempotent(lab, dba):
    cluster = _demo_cluster(lab, dba)
    assert registration.rediscover_cluster(cluster, actor=dba) == []
    db1, db2 = Node.objects.get(name="db1"), Node.objects.get(name="db2")
    assert db1.version and db1.system_identifier and db1.last_discovered
    assert db2.log_path.startswith("/") and db2.timeline == db1.timeline
    before = AuditEntry.objects.exclude(action__startswith="remote.").count()
    assert registration.rediscover_cluster(cluster, actor=dba) == []
    assert AuditEntry.objects.exclude(action__startswith="remote.").count() == before
    assert not ClusterDrift.objects.exists()


def test_rediscovery_flags_a_vanished_standby_once(lab, dba):
    cluster = _demo_cluster(lab, dba)
    known = known_hosts_of(Path(lab["LAB_KNOWN_HOSTS"]).read_text(), lab["LAB_BARE1_SSH_HOST"])
    ghost = NodeSpec(name="ghost", service=Node.Service.POSTGRESQL, role=Node.Role.STANDBY,
                     address=lab["LAB_BARE1_SSH_HOST"], known_hosts=known)  # fmt: skip
    register_cluster("lab-pg", cluster.kind, environment="lab", nodes=[ghost], actor=dba)
    drifts = registration.rediscover_cluster(cluster, actor=dba)
    assert [(d.kind, d.node_name) for d in drifts] == [(ClusterDrift.Kind.VANISHED, "ghost")]
    assert AuditEntry.objects.filter(action=audit.CLUSTER_DRIFT, node="ghost").count() == 1
    assert registration.rediscover_cluster(cluster, actor=dba) == []
    assert ClusterDrift.objects.count() == 1


def test_rediscovery_flags_a_changed_role_and_keeps_the_registered_one(lab, dba):
    cluster = _demo_cluster(lab, dba)
    Node.objects.filter(name="db2").update(role=Node.Role.PRIMARY)
    Node.objects.filter(name="db1").update(role=Node.Role.STANDBY)
    drifts = registration.rediscover_cluster(cluster, actor=dba)
    assert sorted((d.kind, d.node_name) for d in drifts) == [
        (ClusterDrift.Kind.ROLE_CHANGED, "db1"),
        (ClusterDrift.Kind.ROLE_CHANGED, "db2"),
    ]
    assert Node.objects.get(name="db2").role == Node.Role.PRIMARY


def test_a_wrong_stored_password_makes_rediscovery_fail_clearly(lab, dba):
    from console.secrets import store_credential

    cluster = _demo_cluster(lab, dba)
    store_credential("lab-pg-postgres", "password", "wrong-password-2", actor=dba,
                     username=lab["LAB_PG_USER"])  # fmt: skip
    with pytest.raises(DiscoveryFailed, match="password authentication failed"):
        registration.rediscover_cluster(cluster, actor=dba)
    assert not ClusterDrift.objects.exists()


def test_a_mariadb_server_is_discovered_with_its_files(lab, dba):
    known = known_hosts_of(Path(lab["LAB_KNOWN_HOSTS"]).read_text(), lab["LAB_MYSQL_HOST"])
    ssh = SshTarget(name="my1", host=lab["LAB_MYSQL_HOST"], known_hosts=known,
                    private_key=Path(lab["LAB_SSH_KEY"]).read_text())  # fmt: skip
    db = MysqlTarget(
        name="my1",
        host=lab["LAB_MYSQL_HOST"],
        port=int(lab["LAB_MYSQL_PORT"]),
        username=lab["LAB_MYSQL_USER"],
        password=lab["LAB_MYSQL_PASSWORD"],
    )
    found = discover_mariadb(ssh, db, actor=dba)
    (server,) = found.nodes
    assert server.role == Node.Role.PRIMARY and "MariaDB" in server.version
    assert server.data_directory.startswith("/") and server.log_path.startswith("/")


def test_the_rediscovery_job_records_drift_in_its_log(lab, dba):
    cluster = _demo_cluster(lab, dba)
    Node.objects.filter(name="db2").update(role=Node.Role.PRIMARY)
    job = make_job(user=dba, kind="clusters.rediscover_cluster", params={"cluster": cluster.pk})
    assert jobs.run_job(job.pk, rediscover_cluster.body) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.result["drifts"] == ["db2 is standby, registered as primary"]


def test_pgpool_not_answering_is_a_warning_not_a_failed_discovery(
    lab, dba, django_capture_on_commit_callbacks
):
    fields = _fields(lab, pgpool_address=lab["LAB_BARE2_SSH_HOST"])
    pending = registration.start_registration(fields, _secrets(lab), actor=dba)
    job = _discover(pending, dba, django_capture_on_commit_callbacks)
    assert job.status == Job.Status.SUCCEEDED, job.error
    pending.refresh_from_db()
    (warning,) = pending.discovery["warnings"]
    assert warning.startswith(f"pgpool-II at {lab['LAB_BARE2_SSH_HOST']}:")
    roles = [n["role"] for n in pending.discovery["nodes"]]
    assert roles == ["primary", "standby", "balancer"]


def test_an_abandoned_registration_expires_and_forgets_its_secrets(lab, dba):
    pending = registration.start_registration(_fields(lab), _secrets(lab), actor=dba)
    assert registration.expire_registrations() == 0
    PendingRegistration.objects.filter(pk=pending.pk).update(
        created=timezone.now() - timedelta(hours=2)
    )
    assert registration.expire_registrations() == 1
    pending.refresh_from_db()
    assert pending.status == PendingRegistration.Status.FAILED
    assert bytes(pending.secrets_token) == b""


def test_a_mariadb_cluster_is_registered_from_its_server(
    lab, dba, django_capture_on_commit_callbacks
):
    fields = _fields(
        lab, name="my-main", kind=Cluster.Kind.MARIADB, address=lab["LAB_MYSQL_HOST"],
        db_port=int(lab["LAB_MYSQL_PORT"]), db_user=lab["LAB_MYSQL_USER"],
        pgpool_address="", pgpool_port=None,
    )  # fmt: skip
    secrets = _secrets(lab, db_password=lab["LAB_MYSQL_PASSWORD"])
    pending = registration.start_registration(fields, secrets, actor=dba)
    job = _discover(pending, dba, django_capture_on_commit_callbacks)
    assert job.status == Job.Status.SUCCEEDED, job.error
    pending.refresh_from_db()
    cluster = registration.register_discovered(pending, actor=dba)
    (server,) = cluster.nodes.all()
    assert (server.service, server.role) == (Node.Service.MARIADB, Node.Role.PRIMARY)
    assert server.version and server.log_path.startswith("/")
    assert registration.rediscover_cluster(cluster, actor=dba) == []
