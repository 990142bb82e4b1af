"""pgpool-II in front of a PostgreSQL cluster: the setup record, then the deployment job.

`save_setup` records what to deploy (audited). `deploy_pgpool` (the clusters.ha_deploy job)
reads each backend's data directory and role from the server itself, writes every file on the
pgpool-II host atomically (remote.write_file), builds pool_passwd with pg_enc from passwords
given on stdin (AES, with a key file that exists only on the host), (re)starts pgpool-II in the
background with its own pid and log file in the deployment directory, then verifies through
pgpool-II itself: every backend up in SHOW POOL_NODES, a statement that needs a transaction id
answered by the primary, and a read-only one served by a standby.
"""

import secrets

from django.db import transaction
from django.utils import timezone

from clusters.ha import config, rejoin, remote
from clusters.ha.remote import StepFailed
from clusters.models import Cluster, HaSetup, Node
from console import audit
from console.executor import ExecutorError, run_command, run_sql
from console.models import AuditEntry, Credential

PGPOOL = "/usr/sbin/pgpool"
START_TIMEOUT = 30.0


def database_nodes(cluster: Cluster) -> list[Node]:
    """The cluster's PostgreSQL servers, the registered primary first."""
    nodes = cluster.nodes.filter(service=Node.Service.POSTGRESQL)
    return sorted(nodes, key=lambda n: (n.role != Node.Role.PRIMARY, n.name))


def save_setup(
    cluster: Cluster, *, pgpool: Node, directory: str, pcp_credential: Credential,
    replication_credential: Credential, client_networks: list[str],
    pool_users: list[str] = (), weights: dict[str, int] | None = None, actor,
    source: str = AuditEntry.Source.UI, **figures,
) -> HaSetup:  # fmt: skip
    """Record (or change) what pgpool-II deployment the cluster gets; audited. `weights` maps
    node names to load-balancing weights (1 each by default). Nothing is sent to a host."""
    weights = weights or {}
    backends = [
        {"node": n.pk, "name": n.name, "address": n.address, "port": n.db_port or 5432,
         "weight": weights.get(n.name, 1), "data_directory": n.data_directory,
         "application_name": n.name}
        for n in database_nodes(cluster)
    ]  # fmt: skip
    values = {
        "pgpool": pgpool, "directory": directory.rstrip("/"), "pcp_credential": pcp_credential,
        "replication_credential": replication_credential, "backends": backends,
        "client_networks": list(client_networks), "pool_users": list(pool_users), **figures,
    }  # fmt: skip
    with transaction.atomic():
        setup, _ = HaSetup.objects.update_or_create(cluster=cluster, defaults=values)
        audit.append(
            audit.HA_REQUESTED, actor=actor, source=source, target=f"cluster:{cluster.name}",
            output=f"pgpool-II on {pgpool.name}:{pgpool.db_port} in {setup.directory}; backends "
            + ", ".join(f"{b['name']} (weight {b['weight']})" for b in backends),
        )  # fmt: skip
    return setup


def _passwords(setup: HaSetup) -> dict[str, str]:
    """User -> password of every pool_passwd entry: the nodes' own account and pool_users."""
    found = {}
    for node in Node.objects.filter(pk__in=[b["node"] for b in setup.backends]):
        if node.db_credential:
            found[node.db_credential.username or "postgres"] = node.db_credential.reveal()
    for credential in Credential.objects.filter(name__in=setup.pool_users):
        found[credential.username] = credential.reveal()
    return found


def _read_backends(setup: HaSetup, kw: dict) -> Node:
    """Each backend's data directory and role, from the server itself; the primary."""
    primaries = []
    for backend in setup.backends:
        node = Node.objects.get(pk=backend["node"])
        state = remote.recovery(node, **kw)
        backend["data_directory"] = state["data_directory"]
        if not state["in_recovery"]:
            primaries.append(node)
    if len(primaries) != 1:
        names = ", ".join(n.name for n in primaries) or "none"
        raise StepFailed(f"expected one primary among the backends, found {names}")
    # A standby's application_name is what its primary_conninfo says (pgpool-II needs it as
    # backend_application_name for the sync state), found by its address on the primary.
    by_address = {(r["client_addr"] or "").split("/")[0]: r["application_name"]
                  for r in remote.replication(primaries[0], **kw).values()}  # fmt: skip
    for backend in setup.backends:
        backend["application_name"] = by_address.get(backend["address"],
                                                     backend["application_name"])  # fmt: skip
    setup.save(update_fields=["backends"])
    return primaries[0]


def write_files(setup: HaSetup, kw: dict) -> None:
    node, p = setup.pgpool, config.paths(setup.directory)
    passwords = _passwords(setup)
    superuser = passwords.get("postgres", "")
    pcp_user = setup.pcp_credential.username or "pcpadmin"
    pcp_password = setup.pcp_credential.reveal()
    key = secrets.token_urlsafe(32)
    secret_kw = {**kw, "secrets": (key, pcp_password, *passwords.values())}
    remote.make_dir(node, setup.directory, **kw)
    remote.make_dir(node, p["run"], mode="755", **kw)
    files = {
        "conf": (config.render_conf(setup, node.address, node.db_port or 9999), "600"),
        "hba": (config.render_hba(setup.client_networks), "600"),
        "pcp": (f"{pcp_user}:{config.md5_hex(pcp_password)}\n", "600"),
        "key": (key + "\n", "600"),
        "pgpass": (f"*:*:*:postgres:{superuser}\n", "600"),
        "failover": (config.render_failover(setup), "700"),
        "follow": (config.FOLLOW_SCRIPT, "700"),
    }
    for name, (text, mode) in files.items():
        remote.write_file(node, p[name], text, mode=mode, **secret_kw)
    pcppass = f"{node.address}:{setup.pcp_port}:{pcp_user}:{pcp_password}\n"
    remote.write_file(node, p["pcppass"], pcppass, owner="root", **secret_kw)
    # pool_passwd: AES entries made by pg_enc (-p wants a terminal) from a user:password file
    # that lives only while pg_enc reads it (mode 600, root's), never from an argv.
    remote.write_file(node, p["pool_passwd"], "", **kw)
    pairs_file = f"{setup.directory}/.pool_passwd.in"
    pairs = "".join(f"{user}:{password}\n" for user, password in passwords.items())
    remote.write_file(node, pairs_file, pairs, owner="root", **secret_kw)
    try:
        argv = ["pg_enc", "-m", "-f", p["conf"], "-k", p["key"], "-i", pairs_file]
        run_command(node, argv, **secret_kw)
    finally:
        run_command(node, ["rm", "-f", "--", pairs_file], **kw)
    run_command(node, ["chown", "postgres:postgres", p["pool_passwd"]], **kw)


def pgpool_running(setup: HaSetup, kw: dict) -> bool:
    p = config.paths(setup.directory)
    argv = ["start-stop-daemon", "--status", "--pidfile", p["pid"], "--exec", PGPOOL]
    # start-stop-daemon --status: 0 running, 1 dead with its pid file left, 3 not running.
    result = run_command(setup.pgpool, argv, check=False, ok_exits=(0, 1, 3), **kw)
    return result.exit_code == 0


def stop_pgpool(setup: HaSetup, kw: dict) -> None:
    """Fast shutdown of this deployment's pgpool-II (its pid file only); nothing if stopped."""
    if not pgpool_running(setup, kw):
        return
    p = config.paths(setup.directory)
    argv = [PGPOOL, "-f", p["conf"], "-m", "fast", "stop"]
    run_command(setup.pgpool, argv, sudo_user="postgres", timeout=60, **kw)
    remote.wait_for(lambda: not pgpool_running(setup, kw), 20, "pgpool-II to stop")


def start_pgpool(setup: HaSetup, kw: dict) -> None:
    """Start pgpool-II in the background as postgres (-n: no daemon of its own, -D: forget
    the node states of an earlier run), output to its own log file."""
    p = config.paths(setup.directory)
    argv = ["start-stop-daemon", "--start", "--background", "--chuid", "postgres",
            "--output", p["log"], "--pidfile", p["pid"], "--exec", PGPOOL, "--",
            "-n", "-D", "-f", p["conf"], "-F", p["pcp"], "-a", p["hba"],
            "-k", p["key"]]  # fmt: skip
    run_command(setup.pgpool, argv, **kw)


def pool_nodes_sql(setup: HaSetup, kw: dict) -> list[dict]:
    return remote.rows(setup.pgpool, "clusters:pgpool-nodes", **kw)


def verify(setup: HaSetup, kw: dict, reads: int = 40) -> dict:
    """Through pgpool-II: every backend up, writes answered by the primary, a read-only
    statement served by a standby (when a standby has weight)."""

    def settled() -> list[dict] | None:
        rows = pool_nodes_sql(setup, kw)
        up = all(r["status"] in ("up", "waiting") for r in rows)
        primaries = [r for r in rows if r["role"] == "primary"]
        return rows if up and len(rows) == len(setup.backends) and len(primaries) == 1 else None

    nodes = remote.wait_for(settled, START_TIMEOUT, "every backend up and one primary in pgpool")
    primary = [n for n in nodes if n["role"] == "primary"]
    writes_to = remote.rows(setup.pgpool, "clusters:ha-routing", **kw)[0]["server"].split("/")[0]
    if writes_to != primary[0]["hostname"]:
        raise StepFailed(f"a write through pgpool-II reached {writes_to}, not the primary")
    standbys = {b["address"] for b in setup.backends if b["weight"] > 0} - {writes_to}
    served: set[str] = set()
    for _ in range(reads if standbys else 0):
        served.add(remote.rows(setup.pgpool, "clusters:ha-read", **kw)[0]["server"].split("/")[0])
        if served & standbys:
            break
    if standbys and not served & standbys:
        raise StepFailed(f"{reads} read-only statements through pgpool-II never reached a standby")
    columns = ("node_id", "hostname", "status", "role", "replication_sync_state", "select_cnt")
    return {
        "primary": primary[0]["hostname"],
        "writes_to": writes_to,
        "reads_served_by": sorted(served),
        "nodes": [{k: n[k] for k in columns if k in n} for n in nodes],
    }


def deploy_pgpool(setup: HaSetup, *, actor=None, job=None, log=lambda m: None) -> dict:
    """Write the files, (re)start pgpool-II, verify; audited (ha.pgpool_deployed). Safe to
    run again: files are rewritten, pgpool-II restarted, the verification repeated."""
    kw = remote.call(actor, job)
    target = f"cluster:{setup.cluster.name}"
    try:
        log("reading each backend's data directory and role")
        primary = _read_backends(setup, kw)
        log(f"writing pgpool-II's files in {setup.directory} on {setup.pgpool.name}")
        write_files(setup, kw)
        log("stopping pgpool-II if it runs, then starting it")
        stop_pgpool(setup, kw)
        start_pgpool(setup, kw)
        log("verifying through pgpool-II: backends, writes, reads")
        found = verify(setup, kw)
        rejoin.mark_sync(setup, primary, kw)
    except (ExecutorError, StepFailed) as e:
        remote.entry(audit.HA_PGPOOL_DEPLOYED, actor=actor, job=job, target=target,
                     status=AuditEntry.Status.FAILED, error=str(e)[:2000])  # fmt: skip
        raise
    setup.deployed = timezone.now()
    setup.save(update_fields=["deployed"])
    reads = ", ".join(found["reads_served_by"])
    summary = (f"pgpool-II on {setup.pgpool.name}:{setup.pgpool.db_port}: writes to "
               f"{found['writes_to']}, reads served by {reads}")  # fmt: skip
    remote.entry(audit.HA_PGPOOL_DEPLOYED, actor=actor, job=job, target=target, output=summary)
    log(summary)
    return found


__all__ = ["deploy_pgpool", "run_sql", "save_setup", "stop_pgpool", "start_pgpool", "verify"]
