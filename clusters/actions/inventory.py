"""Actions on the inventory. Each is idempotent and audits what it changed, in its transaction."""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from clusters.models import Cluster, Environment, Node
from console import audit
from console.executor.ssh import fingerprint
from console.models import AuditEntry, Credential


class RegistrationRefused(ValueError):
    """The registration asks for something inconsistent; the message says what; nothing saved."""


@dataclass(frozen=True)
class NodeSpec:
    """A server to register. Credentials are named console.Credential rows (stored beforehand
    through console.secrets.store_credential), never clear secrets."""

    name: str
    service: str
    address: str
    known_hosts: str
    role: str = Node.Role.NONE
    ssh_port: int = 22
    ssh_user: str = "root"
    ssh_credential: str | None = None
    db_port: int | None = None
    db_credential: str | None = None
    data_directory: str = ""
    facts: dict | None = None  # discovered facts (NODE_FACTS); None leaves stored facts alone


# The Node fields discovery fills (clusters.discovery.FoundNode has the same names).
NODE_FACTS = (
    "version", "version_num", "data_directory", "config_file", "hba_file", "log_path",
    "system_identifier", "timeline",
)  # fmt: skip


def _credential(name: str | None) -> Credential | None:
    if name is None:
        return None
    try:
        return Credential.objects.get(name=name)
    except Credential.DoesNotExist:
        raise RegistrationRefused(f"no stored credential named {name!r}") from None


def _check_known_hosts(spec: NodeSpec) -> None:
    lines = [ln for ln in spec.known_hosts.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise RegistrationRefused(f"{spec.name}: a node needs its confirmed SSH host key")
    for line in lines:
        try:
            fingerprint(line)
        except ValueError:
            raise RegistrationRefused(
                f"{spec.name}: not a known_hosts line with a public key: {line[:60]!r}"
            ) from None


def _save_node(spec: NodeSpec, cluster: Cluster | None, *, actor, source: str) -> Node:
    _check_known_hosts(spec)
    existing = Node.objects.filter(name=spec.name).select_related("cluster").first()
    if existing is not None and existing.cluster_id != (cluster.pk if cluster else None):
        owner = existing.cluster.name if existing.cluster else "no cluster"
        raise RegistrationRefused(f"node {spec.name!r} is already registered in {owner}")
    values = {
        "cluster": cluster,
        "service": spec.service,
        "role": spec.role,
        "address": spec.address,
        "ssh_port": spec.ssh_port,
        "ssh_user": spec.ssh_user,
        "known_hosts": spec.known_hosts.strip() + "\n",
        "ssh_credential": _credential(spec.ssh_credential),
        "db_port": spec.db_port,
        "db_credential": _credential(spec.db_credential),
        "data_directory": spec.data_directory,
    }
    if spec.facts is not None:
        values.update({k: v for k, v in spec.facts.items() if k in NODE_FACTS})
    changed = existing is None or any(getattr(existing, k) != v for k, v in values.items())
    node, _ = Node.objects.update_or_create(name=spec.name, defaults=values)
    if spec.facts is not None:
        Node.objects.filter(pk=node.pk).update(last_discovered=timezone.now())
    if changed:
        audit.append(
            audit.NODE_REGISTERED, actor=actor, source=source, target=f"node:{node.name}",
            node=node.name,
            output=f"{node.service} {node.role} at {node.address}:{node.ssh_port} "
            f"in {cluster.name if cluster else 'no cluster'}",
        )  # fmt: skip
    return node


def register_cluster(
    name: str,
    kind: str,
    *,
    environment: str,
    nodes: list[NodeSpec],
    actor,
    source: str = AuditEntry.Source.UI,
    description: str = "",
) -> Cluster:
    """Create or update a cluster and its nodes; audited; a second identical call changes nothing.

    Refused (RegistrationRefused, nothing saved) when a node belongs to another cluster, a
    credential is unknown, or a node has no valid host key.
    """
    if kind not in Cluster.Kind.values:
        raise RegistrationRefused(f"unknown cluster kind {kind!r}")
    with transaction.atomic():
        env, _ = Environment.objects.get_or_create(name=environment)
        cluster = Cluster.objects.filter(name=name).first()
        values = {"kind": kind, "environment": env, "description": description}
        changed = cluster is None or any(getattr(cluster, k) != v for k, v in values.items())
        cluster, _ = Cluster.objects.update_or_create(name=name, defaults=values)
        if changed:
            audit.append(
                audit.CLUSTER_REGISTERED, actor=actor, source=source, target=f"cluster:{name}",
                output=f"{kind} cluster in {environment}",
            )  # fmt: skip
        for spec in nodes:
            _save_node(spec, cluster, actor=actor, source=source)
    return cluster


def register_host(spec: NodeSpec, *, actor, source: str = AuditEntry.Source.UI) -> Node:
    """Register a server that belongs to no cluster (a bare host for provisioning); audited."""
    with transaction.atomic():
        return _save_node(spec, None, actor=actor, source=source)
