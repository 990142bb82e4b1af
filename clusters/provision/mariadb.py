"""Provision a MariaDB server on a bare host over SSH, as a job of steps that a re-run resumes.

    job = request_mariadb_provision(host, fields, password, actor=user)   # the form's action

The job (`clusters.provision_mariadb`) runs these steps through clusters.provision.steps; each
checks first whether its work is already there (then it is skipped), so re-running a failed
job (console.jobs.rerun) carries on where it stopped:

 1. detect the OS family (/etc/os-release)           mariadb_host
 2. install the server package (Debian: apt-get; Gentoo: emerge, documented, not tested here)
 3. make the base directory and data/, run/, log/, files/ (the service user owns those)
 4. write the option file: local-infile=0, bind-address, port, socket, log-error, …
 5. initialise the data directory (mariadb-install-db --defaults-file=<its own option file>)
 6. start mariadbd in the background (--defaults-file; own pid file, socket and logs), after
    checking the address is the host's and nothing holds the port; wait until it answers
 7. the admin account (mysql_native_password hash computed by the console)   mariadb_accounts
 8-11. mysql_secure_installation: no anonymous accounts, no remote root, no test database nor
    its grants, root by unix_socket only
12. ~/.mysql_history and ~/.mariadb_history of root and the service user linked to /dev/null
13. register the cluster and its server in the inventory
14. run the security baseline check; the job fails unless every check passes

Secrets: the admin password is stored as a console Credential (encrypted) by the action before
the job is queued; job parameters name the credential only. The password itself never reaches a
host, a statement, a log or an audit entry: the host gets its hash, masked in the audit entry.
"""

import re
from dataclasses import asdict, dataclass
from functools import cached_property

from django.db import transaction

from clusters.baseline import Probe
from clusters.models import Cluster, Node
from clusters.provision import mariadb_accounts as accounts
from clusters.provision import mariadb_host as host_steps
from clusters.provision.mariadb_cnf import (
    WILDCARDS,
    Layout,
    check_base_directory,
    check_bind_address,
)
from clusters.provision.steps import Step, run_steps
from console import audit, jobs
from console.executor import MysqlTarget, run_command, run_sql
from console.models import AuditEntry, Credential, Job
from console.secrets import store_credential
from users.passwords import generate_password

KIND = "clusters.provision_mariadb"
LABEL = "provision mariadb"
COMMAND_TIMEOUT = 60
SQL_TIMEOUT = 20
ADMIN_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
ADMIN_HOST = re.compile(r"^[A-Za-z0-9_.%:-]{1,255}$")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
SERVICE_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._/:-]{0,99}$")


class ProvisionRefused(ValueError):
    """The request cannot be provisioned as asked; nothing was stored or queued."""


@dataclass(frozen=True)
class MariadbProvision:
    """What to build: the job's parameters (small, no secret: the credential's name only)."""

    host: int  # the bare host's Node id
    name: str  # the cluster to register
    node_name: str
    environment: str
    bind_address: str
    port: int
    directory: str
    admin_user: str
    admin_host: str
    credential: str
    service_user: str = "mysql"
    package: str = ""  # empty: the OS family's MariaDB server package

    def __post_init__(self) -> None:
        checks = (
            (NAME.match(self.name), "name", "lower-case letters, digits and '-'"),
            (ADMIN_USER.match(self.admin_user), "admin_user", "letters, digits, '_', '.', '-'"),
            (ADMIN_HOST.match(self.admin_host), "admin_host", "a host name, address or pattern"),
            (SERVICE_USER.match(self.service_user), "service_user", "an OS user name"),
            (not self.package or PACKAGE.match(self.package), "package", "a package name"),
            (1 <= self.port <= 65535, "port", "1 to 65535"),
        )
        for ok, field, expected in checks:
            if not ok:
                raise ProvisionRefused(f"{field}: expected {expected}")
        for field, check in (("directory", check_base_directory),
                             ("bind_address", check_bind_address)):  # fmt: skip
            try:
                check(getattr(self, field))
            except ValueError as e:
                raise ProvisionRefused(f"{field}: {e}") from None

    @classmethod
    def from_params(cls, params: dict) -> "MariadbProvision":
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in params.items() if k in names})

    def as_params(self) -> dict:
        return asdict(self)


class ProvisionRun:
    """The context the steps share: the job, the host, the layout, the calls to the host and
    to the new server (each through the executor, audited, naming the job), and `state` (the
    OS family found by the first step)."""

    def __init__(self, ctx, provision: MariadbProvision):
        self.ctx = ctx
        self.job = ctx.job
        self.actor = ctx.user
        self.params = provision
        self.host = Node.objects.select_related("ssh_credential").get(pk=provision.host)
        self.layout = Layout(check_base_directory(provision.directory))
        self.state: dict = {}

    def log(self, message: str, level: str = "info") -> None:
        self.ctx.log(message, level)

    def progress(self, percent: int) -> None:
        self.ctx.progress(percent)

    def sh(self, argv: list[str], **kwargs):
        kwargs.setdefault("timeout", COMMAND_TIMEOUT)
        return run_command(self.host, argv, actor=self.actor, job=self.job, label=LABEL, **kwargs)

    @cached_property
    def credential(self) -> Credential:
        return Credential.objects.get(name=self.params.credential)

    @property
    def db_address(self) -> str:
        bind = self.params.bind_address
        return self.host.address if bind in WILDCARDS else bind

    def admin_target(self) -> MysqlTarget:
        return MysqlTarget(name=self.params.node_name, host=self.db_address,
                           port=self.params.port, username=self.params.admin_user,
                           password=self.credential.reveal())  # fmt: skip

    def sql(self, query, params=None, **kwargs):
        return run_sql(self.admin_target(), query, params, actor=self.actor, job=self.job,
                       label=LABEL, timeout=SQL_TIMEOUT, **kwargs)  # fmt: skip

    def server_node(self) -> Node:
        """The server as the inventory will hold it, not saved: what the baseline's checks and
        fixes read before it is registered."""
        host = self.host
        return Node(name=self.params.node_name, service=Node.Service.MARIADB,
                    address=self.db_address, ssh_port=host.ssh_port, ssh_user=host.ssh_user,
                    known_hosts=host.known_hosts, ssh_credential=host.ssh_credential,
                    db_port=self.params.port, db_credential=self.credential,
                    config_file=self.layout.cnf)  # fmt: skip

    def probe(self) -> Probe:
        return Probe(self.server_node(), actor=self.actor, job=self.job, label=LABEL)


def steps() -> list[Step]:
    h, a = host_steps, accounts
    return [
        Step("Detect the OS family", None, h.apply_detect_os),
        Step("Install the MariaDB server package", h.check_installed, h.apply_install),
        Step("Make the server's directories", h.check_directories, h.apply_directories),
        Step("Write the option file (local-infile=0, bind-address)", h.check_cnf, h.apply_cnf),
        Step("Initialise the data directory", h.check_initialised, h.apply_initialise),
        Step("Start mariadbd", h.check_running, h.apply_start),
        Step("Create the admin account", a.check_admin, a.apply_admin),
        Step("Remove the anonymous accounts", a.check_anonymous, a.apply_anonymous),
        Step("Remove root's remote accounts", a.check_remote_root, a.apply_remote_root),
        Step("Drop the test database and its grants", a.check_test_database,
             a.apply_test_database),
        Step("Root by unix_socket only", a.check_root_socket, a.apply_root_socket),
        Step("Link the SQL history files to /dev/null", h.check_history, h.apply_history),
        Step("Register in the inventory", a.check_registered, a.apply_register),
        Step("Run the security baseline check", None, a.apply_baseline),
    ]  # fmt: skip


@jobs.job_task(KIND)
def provision_mariadb(ctx) -> dict:
    """The job body: every step in order (see the module docstring); JobFailed at the first
    step that cannot be done, naming it, the reason and what was already done."""
    run = ProvisionRun(ctx, MariadbProvision.from_params(ctx.job.params))
    outcomes = run_steps(run, steps())
    statuses = [o.status for o in outcomes]
    return {
        "cluster": run.params.name,
        "node": run.params.node_name,
        "server": f"{run.db_address}:{run.params.port}",
        "steps_done": statuses.count("done"),
        "steps_skipped": statuses.count("skipped"),
    }


def request_mariadb_provision(
    host: Node, fields: dict, password: str, *, actor, source: str = AuditEntry.Source.UI
) -> Job:
    """Store the admin password as a credential and queue the provisioning job; audited.

    `fields`: name, environment, bind_address, port, directory, admin_user, admin_host and
    optionally service_user and package. An empty password is replaced by a generated one
    (stored, never shown). Refused (ProvisionRefused, nothing stored nor queued) when the host
    is not a bare host, the cluster or server name is taken, a field is invalid, or the bind
    address is neither the host's address nor a wildcard (the console reaches the server at the
    host's address)."""
    if host.service != Node.Service.NONE or host.cluster_id is not None:
        raise ProvisionRefused(f"{host.name} is not a bare host")
    name = fields["name"]
    provision = MariadbProvision(
        host=host.pk, name=name, node_name=f"{name}-{host.name}"[:64],
        environment=fields["environment"], bind_address=fields["bind_address"],
        port=int(fields["port"]), directory=fields["directory"],
        admin_user=fields["admin_user"], admin_host=fields["admin_host"],
        credential=f"{name}-mariadb-admin", service_user=fields.get("service_user") or "mysql",
        package=fields.get("package") or "",
    )  # fmt: skip
    if provision.bind_address not in (host.address, *WILDCARDS):
        raise ProvisionRefused(
            f"bind_address: the console reaches the server at {host.name}'s address "
            f"{host.address}; bind it there (or to every address: 0.0.0.0)."
        )
    if Cluster.objects.filter(name=name).exists():
        raise ProvisionRefused(f"name: a cluster named {name!r} is already registered")
    if Node.objects.filter(name=provision.node_name).exists():
        raise ProvisionRefused(f"name: a server named {provision.node_name!r} already exists")
    with transaction.atomic():
        store_credential(provision.credential, Credential.Kind.PASSWORD,
                         password or generate_password(), actor=actor,
                         username=provision.admin_user, source=source)  # fmt: skip
        job = jobs.enqueue(KIND, f"Provision MariaDB {name} on {host.name}", user=actor,
                           source=source, params=provision.as_params(), target=host)  # fmt: skip
        audit.append(
            audit.PROVISION_MARIADB_REQUESTED, actor=actor, source=source,
            target=f"node:{host.name}", node=host.name, job_id=job.pk,
            output=f"cluster {name} in {provision.environment}: {provision.bind_address}:"
            f"{provision.port}, {provision.directory}, admin {provision.admin_user}@"
            f"{provision.admin_host} (password in credential {provision.credential})",
        )  # fmt: skip
    return job


def rerun_mariadb_provision(job: Job, *, actor, source: str = AuditEntry.Source.UI) -> Job:
    """Queue a failed provisioning job again (console.jobs.rerun: same parameters, finished
    steps skipped by their checks); audited with the new job. ExpectedFailure (nothing queued)
    for a job of another kind or one that did not fail."""
    if job.kind != KIND:
        raise ProvisionRefused(f"job #{job.pk} is not a MariaDB provisioning job")
    with transaction.atomic():
        new = jobs.rerun(job, user=actor, source=source)
        audit.append(
            audit.PROVISION_MARIADB_REQUESTED, actor=actor, source=source,
            target=f"node:{job.target_name}", node=job.target_name, job_id=new.pk,
            output=f"re-run of job #{job.pk} ({job.title})",
        )  # fmt: skip
    return new
