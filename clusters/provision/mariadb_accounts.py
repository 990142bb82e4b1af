"""The steps of MariaDB provisioning that work on accounts and the inventory: the admin
account, the mysql_secure_installation steps, registration and the closing baseline check.

The admin account is made by OS root over SSH through the server's socket (the only way in on
a fresh server: root@localhost by unix_socket); every later statement goes over the network as
that admin, through run_sql, like any other work of the console on a registered server. The
secure-installation steps are the security baseline's own checks and fixes (clusters.baseline),
run on the server before it is registered.
"""

import json
import re

from clusters import baseline
from clusters.actions import NodeSpec, RegistrationRefused, register_cluster
from clusters.actions.baseline import check_node
from clusters.baseline.mariadb import LOCAL_HOSTS
from clusters.models import Cluster, Node
from clusters.provision.steps import StepFailed
from console.executor import AuthenticationFailed, CommandFailed, SqlFailed
from console.executor.sql import quote_mysql_account, read_sql_file
from console.models import AuditEntry
from users.passwords import mysql_native_password_hash

_HASH = re.compile(r"^\*[0-9A-F]{40}$")


# --- The admin account -----------------------------------------------------------------------


def check_admin(p) -> str:
    try:
        # Refused until the account exists: audited, kept out of the job log (not a failure).
        [(account, grantable)] = p.sql("clusters:provision-mariadb-whoami", job_log=False).rows
    except AuthenticationFailed:
        return ""
    except SqlFailed as e:
        if "error 1130:" in str(e):  # no account matches the console's address yet
            return ""
        raise
    expected = f"{p.params.admin_user}@{p.params.admin_host}"
    if account != expected or not int(grantable):
        return ""
    return f"{account} logs in over the network with the stored password and may grant"


def admin_statements(user: str, host: str, password_hash: str) -> str:
    """The admin account's statements for the mariadb client (see the .sql file's header)."""
    if not _HASH.match(password_hash):
        raise ValueError("not a mysql_native_password hash")
    # quote_mysql_account doubles % for run_sql's format templates; `% ()` undoes exactly that.
    account = quote_mysql_account(user, host) % ()
    text = read_sql_file("clusters", "provision-mariadb-admin")
    body = "\n".join(ln for ln in text.splitlines() if ln.strip() and not ln.startswith("--"))
    return body.replace("{account}", account).replace("{hash}", password_hash)


def apply_admin(p) -> str:
    password_hash = mysql_native_password_hash(p.credential.reveal())
    statements = admin_statements(p.params.admin_user, p.params.admin_host, password_hash)
    argv = ["mariadb", f"--defaults-file={p.layout.cnf}", "--batch", "--execute", statements]
    try:
        p.sh(argv, secrets=(password_hash,))
    except CommandFailed as e:
        raise StepFailed(f"creating the admin account failed: {e}") from None
    if not check_admin(p):
        raise StepFailed(
            f"{p.params.admin_user}@{p.params.admin_host} was created, but the console cannot "
            f"log in as it from its own address: 'Admin connects from' must match that "
            "address (or be %)"
        )
    return (
        f"{p.params.admin_user}@{p.params.admin_host} has ALL PRIVILEGES WITH GRANT OPTION; "
        "its mysql_native_password hash was computed by the console (the password never "
        "left it)"
    )


# --- mysql_secure_installation -------------------------------------------------------------


def baseline_step(key: str):
    """check and apply made of the baseline check `key` and its fix, on the new server."""
    check = baseline.CHECKS[key]

    def verdict(p):
        found = baseline.evaluate(check, p.probe())
        if found.status == baseline.ERROR:
            raise StepFailed(found.evidence)
        return found

    def check_done(p) -> str:
        found = verdict(p)
        return found.evidence if found.status == baseline.PASS else ""

    def apply_fix(p) -> str:
        probe = p.probe()
        found = baseline.evaluate(check, probe)
        if found.status == baseline.PASS:
            return "nothing to do"
        try:
            return check.fix(probe, found)
        except (baseline.FixRefused, baseline.FixFailed) as e:
            raise StepFailed(str(e)) from None

    return check_done, apply_fix


check_anonymous, apply_anonymous = baseline_step("mariadb.anonymous_accounts")
check_remote_root, apply_remote_root = baseline_step("mariadb.remote_root")
check_test_database, apply_test_database = baseline_step("mariadb.test_database")


def _root_accounts(p) -> list[tuple[str, bool]]:
    """(host, authenticates by unix_socket only) of each root account."""
    rows = p.sql("clusters:provision-mariadb-root-auth").rows
    # auth_or lists every method, the first being the plugin column's own ({} after ALTER USER
    # … IDENTIFIED VIA unix_socket): alternatives are the entries after it.
    return [(host, plugin == "unix_socket" and len(json.loads(auth_or or "[]")) <= 1)
            for host, plugin, auth_or in rows]  # fmt: skip


def check_root_socket(p) -> str:
    accounts = _root_accounts(p)
    if all(only for _host, only in accounts):
        hosts = ", ".join(f"root@{h}" for h, _ in accounts) or "no root account"
        return f"{hosts}: unix_socket only (OS root alone, no password)"
    return ""


def apply_root_socket(p) -> str:
    changed = []
    for host, only in _root_accounts(p):
        if only:
            continue
        if host not in LOCAL_HOSTS:
            raise StepFailed(f"root@{host} is a remote account; the step before drops those")
        p.sql(f"ALTER USER {baseline.quote_account('root', host)} IDENTIFIED VIA unix_socket")
        changed.append(f"root@{host}")
    return f"{', '.join(changed)}: IDENTIFIED VIA unix_socket (no password method left)"


# --- Inventory and baseline ------------------------------------------------------------------


def check_registered(p) -> str:
    node = (
        Node.objects.filter(name=p.params.node_name, cluster__name=p.params.name)
        .select_related("db_credential")
        .first()
    )
    if node is None:
        return ""
    same = (
        node.service == Node.Service.MARIADB
        and node.address == p.host.address
        and node.db_port == p.params.port
        and node.db_credential is not None
        and node.db_credential.name == p.params.credential
        and node.config_file == p.layout.cnf
    )
    return f"{node.name} is registered in cluster {p.params.name}" if same else ""


def apply_register(p) -> str:
    [facts] = p.sql("clusters:mariadb-discover").rows
    version, data_directory, _port, log_error, _read_only, _hostname = facts
    host = p.host
    spec = NodeSpec(
        name=p.params.node_name, service=Node.Service.MARIADB, role=Node.Role.PRIMARY,
        address=host.address, known_hosts=host.known_hosts, ssh_port=host.ssh_port,
        ssh_user=host.ssh_user,
        ssh_credential=host.ssh_credential.name if host.ssh_credential else None,
        db_port=p.params.port, db_credential=p.params.credential,
        data_directory=p.layout.data,
        facts={"version": version, "data_directory": str(data_directory).rstrip("/"),
               "config_file": p.layout.cnf, "log_path": log_error},
    )  # fmt: skip
    try:
        register_cluster(
            p.params.name, Cluster.Kind.MARIADB, environment=p.params.environment,
            nodes=[spec], actor=p.actor, source=AuditEntry.Source.JOB,
            description=f"MariaDB provisioned on {host.name}",
        )  # fmt: skip
    except RegistrationRefused as e:
        raise StepFailed(f"registration refused: {e}") from None
    return f"registered {p.params.node_name} ({version}) as the primary of {p.params.name}"


def apply_baseline(p) -> str:
    node = Node.objects.select_related("ssh_credential", "db_credential").get(
        name=p.params.node_name
    )
    run = check_node(node, actor=p.actor, job=p.job)
    results = list(run.results.order_by("id"))
    failing = [r for r in results if r.status != baseline.PASS]
    if failing:
        lines = [f"{r.check_key}: {r.status}: {r.evidence.splitlines()[0] if r.evidence else ''}"
                 for r in failing]  # fmt: skip
        raise StepFailed(f"{len(failing)} of {len(results)} baseline checks do not pass:\n"
                         + "\n".join(lines))  # fmt: skip
    return f"{len(results)}/{len(results)} baseline checks pass: " + ", ".join(
        r.check_key for r in results
    )
