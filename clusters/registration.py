"""Actions: register a cluster from its primary (discovery), and rediscover one to flag drift.

The DBA's secrets wait in PendingRegistration.secrets_token, encrypted (console.crypto), until
every host key and the topology are confirmed; only then do they become Credentials, with the
cluster and its nodes, in one transaction. A failed or finished registration wipes them.
"""

import json
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from clusters.actions import NODE_FACTS, NodeSpec, RegistrationRefused, register_cluster
from clusters.discovery import (
    Discovery,
    DiscoveryFailed,
    FoundNode,
    discover_mariadb,
    discover_postgresql,
)
from clusters.models import Cluster, ClusterDrift, Node, PendingRegistration
from console import audit, crypto, jobs
from console.errors import ExpectedFailure
from console.executor import MysqlTarget, PgTarget, SshTarget
from console.executor.ssh import fetch_host_keys
from console.models import AuditEntry, Job
from console.secrets import store_credential

FACTS = NODE_FACTS
REGISTRATION_MAX_AGE = timedelta(hours=1)


def start_registration(fields: dict, secrets: dict, *, actor) -> PendingRegistration:
    """Fetch the primary's SSH host keys and keep the registration pending their confirmation.

    `fields` are PendingRegistration's plain fields; `secrets` holds ssh_key, db_password and
    pcp_password, stored only encrypted. Raises HostUnreachable (nothing saved) when the
    primary's SSH server cannot be reached, RegistrationRefused when the name is taken.
    """
    if Cluster.objects.filter(name=fields["name"]).exists():
        raise RegistrationRefused(f"a cluster named {fields['name']!r} is already registered")
    keys = fetch_host_keys(fields["address"], fields.get("ssh_port", 22))
    token = crypto.encrypt(json.dumps({k: v for k, v in secrets.items() if v}))
    return PendingRegistration.objects.create(
        user=actor, known_hosts=keys, secrets_token=token, **fields
    )


def confirm_host_key(pending: PendingRegistration, *, actor) -> Job | None:
    """Record that the DBA confirmed the primary's host key and enqueue discovery; once only."""
    with transaction.atomic():
        claimed = PendingRegistration.objects.filter(
            pk=pending.pk, confirmed=False, status=PendingRegistration.Status.KEY_FETCHED
        ).update(confirmed=True, status=PendingRegistration.Status.DISCOVERING)
        if not claimed:
            return None
        return jobs.enqueue(
            "clusters.discover_registration", f"Discover cluster {pending.name}",
            user=actor, params={"registration": pending.pk},
        )  # fmt: skip


def _secrets(pending: PendingRegistration) -> dict:
    token = bytes(pending.secrets_token)
    return json.loads(crypto.decrypt(token)) if token else {}


def _fail(pending: PendingRegistration, message: str) -> None:
    PendingRegistration.objects.filter(pk=pending.pk).update(
        status=PendingRegistration.Status.FAILED, error=message[:2000], secrets_token=b""
    )


def discover_registration(pending: PendingRegistration, *, actor=None, job=None) -> Discovery:
    """Run discovery for a pending registration whose primary host key was confirmed.

    Guarantees: nothing runs unless the key was confirmed (DiscoveryFailed); on any expected
    failure the registration is marked failed with the message and its secrets are wiped, and
    the error is raised again; nothing is registered either way.
    """
    if not pending.confirmed:
        raise DiscoveryFailed("the primary's host key was not confirmed: nothing was run")
    if pending.status != PendingRegistration.Status.DISCOVERING:
        raise DiscoveryFailed(f"this registration is {pending.get_status_display()}")
    secrets = _secrets(pending)
    ssh = SshTarget(name=pending.name, host=pending.address, port=pending.ssh_port,
                    username=pending.ssh_user, known_hosts=pending.known_hosts,
                    private_key=secrets.get("ssh_key", ""))  # fmt: skip
    try:
        found = _discover(pending, ssh, secrets, actor=actor, job=job)
    except ExpectedFailure as e:
        _fail(pending, str(e))
        raise
    PendingRegistration.objects.filter(pk=pending.pk).update(
        status=PendingRegistration.Status.DISCOVERED, discovery=found.as_dict()
    )
    return found


def _discover(pending, ssh: SshTarget, secrets: dict, **call) -> Discovery:
    password = secrets.get("db_password", "")
    if pending.kind == Cluster.Kind.MARIADB:
        db = MysqlTarget(name=pending.name, host=pending.address, port=pending.db_port,
                         username=pending.db_user, password=password)  # fmt: skip
        return discover_mariadb(ssh, db, **call)
    db = PgTarget(name=pending.name, host=pending.address, port=pending.db_port,
                  username=pending.db_user, password=password)  # fmt: skip
    pgpool = None
    if pending.pgpool_address:
        pgpool = PgTarget(name=f"{pending.name}-pgpool", host=pending.pgpool_address,
                          port=pending.pgpool_port or 9999, username=pending.db_user,
                          password=password)  # fmt: skip
    return discover_postgresql(ssh, db, pgpool=pgpool, **call)


def _store_secrets(pending: PendingRegistration, secrets: dict, actor) -> dict[str, str]:
    names = {}
    for key, kind, suffix, username in (
        ("ssh_key", "ssh-key", "ssh", pending.ssh_user),
        ("db_password", "password", "db", pending.db_user),
        ("pcp_password", "pcp-password", "pcp", pending.pcp_user),
    ):
        if secrets.get(key):
            name = f"{pending.name}-{suffix}"
            store_credential(name, kind, secrets[key], actor=actor, username=username)
            names[key] = name
    return names


def _spec(node: FoundNode, pending: PendingRegistration, credentials: dict) -> NodeSpec:
    if not node.known_hosts.strip():
        raise RegistrationRefused(f"{node.name}: no SSH host key to confirm; nothing registered")
    return NodeSpec(
        name=node.name, service=node.service, address=node.address, known_hosts=node.known_hosts,
        role=node.role, ssh_user=pending.ssh_user, ssh_credential=credentials.get("ssh_key"),
        ssh_port=pending.ssh_port, db_port=node.db_port,
        db_credential=credentials.get("db_password"), data_directory=node.data_directory,
        facts={k: getattr(node, k) for k in FACTS},
    )  # fmt: skip


def register_discovered(pending: PendingRegistration, *, actor) -> Cluster:
    """Register the cluster as discovered, once the DBA confirmed every node's host key.

    Guarantees: one transaction stores the credentials, the cluster and its nodes with their
    facts and the audit entries; RegistrationRefused (nothing saved) when the registration is
    not discovered yet or a node has no host key; the pending secrets are wiped after.
    """
    if pending.status != PendingRegistration.Status.DISCOVERED:
        raise RegistrationRefused(f"this registration is {pending.get_status_display()}")
    found = Discovery.from_dict(pending.discovery)
    with transaction.atomic():
        credentials = _store_secrets(pending, _secrets(pending), actor)
        specs = [_spec(node, pending, credentials) for node in found.nodes]
        cluster = register_cluster(pending.name, pending.kind, environment=pending.environment,
                                   nodes=specs, actor=actor)  # fmt: skip
        audit.append(
            audit.CLUSTER_DISCOVERED, actor=actor, source=AuditEntry.Source.UI,
            target=f"cluster:{cluster.name}",
            output=f"registered from {pending.address}: "
            + ", ".join(f"{n.name} ({n.role})" for n in found.nodes),
        )  # fmt: skip
        PendingRegistration.objects.filter(pk=pending.pk).update(
            status=PendingRegistration.Status.REGISTERED, secrets_token=b""
        )
    return cluster


def expire_registrations(max_age: timedelta = REGISTRATION_MAX_AGE) -> int:
    """End registrations left unfinished for `max_age`: failed, their secrets wiped; a count."""
    open_statuses = [
        PendingRegistration.Status.KEY_FETCHED,
        PendingRegistration.Status.DISCOVERING,
        PendingRegistration.Status.DISCOVERED,
    ]
    return PendingRegistration.objects.filter(
        status__in=open_statuses, created__lt=timezone.now() - max_age
    ).update(
        status=PendingRegistration.Status.FAILED,
        error="expired before it was finished; nothing was registered",
        secrets_token=b"",
    )


# --- Rediscovery ---------------------------------------------------------------------------


def _entry_points(cluster: Cluster) -> list[Node]:
    service = Node.Service.MARIADB if cluster.kind == Cluster.Kind.MARIADB else "postgresql"
    nodes = list(
        cluster.nodes.filter(service=service).select_related("ssh_credential", "db_credential")
    )
    return sorted(nodes, key=lambda n: n.role != Node.Role.PRIMARY)


def _rediscover(cluster: Cluster, **call) -> Discovery:
    entry_points = _entry_points(cluster)
    if not entry_points:
        raise DiscoveryFailed(f"{cluster.name} has no database server registered")
    if cluster.kind == Cluster.Kind.MARIADB:
        node = entry_points[0]
        return discover_mariadb(node.ssh_target(), node.mysql_target(), **call)
    balancer = cluster.nodes.filter(service=Node.Service.PGPOOL).first()
    pgpool = balancer.pg_target() if balancer else None
    registered = cluster.nodes.exclude(service=Node.Service.NONE).select_related("ssh_credential")
    targets = {n.address: n.ssh_target() for n in registered}
    errors = []
    for node in entry_points:
        try:
            return discover_postgresql(node.ssh_target(), node.pg_target(), pgpool=pgpool,
                                       ssh_targets=targets, **call)  # fmt: skip
        except ExpectedFailure as e:
            errors.append(f"{node.name}: {e}")
    raise DiscoveryFailed("no primary found: " + "; ".join(errors))


def _drift(cluster: Cluster, kind: str, name: str, address: str, detail: str) -> ClusterDrift:
    return ClusterDrift(
        cluster=cluster, kind=kind, node_name=name, address=address, detail=detail[:255]
    )


def _drifts(cluster: Cluster, found: Discovery) -> list[ClusterDrift]:
    drifts = []
    registered = list(cluster.nodes.exclude(service=Node.Service.NONE))
    for node in registered:
        now = found.node_at(node.address, node.service)
        if now is None:
            detail = f"{node.name} ({node.role}) was not found"
            drifts.append(
                _drift(cluster, ClusterDrift.Kind.VANISHED, node.name, node.address, detail)
            )
        elif now.role != node.role:
            detail = f"{node.name} is {now.role}, registered as {node.role}"
            drifts.append(
                _drift(cluster, ClusterDrift.Kind.ROLE_CHANGED, node.name, node.address, detail)
            )
    addresses = {(n.address, n.service) for n in registered}
    for now in found.nodes:
        if (now.address, now.service) not in addresses:
            detail = f"{now.role} {now.name} at {now.address} is not registered"
            drifts.append(
                _drift(cluster, ClusterDrift.Kind.APPEARED, now.name, now.address, detail)
            )
    return drifts


def rediscover_cluster(cluster: Cluster, *, actor=None, job=None, source=AuditEntry.Source.UI):
    """Discover `cluster` again, refresh its nodes' facts and record drift; return new drifts.

    Guarantees: registered roles and nodes are never changed (drift is for the DBA to act on);
    a drift already recorded is not recorded again, so an unchanged cluster adds nothing;
    each new drift and each node whose facts changed is audited in the same transaction.
    """
    found = _rediscover(cluster, actor=actor, job=job, source=source)
    new = []
    with transaction.atomic():
        for drift in _drifts(cluster, found):
            same = {"kind": drift.kind, "address": drift.address, "detail": drift.detail}
            if ClusterDrift.objects.filter(cluster=cluster, **same).exists():
                continue
            drift.save()
            new.append(drift)
            audit.append(audit.CLUSTER_DRIFT, actor=actor, source=source,
                         target=f"cluster:{cluster.name}", node=drift.node_name,
                         output=drift.detail)  # fmt: skip
        for node in cluster.nodes.exclude(service=Node.Service.NONE):
            _refresh_facts(node, found.node_at(node.address, node.service), actor, source)
    return new


def _refresh_facts(node: Node, now: FoundNode | None, actor, source: str) -> None:
    if now is None or not now.version:
        return
    facts = {k: getattr(now, k) for k in FACTS if getattr(now, k) not in ("", None)}
    changed = {k: v for k, v in facts.items() if getattr(node, k) != v}
    Node.objects.filter(pk=node.pk).update(last_discovered=timezone.now(), **changed)
    if changed:
        facts = ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
        audit.append(
            audit.CLUSTER_DISCOVERED,
            actor=actor,
            source=source,
            target=f"node:{node.name}",
            node=node.name,
            output=f"facts: {facts}",
        )
