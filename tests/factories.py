"""Plain factory functions for tests: users with personas, audit entries, jobs."""

import itertools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from console import audit
from console.models import AuditEntry, Job, JobLogLine

PASSWORD = "correct-horse-battery-staple-7"
_numbers = itertools.count(1)


def make_user(username: str | None = None, *, persona: str | None = None, **fields):
    """A local user (password PASSWORD), in the persona's group when one is given.

    The persona groups exist after migrate (console.access.sync_personas).
    """
    username = username or f"{persona or 'user'}{next(_numbers)}"
    user = get_user_model().objects.create_user(username, password=PASSWORD, **fields)
    if persona:
        user.groups.add(Group.objects.get(name=persona))
    return user


def make_audit_entry(action: str = "test.action", *, actor=None, **fields) -> AuditEntry:
    """An entry appended to the real chain through console.audit.append."""
    fields.setdefault("source", AuditEntry.Source.UI)
    return audit.append(action, actor=actor, **fields)


def make_job(*, user=None, kind: str = "console.verify_audit", **fields) -> Job:
    """A job row as enqueue() would create it, without sending anything to Celery."""
    fields.setdefault("title", kind)
    if user is not None:
        fields.setdefault("user_name", user.get_username())
    return Job.objects.create(kind=kind, user=user, **fields)


def make_log_line(job: Job, message: str, level: str = JobLogLine.Level.INFO) -> JobLogLine:
    return JobLogLine.objects.create(job=job, message=message, level=level)


def make_monitored_cluster(name: str, *, environment: str = "test", polled=None, lag: int = 0):
    """A PostgreSQL cluster as a collection cycle leaves it, without servers: primary
    `<name>-db1`, synchronous standby `<name>-db2`, pgpool-II `<name>-lb1`, their NodeStatus
    rows and the cycle's samples at `polled` (now by default). Returns the cluster."""
    from django.utils import timezone

    from clusters.models import Cluster, Environment, Node, NodeStatus, Sample

    polled = polled or timezone.now()
    env, _ = Environment.objects.get_or_create(name=environment)
    cluster = Cluster.objects.create(name=name, kind=Cluster.Kind.POSTGRESQL, environment=env)
    spec = [("db1", "postgresql", "primary"), ("db2", "postgresql", "standby"),
            ("lb1", "pgpool", "balancer")]  # fmt: skip
    db1, db2, lb1 = Node.objects.bulk_create(
        Node(
            cluster=cluster,
            name=f"{name}-{n}",
            service=service,
            role=role,
            address="192.0.2.1",
            known_hosts="",
        )  # fmt: skip
        for n, service, role in spec
    )
    up = {"state": NodeStatus.State.UP, "reachable": True, "polled": polled, "poll_ms": 15}
    backends = [{"node_id": "0", "hostname": "192.0.2.1", "port": "5432", "status": "up",
                 "role": "primary"}]  # fmt: skip
    NodeStatus.objects.bulk_create([
        NodeStatus(node=db1, role_seen="primary", in_recovery=False, **up),
        NodeStatus(node=db2, role_seen="standby", in_recovery=True, replication_state="streaming",
                   sync_state="sync", replay_lag_bytes=lag, **up),
        NodeStatus(node=lb1, role_seen="balancer", details={"backends": backends}, **up),
    ])  # fmt: skip
    figures = {
        db1: {"up": 1, "connections.active": 2, "connections.idle": 3,
              "connections.used_percent": 5.0, "archive.failed_count": 0,
              "archive.ready_count": 1, "archive.last_archived_age_s": 30},
        db2: {"up": 1, "replication.replay_lag_bytes": lag, "replication.write_lag_bytes": lag,
              "replication.flush_lag_bytes": lag, "replication.replay_lag_s": 0.5},
        lb1: {"up": 1, "pgpool.backends_up": 1, "pgpool.backends_down": 0},
    }  # fmt: skip
    Sample.objects.bulk_create(
        Sample(node=node, metric=metric, ts=polled, value=value)
        for node, values in figures.items()
        for metric, value in values.items()
    )
    return cluster
