"""Discovery: what a cluster is made of, read from its primary alone. No database writes.

`discover_postgresql` reads the primary's facts (version, files, timeline, system identifier)
with SQL and its host name and server log over SSH, finds the standbys in pg_stat_replication
and reads their facts with the same database credentials, and, given pgpool-II's address, reads
SHOW POOL_NODES through it and checks its backends are the servers found. The host keys of the
standbys and pgpool are fetched for the DBA to confirm; nothing here trusts them. Every remote
call goes through the executor, so each one is audited.
"""

import posixpath
from dataclasses import asdict, dataclass, field, fields, replace

from console.errors import ExpectedFailure
from console.executor import (
    ExecutorError,
    MysqlTarget,
    PgTarget,
    SshTarget,
    run_command,
    run_sql,
)
from console.executor.ssh import fetch_host_keys

_DEFAULT_APPLICATION_NAMES = {"", "walreceiver"}


class DiscoveryFailed(ExpectedFailure):
    """Discovery could not read what it must; the message says why, for the DBA."""


class NotPrimary(DiscoveryFailed):
    """The server asked is in recovery (a standby), not a primary."""


@dataclass
class FoundNode:
    """One server as found. `known_hosts` is as fetched: not trusted until confirmed."""

    name: str
    address: str
    service: str
    role: str
    db_port: int | None = None
    version: str = ""
    version_num: int | None = None
    data_directory: str = ""
    config_file: str = ""
    hba_file: str = ""
    log_path: str = ""
    system_identifier: str = ""
    timeline: int | None = None
    sync_state: str = ""
    state: str = ""
    known_hosts: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Discovery:
    """A cluster as found: its nodes (primary first) and what did not add up (`warnings`)."""

    kind: str
    nodes: list[FoundNode]
    pgpool_backends: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Discovery":
        names = {f.name for f in fields(FoundNode)}
        nodes = [FoundNode(**{k: v for k, v in n.items() if k in names}) for n in data["nodes"]]
        return cls(data["kind"], nodes, data.get("pgpool_backends", []), data.get("warnings", []))

    def node_at(self, address: str, service: str) -> FoundNode | None:
        return next((n for n in self.nodes if n.address == address and n.service == service), None)


def _one_row(result) -> dict:
    if not result.rows:
        raise DiscoveryFailed("the server returned no row")
    return dict(zip(result.columns, result.rows[0], strict=True))


def _pg_facts(db: PgTarget, **call) -> dict:
    return _one_row(run_sql(db, "clusters:pg-discover", label="discovery", **call))


def _apply_pg_facts(node: FoundNode, facts: dict) -> None:
    node.version = facts["version"]
    node.version_num = facts["version_num"]
    node.data_directory = facts["data_directory"]
    node.config_file = facts["config_file"]
    node.hba_file = facts["hba_file"]
    node.system_identifier = facts["system_identifier"]
    node.timeline = facts["timeline"]
    if facts["logging_collector"] == "on":
        directory = posixpath.join(facts["data_directory"], facts["log_directory"])
        node.log_path = posixpath.join(directory, facts["log_filename"])


def stderr_log(ssh: SshTarget, data_directory: str, **call) -> str:
    """Where the postmaster's stderr goes (no logging collector): the file behind its fd 2."""
    pidfile = posixpath.join(data_directory, "postmaster.pid")
    pid = run_command(ssh, ["head", "-n", "1", pidfile], label="discovery", **call).stdout.strip()
    if not pid.isdigit():
        return ""
    link = run_command(ssh, ["readlink", f"/proc/{pid}/fd/2"], label="discovery", **call)
    path = link.stdout.strip()
    return path if path.startswith("/") else ""


def _hostname(ssh: SshTarget, **call) -> str:
    name = run_command(ssh, ["hostname", "-s"], label="discovery", **call).stdout.strip()
    return name[:64]


def _host_keys(address: str, known: dict[str, str]) -> tuple[str, str]:
    """The recorded keys of `address`, or those it offers now; and a note when it offers none."""
    if known.get(address):
        return known[address], ""
    try:
        return fetch_host_keys(address), ""
    except ExecutorError as e:
        return "", f"no SSH host key fetched: {e}"


def discover_postgresql(
    ssh: SshTarget,
    db: PgTarget,
    *,
    pgpool: PgTarget | None = None,
    ssh_targets: dict[str, SshTarget] | None = None,
    **call,
) -> Discovery:
    """Discover a PostgreSQL cluster from its primary (`ssh` and `db` reach the same server).

    Guarantees: only reads (SQL and SSH commands that change nothing), each through the
    executor (`call` passes actor/job/source on); raises NotPrimary when the server is in
    recovery, and the executor's errors (HostUnreachable, AuthenticationFailed, HostKeyRejected…)
    when it cannot be read. A standby that cannot be read is kept with a note, not an error.
    `ssh_targets` maps addresses to servers already registered (keys confirmed): their keys are
    kept and a standby's log is looked up over SSH; other hosts' keys are fetched, unconfirmed.
    """
    targets = ssh_targets or {}
    known = {address: t.known_hosts for address, t in targets.items()}
    facts = _pg_facts(db, **call)
    if facts["in_recovery"]:
        raise NotPrimary(f"{db.host}:{db.port} is in recovery (a standby): start from the primary")
    primary = FoundNode(
        name=facts["cluster_name"] or _hostname(ssh, **call) or db.host,
        address=db.host, service="postgresql", role="primary", db_port=facts["port"],
        known_hosts=ssh.known_hosts,
    )  # fmt: skip
    _apply_pg_facts(primary, facts)
    if not primary.log_path:
        primary.log_path = stderr_log(ssh, primary.data_directory, **call)
    found = Discovery("postgresql", [primary])
    backends, pgpool_error = _pgpool_backends(pgpool, **call) if pgpool else ([], "")
    for row in run_sql(db, "clusters:replication-list", label="discovery", **call).rows:
        found.nodes.append(
            _standby(
                db,
                dict(zip(("addr", "app", "state", "sync"), row, strict=True)),
                backends,
                known,
                call,
            )
        )
    _standby_logs(found, targets, call)
    for standby in found.nodes[1:]:
        if standby.system_identifier and standby.system_identifier != primary.system_identifier:
            found.warnings.append(f"{standby.name}: another system identifier than the primary")
    if pgpool is not None:
        _add_pgpool(found, pgpool, backends, known, pgpool_error)
    return found


def _standby(db: PgTarget, row: dict, backends: list[dict], known: dict, call: dict) -> FoundNode:
    address = row["addr"]
    port = next((int(b["port"]) for b in backends if b["hostname"] == address), db.port)
    name = row["app"] if row["app"] not in _DEFAULT_APPLICATION_NAMES else address
    node = FoundNode(
        name=name[:64], address=address, service="postgresql", role="standby", db_port=port,
        sync_state=row["sync"] or "", state=row["state"] or "",
    )  # fmt: skip
    try:
        facts = _pg_facts(replace(db, name=node.name, host=address, port=port), **call)
    except ExecutorError as e:
        node.notes.append(f"not read with the primary's credentials: {e}")
    else:
        _apply_pg_facts(node, facts)
        if not facts["in_recovery"]:
            node.notes.append("streams from the primary but is not in recovery")
    node.known_hosts, note = _host_keys(address, known)
    if note:
        node.notes.append(note)
    return node


def _standby_logs(found: Discovery, targets: dict[str, SshTarget], call: dict) -> None:
    """Fill the stderr log of the standbys already registered, whose host keys are confirmed."""
    for node in found.nodes[1:]:
        if node.log_path or not node.data_directory or node.address not in targets:
            continue
        try:
            node.log_path = stderr_log(targets[node.address], node.data_directory, **call)
        except ExecutorError as e:
            node.notes.append(f"log not located over SSH: {e}")


def _pgpool_backends(pgpool: PgTarget, **call) -> tuple[list[dict], str]:
    """pgpool-II's backends, or none and why: pgpool down is a finding, not a failed discovery."""
    try:
        result = run_sql(pgpool, "clusters:pgpool-nodes", label="discovery", **call)
    except ExecutorError as e:
        return [], str(e)
    wanted = ("node_id", "hostname", "port", "status", "role", "select_cnt", "lb_weight")
    rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    return [{k: str(r.get(k, "")) for k in wanted} for r in rows], ""


def _add_pgpool(
    found: Discovery, pgpool: PgTarget, backends: list[dict], known: dict, error: str
) -> None:
    found.pgpool_backends = backends
    node = FoundNode(
        name=pgpool.name, address=pgpool.host, service="pgpool", role="balancer",
        db_port=pgpool.port,
    )  # fmt: skip
    node.known_hosts, note = _host_keys(pgpool.host, known)
    if note:
        node.notes.append(note)
    found.nodes.append(node)
    if error:
        node.notes.append(f"SHOW POOL_NODES not read: {error}")
        found.warnings.append(f"pgpool-II at {pgpool.host}:{pgpool.port} not read: {error}")
        return
    servers = {(n.address, n.db_port) for n in found.nodes if n.service == "postgresql"}
    pooled = {(b["hostname"], int(b["port"])) for b in backends}
    for address, port in sorted(servers - pooled):
        found.warnings.append(f"pgpool-II has no backend for {address}:{port}")
    for address, port in sorted(pooled - servers):
        found.warnings.append(f"pgpool-II backend {address}:{port} is not a server found")
    for b in backends:
        if b["status"] not in ("up", "waiting"):
            found.warnings.append(f"pgpool-II backend {b['hostname']}:{b['port']} is {b['status']}")


def discover_mariadb(ssh: SshTarget, db: MysqlTarget, **call) -> Discovery:
    """Discover a MariaDB/MySQL server and the replicas it reports (SHOW SLAVE HOSTS); reads only.

    Replicas are listed by their report_host; one without it is counted in a warning.
    """
    facts = _one_row(run_sql(db, "clusters:mariadb-discover", label="discovery", **call))
    primary = FoundNode(
        name=(facts["hostname"] or db.host)[:64], address=db.host, service="mariadb",
        role="replica" if int(facts["read_only"]) else "primary", db_port=int(facts["port"]),
        version=facts["version"], data_directory=facts["data_directory"].rstrip("/"),
        log_path=facts["log_error"], known_hosts=ssh.known_hosts,
    )  # fmt: skip
    found = Discovery("mariadb", [primary])
    result = run_sql(db, "clusters:mariadb-replicas", label="discovery", **call)
    for row in result.rows:
        r = dict(zip([c.lower() for c in result.columns], row, strict=True))
        if not r.get("host"):
            found.warnings.append(f"replica server_id {r.get('server_id')} has no report_host")
            continue
        replica = FoundNode(
            name=str(r["host"])[:64], address=str(r["host"]), service="mariadb", role="replica",
            db_port=int(r.get("port") or 3306),
        )  # fmt: skip
        replica.known_hosts, note = _host_keys(replica.address, {})
        replica.notes += [note] if note else []
        found.nodes.append(replica)
    return found
