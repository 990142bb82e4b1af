"""Record or change a cluster's HaSetup from the HA settings page (clusters/views/ha.py).

`save_ha_setup` stores the PCP and replication secrets through console.secrets (encrypted,
audited as secret.created, never echoed), records the setup, and writes one ha.setup_saved
entry, all in one transaction: a failure leaves nothing half saved. Nothing is sent to a host:
the cluster page's Deploy button (the clusters.ha_deploy job) applies it.
"""

from django.db import transaction

from clusters.ha.deploy import database_nodes
from clusters.models import Cluster, HaSetup, Node
from console import audit
from console.models import AuditEntry, Credential
from console.secrets import store_credential

FIGURES = ("pcp_port", "health_check_period", "health_check_timeout", "health_check_max_retries",
           "delay_threshold", "synchronous_commit", "pg_bin")  # fmt: skip


def _secret(
    existing: Credential | None, name: str, kind: str, username: str, secret: str, *, actor,
    source: str,
) -> Credential:  # fmt: skip
    """Store `secret` (or keep the existing one when left blank) under `username`."""
    if existing is not None:
        name = existing.name
        if not secret:
            if existing.username == username:
                return existing
            secret = existing.reveal()  # only the user name changes
    return store_credential(name, kind, secret, actor=actor, username=username, source=source)


def _backends(cluster: Cluster, setup: HaSetup | None, weights: dict[int, int]) -> list[dict]:
    """pgpool's backends: the ones already recorded keep their node id (their order) and what
    a deployment found (data directory, application_name); new servers are appended."""
    nodes = {n.pk: n for n in database_nodes(cluster)}
    backends = []
    for backend in setup.backends if setup else []:
        if backend["node"] in nodes:
            node = nodes.pop(backend["node"])
            backends.append({**backend, "name": node.name, "address": node.address,
                             "port": node.db_port or 5432})  # fmt: skip
    for node in nodes.values():
        backends.append({"node": node.pk, "name": node.name, "address": node.address,
                         "port": node.db_port or 5432, "data_directory": node.data_directory,
                         "application_name": node.name})  # fmt: skip
    for backend in backends:
        backend["weight"] = weights.get(backend["node"], backend.get("weight", 1))
    return backends


def save_ha_setup(
    cluster: Cluster, *, pgpool: Node, directory: str, pcp_user: str, pcp_password: str,
    replication_user: str, replication_password: str, client_networks: list[str],
    pool_users: list[str], weights: dict[int, int], actor,
    source: str = AuditEntry.Source.UI, **figures,
) -> HaSetup:  # fmt: skip
    """Create or change `cluster`'s HA setup; audited (ha.setup_saved, secrets never named).

    A blank password keeps the stored one (a new setup needs both: the form enforces it)."""
    unknown = set(figures) - set(FIGURES)
    if unknown:
        raise TypeError(f"unknown HA setup fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        setup = HaSetup.objects.select_for_update().filter(cluster=cluster).first()
        pcp = _secret(setup.pcp_credential if setup else None, f"{cluster.name}-pcp",
                      Credential.Kind.PCP_PASSWORD, pcp_user, pcp_password, actor=actor,
                      source=source)  # fmt: skip
        repl = _secret(setup.replication_credential if setup else None,
                       f"{cluster.name}-replication", Credential.Kind.PASSWORD, replication_user,
                       replication_password, actor=actor, source=source)  # fmt: skip
        values = {
            "pgpool": pgpool, "directory": directory.rstrip("/"), "pcp_credential": pcp,
            "replication_credential": repl, "client_networks": list(client_networks),
            "pool_users": list(pool_users), "backends": _backends(cluster, setup, weights),
            **figures,
        }  # fmt: skip
        created = setup is None
        if created:
            setup = HaSetup.objects.create(cluster=cluster, **values)
        else:
            for field, value in values.items():
                setattr(setup, field, value)
            setup.save()
        backends = ", ".join(f"{b['name']} (weight {b['weight']})" for b in setup.backends)
        stored = [c.name for c, s in ((pcp, pcp_password), (repl, replication_password)) if s]
        audit.append(
            audit.HA_SETUP_SAVED, actor=actor, source=source, target=f"cluster:{cluster.name}",
            output=f"{'created' if created else 'changed'}: pgpool-II on {pgpool.name}:"
            f"{pgpool.db_port} in {setup.directory}, PCP :{setup.pcp_port} as {pcp_user}, "
            f"replication as {replication_user}; backends {backends}; health check "
            f"{setup.health_check_period}/{setup.health_check_timeout} s, "
            f"{setup.health_check_max_retries} retries; delay_threshold "
            f"{setup.delay_threshold}; synchronous_commit {setup.synchronous_commit}; "
            f"secrets stored: {', '.join(stored) or 'none (kept)'}",
        )  # fmt: skip
    return setup
