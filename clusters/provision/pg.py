"""Provision a PostgreSQL primary on a bare host, over SSH, as a job of resumable steps.

    job = start_provision(host_node, spec, admin_password, actor=user)   # the form's action
    provision_primary(ctx, host_node, spec)                              # the job's body

`spec` (PgSpec) is the server's layout: version, data directory, port, locale, listen
addresses, the networks allowed in, the unix socket directory, the log file and the WAL archive
directory (the backup catalog). The steps (see `primary_steps`), each skipped by its check when
its work is already there, so a re-run of a failed job resumes where it stopped:

  detect the OS family · install the server package · directories · initdb (--data-checksums,
  the locale) · dbconsole.conf (listen_addresses, port, socket directory, WAL and archiving) ·
  base pg_hba rules · start (pg_ctl, after checking the port is free) · the admin password (a
  SCRAM verifier computed by the console, as psql's \\password sends it) · local socket access
  from trust to scram-sha-256 · WAL archiving seen working · registration in the inventory.

The admin password is stored encrypted (console.Credential) before the job starts; the job
params name the credential only. Every remote call goes through the executor, audited as
`provision.command`/`provision.sql`; the last step writes `provision.pg_done`.
"""

import posixpath
import shlex
from dataclasses import asdict, dataclass, field

from django.db import transaction
from psycopg import sql

from clusters.actions import NodeSpec, register_cluster
from clusters.models import Cluster, Node, PgProvision
from console import audit, jobs
from console.executor import AuthenticationFailed, ExecutorError, PgTarget, run_sql
from console.models import AuditEntry, Credential
from console.secrets import store_credential
from users.passwords import scram_sha256_verifier

from .remote import PG_USER, Host, bin_dir, conf_string, package_name
from .steps import Step, StepFailed, run_steps, tally

PROVISION_KIND = "clusters.provision_pg"
CONF_NAME = "dbconsole.conf"
INCLUDE_LINE = f"include_if_exists = '{CONF_NAME}'"


@dataclass(frozen=True, kw_only=True)
class ServerSpec:
    """Where one PostgreSQL server lives on its host. Every path must be unique to the server
    (hosts may share a filesystem and /run, as the lab's do)."""

    version: str = "15"
    data_directory: str
    port: int = 5432
    listen_addresses: list[str]
    socket_directory: str
    log_file: str
    locale: str = "C.UTF-8"
    package: str = ""  # empty: the OS family's package for `version`
    node_name: str  # the inventory name of the server once registered


@dataclass(frozen=True, kw_only=True)
class PgSpec(ServerSpec):
    """A new cluster's primary."""

    cluster: str
    environment: str = "production"
    networks: list[str] = field(default_factory=list)
    archive_directory: str
    admin_credential: str  # a console.Credential holding the postgres role's password


def default_paths(data_directory: str) -> dict[str, str]:
    """Socket directory and log file next to the data directory (unique per data directory)."""
    parent, base = posixpath.split(data_directory.rstrip("/"))
    return {
        "socket_directory": posixpath.join(parent, f"{base}.run"),
        "log_file": posixpath.join(parent, f"{base}.log"),
    }


class Work:
    """What the steps of one job share: the job context, the host, the spec, what was found."""

    def __init__(self, ctx, host_node: Node, spec: ServerSpec, *, secrets=()):
        self.ctx = ctx
        self.job = ctx.job
        self.actor = ctx.user
        self.spec = spec
        self.host = Host(host_node, job=ctx.job, actor=ctx.user, secrets=secrets)
        self.family = ""

    def log(self, message, level="info"):
        self.ctx.log(message, level)

    def progress(self, percent):
        self.ctx.progress(percent)

    @property
    def bin(self) -> str:
        return bin_dir(self.family or "debian", self.spec.version)

    def pg_ctl(self, *args: str) -> list[str]:
        return [f"{self.bin}/pg_ctl", *args, "-D", self.spec.data_directory]

    def sql(self, target: PgTarget, query, params=None, **kw):
        return run_sql(target, query, params, actor=self.actor, job=self.job,
                       action=audit.PROVISION_SQL, label="provision", **kw)  # fmt: skip


def admin_target(spec: ServerSpec, credential: Credential, *, dbname="postgres") -> PgTarget:
    return PgTarget(
        name=spec.node_name,
        host=spec.listen_addresses[0],
        port=spec.port,
        dbname=dbname,
        username=credential.username or PG_USER,
        password=credential.reveal(),
    )


# --- steps shared by primaries and standbys --------------------------------------------------
def detect_os_step() -> Step:
    def apply(w: Work) -> str:
        w.family, pretty = w.host.os_family()
        return f"{w.host.name} runs {pretty} ({w.family} family)"

    return Step("Detect the OS family (/etc/os-release)", None, apply)


def package_step(spec: ServerSpec) -> Step:
    def package(w: Work) -> str:
        return spec.package or package_name(w.family, spec.version)

    return Step(
        f"Install the PostgreSQL {spec.version} server package "
        f"(Debian: apt-get install postgresql-{spec.version}; "
        f"Gentoo: emerge dev-db/postgresql:{spec.version})",
        lambda w: w.host.package_installed(w.family, package(w)),
        lambda w: w.host.install_package(w.family, package(w)),
    )


def directories_step(spec: ServerSpec, extra: tuple[str, ...] = ()) -> Step:
    """The data directory (0700), socket directory, `extra` directories and the log file,
    owned by postgres. Parents are created if missing, never re-owned."""
    owned = (spec.data_directory, spec.socket_directory, *extra)

    def check(w: Work):
        result = w.host.run(["stat", "-c", "%U %n", "--", *owned, spec.log_file], check=False,
                            ok_exits=(0, 1))  # exit 1: one is missing, an answer  # fmt: skip
        owners = [line.split(" ", 1)[0] for line in result.stdout.splitlines()]
        return result.exit_code == 0 and set(owners) == {PG_USER} and "all owned by postgres"

    def apply(w: Work) -> str:
        parents = sorted({posixpath.dirname(p.rstrip("/")) for p in (*owned, spec.log_file)})
        w.host.run(["mkdir", "-p", "--", *parents])
        w.host.run(["install", "-d", "-o", PG_USER, "-g", PG_USER, "-m", "700", "--",
                    spec.data_directory, *extra])  # fmt: skip
        w.host.run(["install", "-d", "-o", PG_USER, "-g", PG_USER, "-m", "755", "--",
                    spec.socket_directory])  # fmt: skip
        w.host.run(["touch", "--", spec.log_file])
        w.host.run(["chown", f"{PG_USER}:{PG_USER}", "--", spec.log_file])
        return f"created {', '.join(owned)} and {spec.log_file}"

    return Step("Create the directories", check, apply)


def render_conf(spec: ServerSpec, *, archive_directory: str, hot_standby: bool = True) -> str:
    """dbconsole.conf: included at the end of postgresql.conf, so it wins over the defaults.
    Host settings (addresses, port, socket) are rewritten on each standby after its base
    backup, which copies the primary's file."""
    archive = archive_directory.rstrip("/")
    q = shlex.quote
    settings = {
        "listen_addresses": conf_string(",".join(spec.listen_addresses)),
        "port": str(spec.port),
        "unix_socket_directories": conf_string(spec.socket_directory),
        "password_encryption": "'scram-sha-256'",
        "wal_level": "replica",
        "hot_standby": "on" if hot_standby else "off",
        "max_wal_senders": "10",
        "max_replication_slots": "10",
        "wal_log_hints": "on",
        "archive_mode": "on",
        "archive_command": conf_string(f"test ! -f {q(archive)}/%f && cp %p {q(archive)}/%f"),
        "restore_command": conf_string(f"cp {q(archive)}/%f %p"),
        "wal_retrieve_retry_interval": "'1s'",
        "log_line_prefix": "'%m [%p] %q%u@%d '",
    }
    lines = [f"# Written by dbconsole ({spec.node_name}); a re-run of its job rewrites it."]
    lines += [f"{name} = {value}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def configure_step(spec: ServerSpec, text: str) -> Step:
    path = posixpath.join(spec.data_directory, CONF_NAME)
    conf = posixpath.join(spec.data_directory, "postgresql.conf")

    def check(w: Work):
        return (
            w.host.read(path) == text
            and w.host.ok(["grep", "-qxF", "--", INCLUDE_LINE, conf])
            and f"{path} is current and included"
        )

    def apply(w: Work) -> str:
        w.host.write(path, text)
        w.host.append_line(conf, INCLUDE_LINE)
        return f"wrote {path} (listen_addresses, port {spec.port}, socket, WAL archiving)"

    return Step(
        f"Configure: listen_addresses {','.join(spec.listen_addresses)}, port {spec.port}, "
        f"socket directory, archiving",
        check,
        apply,
    )


def start_step(spec: ServerSpec) -> Step:
    def check(w: Work):
        result = w.host.run(w.pg_ctl("status"), as_postgres=True, check=False,
                            ok_exits=(0, 3, 4))  # 3: not running, 4: no data directory  # fmt: skip
        return result.exit_code == 0 and (result.stdout.splitlines() or ["running"])[0]

    def apply(w: Work) -> str:
        busy = w.host.listeners(spec.port)
        if busy:
            raise StepFailed(
                f"port {spec.port} is already in use on {w.host.name} ({'; '.join(busy)}): "
                "free it or choose another port, then re-run"
            )
        try:
            w.host.run([*w.pg_ctl("start", "-w", "-t", "60", "-s"), "-l", spec.log_file],
                       as_postgres=True, timeout=90)  # fmt: skip
        except ExecutorError as e:
            tail = w.host.run(["tail", "-n", "5", "--", spec.log_file], check=False).stdout
            raise StepFailed(f"pg_ctl start failed: {e}\nserver log: {tail.strip()}") from None
        return f"started; server log {spec.log_file}"

    return Step(f"Start the server (pg_ctl start, port {spec.port})", check, apply)


# --- the primary's own steps -----------------------------------------------------------------
def render_hba(spec: PgSpec, *, local: str, replication_user: str = "replicator") -> str:
    rows = [("local", "all", "all", "", local)]
    rows += [("host", "all", "all", net, "scram-sha-256") for net in spec.networks]
    rows += [("host", "replication", replication_user, net, "scram-sha-256")
             for net in spec.networks]  # fmt: skip
    head = (f"# pg_hba.conf written by dbconsole when it provisioned {spec.cluster}.\n"
            "# TYPE  DATABASE     USER        ADDRESS              METHOD\n")  # fmt: skip
    return head + "".join(f"{t:<7} {d:<12} {u:<11} {a:<20} {m}\n" for t, d, u, a, m in rows)


def _initdb_step(spec: PgSpec) -> Step:
    version_file = posixpath.join(spec.data_directory, "PG_VERSION")

    def check(w: Work):
        found = (w.host.read(version_file) or "").strip()
        if found and found != spec.version:
            raise StepFailed(f"{spec.data_directory} holds a PostgreSQL {found} cluster")
        return found and f"{spec.data_directory} already holds a PostgreSQL {found} cluster"

    def apply(w: Work) -> str:
        argv = [f"{w.bin}/initdb", "-D", spec.data_directory, "-U", PG_USER, "--data-checksums",
                f"--locale={spec.locale}", "-E", "UTF8", "--auth-local=trust",
                "--auth-host=scram-sha-256", "--no-instructions"]  # fmt: skip
        w.host.run(argv, as_postgres=True, timeout=300)
        return f"initialised {spec.data_directory} ({spec.locale}, data checksums)"

    return Step(f"initdb {spec.data_directory} (locale {spec.locale}, data checksums)",
                check, apply)  # fmt: skip


def _hba_step(spec: PgSpec) -> Step:
    path = posixpath.join(spec.data_directory, "pg_hba.conf")
    wanted = {render_hba(spec, local="trust"), render_hba(spec, local="scram-sha-256")}

    def check(w: Work):
        return w.host.read(path) in wanted and "the base rules are in place"

    def apply(w: Work) -> str:
        w.host.write(path, render_hba(spec, local="trust"))
        return f"scram-sha-256 from {', '.join(spec.networks)} (clients and replication)"

    return Step(f"Base pg_hba rules: scram-sha-256 from {', '.join(spec.networks)}", check, apply)


def _password_step(spec: PgSpec, credential: Credential) -> Step:
    target = admin_target(spec, credential)

    def check(w: Work):
        try:
            w.sql(target, "clusters:provision-login", job_log=False)
        except AuthenticationFailed as e:
            if "no pg_hba.conf entry" in str(e):
                raise StepFailed(
                    f"pg_hba.conf does not let the console in ({e}): the allowed networks "
                    "must include the console's address"
                ) from None
            return False
        return f"the console logs in as {target.username} with the stored password"

    def apply(w: Work) -> str:
        verifier = scram_sha256_verifier(credential.reveal())
        statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(target.username), sql.Literal(verifier)
        )
        psql = [f"{w.bin}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", spec.socket_directory,
                "-p", str(spec.port), "-U", PG_USER, "-d", "postgres"]  # fmt: skip
        w.host.run(psql, as_postgres=True, input=statement.as_string(None) + ";\n",
                   secrets=[verifier])  # fmt: skip
        return f"set the password of {target.username} as a SCRAM-SHA-256 verifier"

    return Step(f"Set the {PG_USER} password (SCRAM verifier, as \\password)", check, apply)


def _local_step(spec: PgSpec, credential: Credential) -> Step:
    path = posixpath.join(spec.data_directory, "pg_hba.conf")
    final = render_hba(spec, local="scram-sha-256")
    target = admin_target(spec, credential)

    def check(w: Work):
        return w.host.read(path) == final and "local connections need a password"

    def apply(w: Work) -> str:
        before = w.host.read(path)
        w.host.write(path, final)
        errors = w.sql(target, "clusters:hba-errors").rows
        if errors:
            w.host.write(path, before or "")
            raise StepFailed(f"PostgreSQL refuses the new pg_hba.conf: {errors}; put back")
        w.sql(target, "clusters:hba-reload")
        return "local: trust → scram-sha-256, reloaded"

    return Step("Local socket access: trust → scram-sha-256", check, apply)


def _archive_step(spec: PgSpec, credential: Credential) -> Step:
    target = admin_target(spec, credential)

    def state(w: Work):
        return w.sql(target, "clusters:provision-archiver", job_log=False).rows[0]

    def check(w: Work):
        count, last, _failed, failing = state(w)
        return count > 0 and not failing and f"{count} WAL file(s) archived, last {last}"

    def apply(w: Work) -> str:
        w.sql(target, "clusters:provision-switch-wal")

        def archived():
            count, last, failed, failing = state(w)
            if failing:
                raise StepFailed(
                    f"archiving {failed} into {spec.archive_directory} fails: see {spec.log_file}"
                )
            return count > 0 and last

        last = w.host.wait_for(lambda: archived(), 30, "archiving of the first WAL file")
        return f"{last} archived into {spec.archive_directory}"

    return Step(f"WAL archiving into {spec.archive_directory}", check, apply)


def _register_step(spec: PgSpec, host_node: Node, credential: Credential) -> Step:
    def check(w: Work):
        node = Node.objects.filter(name=spec.node_name, cluster__name=spec.cluster).first()
        return (node is not None and PgProvision.objects.filter(cluster=node.cluster).exists()
                and f"{spec.node_name} is registered in {spec.cluster}")  # fmt: skip

    def apply(w: Work) -> str:
        node = NodeSpec(
            name=spec.node_name,
            service=Node.Service.POSTGRESQL,
            role=Node.Role.PRIMARY,
            address=spec.listen_addresses[0],
            known_hosts=host_node.known_hosts,
            ssh_port=host_node.ssh_port,
            ssh_user=host_node.ssh_user,
            ssh_credential=host_node.ssh_credential.name if host_node.ssh_credential else None,
            db_port=spec.port,
            db_credential=credential.name,
            data_directory=spec.data_directory,
            facts={"log_path": spec.log_file, "data_directory": spec.data_directory,
                   "config_file": posixpath.join(spec.data_directory, "postgresql.conf"),
                   "hba_file": posixpath.join(spec.data_directory, "pg_hba.conf")},
        )  # fmt: skip
        with transaction.atomic():
            cluster = register_cluster(
                spec.cluster, Cluster.Kind.POSTGRESQL, environment=spec.environment,
                nodes=[node], actor=w.actor, source=AuditEntry.Source.JOB,
                description=f"provisioned on {host_node.name} by job #{w.job.pk}",
            )  # fmt: skip
            PgProvision.objects.update_or_create(cluster=cluster, defaults={
                "version": spec.version, "os_family": w.family or "debian",
                "archive_directory": spec.archive_directory, "networks": spec.networks,
                "admin_credential": credential,
            })  # fmt: skip
            audit.append(
                audit.PROVISION_PG_DONE, actor=w.actor, source=AuditEntry.Source.JOB,
                target=f"cluster:{spec.cluster}", node=spec.node_name, job_id=w.job.pk,
                output=f"PostgreSQL {spec.version} primary on {host_node.name} "
                f"{spec.listen_addresses[0]}:{spec.port}, data {spec.data_directory}",
            )  # fmt: skip
        return f"registered cluster {spec.cluster} with primary {spec.node_name}"

    return Step(f"Register {spec.cluster} in the inventory", check, apply)


def primary_steps(spec: PgSpec, host_node: Node, credential: Credential) -> list[Step]:
    return [
        detect_os_step(),
        package_step(spec),
        directories_step(spec, extra=(spec.archive_directory,)),
        _initdb_step(spec),
        configure_step(spec, render_conf(spec, archive_directory=spec.archive_directory)),
        _hba_step(spec),
        start_step(spec),
        _password_step(spec, credential),
        _local_step(spec, credential),
        _archive_step(spec, credential),
        _register_step(spec, host_node, credential),
    ]


def provision_primary(ctx, host_node: Node, spec: PgSpec) -> dict:
    """Run the primary's steps on `host_node` (a job body's work; `ctx` a JobContext).
    Raises JobFailed at the first failing step; returns the steps' outcomes."""
    credential = Credential.objects.get(name=spec.admin_credential)
    work = Work(ctx, host_node, spec, secrets=[credential.reveal()])
    outcomes = run_steps(work, primary_steps(spec, host_node, credential))
    cluster = Cluster.objects.get(name=spec.cluster)
    return {"cluster": cluster.pk, "steps": tally(outcomes)}


def spec_from_params(params: dict) -> PgSpec:
    return PgSpec(**params["spec"])


def start_provision(
    host_node: Node, spec: PgSpec, admin_password: str, *, actor, source=AuditEntry.Source.UI
):
    """Store the admin password (encrypted) and enqueue the provisioning job; audited.
    The job's params hold the spec and the credential's name, never the password."""
    if Cluster.objects.filter(name=spec.cluster).exists():
        raise StepFailed(f"a cluster named {spec.cluster} is already registered")
    with transaction.atomic():
        store_credential(spec.admin_credential, Credential.Kind.PASSWORD, admin_password,
                         actor=actor, username=PG_USER, source=source)  # fmt: skip
        job = jobs.enqueue(
            PROVISION_KIND, f"Provision PostgreSQL {spec.version} cluster {spec.cluster}",
            user=actor, source=source, target=host_node,
            params={"host": host_node.pk, "spec": asdict(spec)},
        )  # fmt: skip
        audit.append(
            audit.PROVISION_REQUESTED, actor=actor, source=source, target=f"cluster:{spec.cluster}",
            node=host_node.name, job_id=job.pk,
            output=f"PostgreSQL {spec.version} on {host_node.name}, data {spec.data_directory}",
        )  # fmt: skip
    return job


RESUMABLE_KINDS = (PROVISION_KIND, "clusters.add_standby")


def rerun_provision(job, *, actor, source=AuditEntry.Source.UI):
    """Run a failed provisioning or standby job again with the same parameters; its steps'
    checks skip what the first run did, so it resumes at the failed step. Audited."""
    if job.kind not in RESUMABLE_KINDS:
        raise StepFailed(f"job #{job.pk} is not a provisioning job")
    with transaction.atomic():
        new = jobs.rerun(job, user=actor, source=source)
        audit.append(
            audit.PROVISION_REQUESTED, actor=actor, source=source,
            target=job.target_name and f"{job.target_type}:{job.target_name}", job_id=new.pk,
            output=f"re-run of job #{job.pk} ({job.title})",
        )  # fmt: skip
    return new
