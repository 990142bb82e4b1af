"""Add a standby to a provisioned PostgreSQL cluster, on another bare host, as resumable steps.

    job = start_add_standby(cluster, host_node, spec, actor=user)   # the form's action
    add_standby(ctx, cluster, host_node, spec)                       # the job's body

Hot standby (streaming, open for reads), in order: detect the OS · install the package ·
directories · the replication role on the primary (its password a SCRAM verifier computed by
the console, kept as a Credential) · pg_basebackup -R -X stream -C -S <slot> with
application_name=<name> (the password in a pgpass file next to the data directory, never on a
command line) · dbconsole.conf with the standby's own addresses, port and socket, hot_standby on
· start · streaming seen in pg_stat_replication · and only then, if asked, synchronous on the
primary (synchronous_standby_names FIRST n or ANY n over the cluster's synchronous standbys,
synchronous_commit on or remote_apply) · sync_state verified · registration.

A synchronous standby is made so only once it streams: set before, every commit on the primary
(the replication role's own creation included) would wait for it forever.

Warm standby (archive only): pg_basebackup -X stream without -R or a slot, standby.signal,
restore_command from the WAL archive, hot_standby off (it accepts no connections); its state is
read with pg_controldata.
"""

import posixpath
import re
import time
from dataclasses import asdict, dataclass

from django.db import transaction
from psycopg import conninfo, sql

from clusters.actions import NodeSpec, register_cluster
from clusters.models import Cluster, Node, PgProvision
from console import audit, jobs
from console.executor import PgTarget
from console.models import AuditEntry, Credential
from console.secrets import store_credential
from users.passwords import generate_password, scram_sha256_verifier

from .pg import (
    ServerSpec,
    Work,
    configure_step,
    detect_os_step,
    directories_step,
    package_step,
    render_conf,
    start_step,
)
from .remote import PG_USER, pgpass_field
from .steps import Step, StepFailed, run_steps, tally

STANDBY_KIND = "clusters.add_standby"
SYNC_METHODS = ("FIRST", "ANY")
SYNC_COMMITS = ("on", "remote_apply")
WAIT_SECONDS = 60


@dataclass(frozen=True, kw_only=True)
class StandbySpec(ServerSpec):
    """A standby's layout (ServerSpec) and how it replicates."""

    application_name: str  # also its replication slot's name
    mode: str = "hot"  # hot (streaming, readable) or warm (archive only)
    synchronous: bool = True
    sync_method: str = "FIRST"  # FIRST n or ANY n
    sync_count: int = 1
    synchronous_commit: str = "remote_apply"


# --- synchronous_standby_names ----------------------------------------------------------------
_SYNC = re.compile(r"^\s*(?:(FIRST|ANY)\s+)?(\d+)\s*\((.*)\)\s*$", re.I | re.S)


def parse_sync_names(value: str) -> tuple[str, int, list[str]]:
    """('FIRST' or 'ANY', n, names) of a synchronous_standby_names value; ('FIRST', 0, []) when
    empty. A bare list `a, b` means FIRST 1 (a, b), as PostgreSQL reads it."""
    value = value.strip()
    if not value:
        return "FIRST", 0, []
    match = _SYNC.match(value)
    method, count, names = ("FIRST", 1, value) if not match else (
        (match.group(1) or "FIRST").upper(), int(match.group(2)), match.group(3))  # fmt: skip
    return method, count, [n.strip().strip('"') for n in names.split(",") if n.strip()]


def render_sync_names(method: str, count: int, names: list[str]) -> str:
    quoted = ", ".join('"' + n.replace('"', '""') + '"' for n in names)
    return f"{method} {count} ({quoted})"


def wanted_sync_names(current: str, spec: StandbySpec) -> str:
    _method, _count, names = parse_sync_names(current)
    if spec.application_name not in names:
        names = [*names, spec.application_name]
    return render_sync_names(spec.sync_method, min(spec.sync_count, len(names)), names)


# --- the steps --------------------------------------------------------------------------------
def _primary_of(cluster: Cluster) -> Node:
    primary = cluster.nodes.filter(role=Node.Role.PRIMARY, service=Node.Service.POSTGRESQL)
    node = primary.select_related("db_credential").first()
    if node is None:
        raise StepFailed(f"{cluster.name} has no registered primary")
    return node


def _replication_step(cluster: Cluster, prov: PgProvision, primary: PgTarget) -> Step:
    role = prov.replication_user
    name = f"{cluster.name}-replication"

    def check(w: Work):
        rows = w.sql(primary, "clusters:provision-role", {"role": role}).rows
        prov.refresh_from_db()
        return (rows == [(True,)] and prov.replication_credential_id is not None
                and f"role {role} exists, password stored as {name}")  # fmt: skip

    def apply(w: Work) -> str:
        prov.refresh_from_db()
        if prov.replication_credential is None:
            with transaction.atomic():
                cred = store_credential(name, Credential.Kind.PASSWORD, generate_password(),
                                        actor=w.actor, username=role,
                                        source=AuditEntry.Source.JOB)  # fmt: skip
                PgProvision.objects.filter(pk=prov.pk).update(replication_credential=cred)
            prov.refresh_from_db()
        verifier = scram_sha256_verifier(prov.replication_credential.reveal())
        exists = w.sql(primary, "clusters:provision-role", {"role": role}).rows
        verb = "ALTER" if exists else "CREATE"
        statement = sql.SQL(verb + " ROLE {} WITH REPLICATION LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(verifier)
        )
        w.sql(primary, statement, secrets=[verifier])
        return f"{verb.lower()}d role {role} (REPLICATION, SCRAM verifier)"

    return Step(f"Replication role {prov.replication_user} on the primary", check, apply)


def _pgpass_path(spec: StandbySpec) -> str:
    return spec.data_directory.rstrip("/") + ".pgpass"


def _basebackup_step(spec: StandbySpec, prov: PgProvision, primary_node: Node,
                     primary: PgTarget) -> Step:  # fmt: skip
    data = spec.data_directory
    slot = spec.application_name

    def check(w: Work):
        has = w.host.ok(["test", "-s", posixpath.join(data, "PG_VERSION")])
        signal = w.host.ok(["test", "-f", posixpath.join(data, "standby.signal")])
        return has and signal and f"{data} holds a base backup with standby.signal"

    def apply(w: Work) -> str:
        if w.host.run(["find", data, "-mindepth", "1", "-maxdepth", "1"], check=False).stdout:
            raise StepFailed(f"{data} is not empty and holds no standby: empty it, then re-run")
        password = prov.replication_credential.reveal()
        w.host.secrets = (*w.host.secrets, password)
        line = ":".join(pgpass_field(v) for v in (primary_node.address, str(primary.port), "*",
                                                 prov.replication_user, password))  # fmt: skip
        w.host.write(_pgpass_path(spec), line + "\n")
        info = conninfo.make_conninfo(
            host=primary_node.address, port=primary.port, user=prov.replication_user,
            passfile=_pgpass_path(spec), application_name=spec.application_name,
            connect_timeout=10,
        )  # fmt: skip
        argv = [f"{w.bin}/pg_basebackup", "-D", data, "-X", "stream", "-c", "fast",
                "--no-password", "-d", info]  # fmt: skip
        if spec.mode == "hot":
            slots = w.sql(primary, "clusters:provision-slot", {"slot": slot}).rows
            if slots == [(True,)]:
                raise StepFailed(f"replication slot {slot} is in use by another standby")
            if slots:  # left by an earlier attempt; -C must create it
                w.sql(primary, "clusters:provision-slot-drop", {"slot": slot})
            argv += ["-R", "-C", "-S", slot]
        w.host.run(argv, as_postgres=True, timeout=1800)
        if spec.mode == "warm":
            w.host.run(["install", "-o", PG_USER, "-g", PG_USER, "-m", "600", "/dev/null",
                        posixpath.join(data, "standby.signal")])  # fmt: skip
        return (f"base backup of {primary_node.name} into {data}"
                + (f", slot {slot}, recovery settings written (-R)" if spec.mode == "hot"
                   else ", standby.signal (archive recovery only)"))  # fmt: skip

    what = ("pg_basebackup -R -X stream -C -S " + slot if spec.mode == "hot"
            else "pg_basebackup -X stream (archive recovery)")  # fmt: skip
    return Step(f"{what} from {primary_node.name}", check, apply)


def _streaming_step(spec: StandbySpec, primary: PgTarget) -> Step:
    def state(w: Work):
        rows = w.sql(primary, "clusters:provision-replication", {"name": spec.application_name},
                     job_log=False).rows  # fmt: skip
        return rows[0] if rows else None

    def check(w: Work):
        found = state(w)
        return found and found[0] == "streaming" and f"streaming ({found[1]})"

    def apply(w: Work) -> str:
        w.host.wait_for(lambda: check(w), WAIT_SECONDS, f"{spec.application_name} streaming")
        return "streaming from the primary"

    return Step(f"Wait until {spec.application_name} streams", None, apply)


def _warm_state_step(spec: StandbySpec) -> Step:
    def check(w: Work):
        out = w.host.run([f"{w.bin}/pg_controldata", spec.data_directory], as_postgres=True,
                         check=False).stdout  # fmt: skip
        match = re.search(r"Database cluster state:\s*(.+)", out)
        return match and "archive recovery" in match.group(1) and match.group(1).strip()

    def apply(w: Work) -> str:
        w.host.wait_for(lambda: check(w), WAIT_SECONDS, "archive recovery")
        return "in archive recovery"

    return Step("Check the warm standby is in archive recovery", check, apply)


def _sync_step(spec: StandbySpec, primary: PgTarget) -> Step:
    def current(w: Work) -> tuple[str, str]:
        rows = w.sql(primary, "clusters:provision-sync-settings", job_log=False).rows
        return rows[0]

    def check(w: Work):
        names, commit = current(w)
        method, count, listed = parse_sync_names(names)
        wanted = spec.application_name in listed and method == spec.sync_method
        return wanted and commit == spec.synchronous_commit and f"{names}; {commit}"

    def apply(w: Work) -> str:
        names = wanted_sync_names(current(w)[0], spec)
        w.sql(primary, sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(
            sql.Literal(names)))  # fmt: skip
        w.sql(primary, sql.SQL("ALTER SYSTEM SET synchronous_commit = {}").format(
            sql.Literal(spec.synchronous_commit)))  # fmt: skip
        w.sql(primary, "clusters:provision-reload")
        deadline = time.monotonic() + 10  # a reload is asynchronous; new sessions see it
        while not check(w) and time.monotonic() < deadline:
            time.sleep(0.2)
        return (
            f"synchronous_standby_names = {names}, synchronous_commit = {spec.synchronous_commit}"
        )

    return Step(
        f"Make it synchronous on the primary ({spec.sync_method} {spec.sync_count}, "
        f"synchronous_commit {spec.synchronous_commit})",
        check,
        apply,
    )


def _sync_state_step(spec: StandbySpec, primary: PgTarget) -> Step:
    wanted = ("sync",) if spec.sync_method == "FIRST" else ("quorum",)

    def check(w: Work):
        rows = w.sql(primary, "clusters:provision-replication", {"name": spec.application_name},
                     job_log=False).rows  # fmt: skip
        return rows and rows[0][1] in wanted and f"sync_state = {rows[0][1]}"

    def apply(w: Work) -> str:
        found = w.host.wait_for(lambda: check(w), WAIT_SECONDS, f"sync_state {wanted[0]}")
        return found

    # A verification: it always runs (no check to skip it), also on a re-run.
    return Step(f"Verify sync_state = {wanted[0]} in pg_stat_replication", None, apply)


def _register_step(cluster: Cluster, spec: StandbySpec, host_node: Node, primary_node: Node):
    def check(w: Work):
        return (Node.objects.filter(name=spec.node_name, cluster=cluster).exists()
                and f"{spec.node_name} is registered in {cluster.name}")  # fmt: skip

    def apply(w: Work) -> str:
        node = NodeSpec(
            name=spec.node_name, service=Node.Service.POSTGRESQL, role=Node.Role.STANDBY,
            address=spec.listen_addresses[0], known_hosts=host_node.known_hosts,
            ssh_port=host_node.ssh_port, ssh_user=host_node.ssh_user,
            ssh_credential=host_node.ssh_credential.name if host_node.ssh_credential else None,
            db_port=spec.port,
            db_credential=primary_node.db_credential.name if primary_node.db_credential else None,
            data_directory=spec.data_directory,
            facts={"log_path": spec.log_file, "data_directory": spec.data_directory},
        )  # fmt: skip
        with transaction.atomic():
            register_cluster(cluster.name, cluster.kind, environment=cluster.environment.name,
                             nodes=[node], actor=w.actor, source=AuditEntry.Source.JOB,
                             description=cluster.description)  # fmt: skip
            audit.append(
                audit.PROVISION_STANDBY_DONE, actor=w.actor, source=AuditEntry.Source.JOB,
                target=f"cluster:{cluster.name}", node=spec.node_name, job_id=w.job.pk,
                output=f"{spec.mode} standby {spec.application_name} on {host_node.name} "
                f"{spec.listen_addresses[0]}:{spec.port}"
                + (f", {spec.sync_method} {spec.sync_count} synchronous" if spec.synchronous
                   and spec.mode == "hot" else ", asynchronous"),
            )  # fmt: skip
        return f"registered {spec.node_name} as a standby of {cluster.name}"

    return Step(f"Register {spec.node_name} in {cluster.name}", check, apply)


def standby_steps(cluster: Cluster, host_node: Node, spec: StandbySpec) -> list[Step]:
    prov = PgProvision.objects.select_related("replication_credential").get(cluster=cluster)
    primary_node = _primary_of(cluster)
    primary = primary_node.pg_target()
    steps = [
        detect_os_step(),
        package_step(spec),
        directories_step(spec),
        _replication_step(cluster, prov, primary),
        _basebackup_step(spec, prov, primary_node, primary),
        configure_step(
            spec,
            render_conf(
                spec, archive_directory=prov.archive_directory, hot_standby=spec.mode == "hot"
            ),
        ),  # fmt: skip
        start_step(spec),
    ]
    if spec.mode == "hot":
        steps.append(_streaming_step(spec, primary))
        if spec.synchronous:
            steps += [_sync_step(spec, primary), _sync_state_step(spec, primary)]
    else:
        steps.append(_warm_state_step(spec))
    steps.append(_register_step(cluster, spec, host_node, primary_node))
    return steps


def add_standby(ctx, cluster: Cluster, host_node: Node, spec: StandbySpec) -> dict:
    """Run the standby's steps (a job body's work). Raises JobFailed at the first failing step."""
    primary_node = _primary_of(cluster)
    secrets = [primary_node.db_credential.reveal()] if primary_node.db_credential else []
    work = Work(ctx, host_node, spec, secrets=secrets)
    outcomes = run_steps(work, standby_steps(cluster, host_node, spec))
    return {"cluster": cluster.pk, "node": spec.node_name, "steps": tally(outcomes)}


def start_add_standby(cluster: Cluster, host_node: Node, spec: StandbySpec, *, actor,
                      source=AuditEntry.Source.UI):  # fmt: skip
    """Enqueue the job that adds `spec` as a standby of `cluster` on `host_node`; audited."""
    if not PgProvision.objects.filter(cluster=cluster).exists():
        raise StepFailed(f"{cluster.name} was not provisioned by the console")
    with transaction.atomic():
        job = jobs.enqueue(
            STANDBY_KIND, f"Add {spec.mode} standby {spec.application_name} to {cluster.name}",
            user=actor, source=source, target=cluster,
            params={"cluster": cluster.pk, "host": host_node.pk, "spec": asdict(spec)},
        )  # fmt: skip
        audit.append(
            audit.PROVISION_REQUESTED, actor=actor, source=source, target=f"cluster:{cluster.name}",
            node=host_node.name, job_id=job.pk,
            output=f"{spec.mode} standby {spec.application_name} on {host_node.name}",
        )  # fmt: skip
    return job
