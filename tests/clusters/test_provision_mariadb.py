"""MariaDB provisioning against the lab's bare hosts (bare1, bare2): from nothing to a hardened,
registered server whose baseline passes; a re-run changes nothing; faults stop the job at their
step with the reason and what was already done.

The lab's hosts share this machine's filesystem and users. Each test's server lives under
LAB_DIR/provision/<name> and is stopped and removed afterwards; the history step links root's
~/.mysql_history and ~/.mariadb_history (this machine's /root), which are put back as they were;
every other OS user of the machine is left out of the history step and of the baseline's history
check (BASELINE_HISTORY_IGNORE_USERS), so nothing outside the lab is touched.
"""

import os
import pwd
import shlex
import signal
import subprocess
import time
from pathlib import Path

import MySQLdb
import pytest
from django.test import override_settings

from clusters.actions import NodeSpec, register_host
from clusters.models import BaselineResult, Cluster, Node
from clusters.provision.mariadb import ProvisionRefused, provision_mariadb, rerun_mariadb_provision
from clusters.provision.mariadb import request_mariadb_provision as request
from console import audit
from console.jobs import run_job
from console.lab import faults
from console.lab.demo import known_hosts_of
from console.models import AuditEntry, Job, JobStep
from console.secrets import store_credential
from tests.factories import make_job
from users.passwords import mysql_native_password_hash

lab_db = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions
PASSWORD = "Prov-Admin-pw-4217-xyzzy"
SERVICE_USER = "mprovsvc"
# What a re-run may run on the host (after `timeout --kill-after=5 N`): reads only.
READ_ONLY_PROGRAMS = {"cat", "test", "stat", "find", "getent", "mariadb-admin", "dpkg-query",
                      "my_print_defaults", "readlink"}  # fmt: skip
ROOT_HISTORY = [Path("/root/.mysql_history"), Path("/root/.mariadb_history")]


def _base(name: str) -> Path:
    return Path(os.environ["LAB_DIR"]) / "provision" / name


def register_bare_hosts(env=os.environ) -> dict[str, Node]:
    store_credential("lab-ssh-key", "ssh-key", Path(env["LAB_SSH_KEY"]).read_text(), actor=None,
                     username=env["LAB_SSH_USER"])  # fmt: skip
    hosts = {}
    for name in ("bare1", "bare2"):
        address = env[f"LAB_{name.upper()}_SSH_HOST"]
        known = Path(env[f"LAB_{name.upper()}_SSH_KNOWN_HOSTS"]).read_text()
        spec = NodeSpec(name=name, service=Node.Service.NONE, address=address,
                        known_hosts=known_hosts_of(known, address), ssh_user="root",
                        ssh_credential="lab-ssh-key")  # fmt: skip
        hosts[name] = register_host(spec, actor=None)
    return hosts


def fields(host: Node, name: str, **changes) -> dict:
    values = {
        "name": name, "environment": "lab", "bind_address": host.address, "port": 3306,
        "directory": str(_base(name)), "admin_user": "dba_admin", "admin_host": "%",
    }  # fmt: skip
    return {**values, **changes}


def stop_server(base: Path) -> None:
    """Stop the server a test provisioned under `base` (SIGTERM, then wait until it is gone
    or a zombie, with a deadline) and remove its files."""
    pid_file = base / "run" / "mariadbd.pid"
    if pid_file.exists() and pid_file.read_text().strip().isdigit():
        pid = int(pid_file.read_text().strip())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
    subprocess.run(["rm", "-rf", "--", str(base)], check=True)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def hosts(lab, settings):
    others = [p.pw_name for p in pwd.getpwall() if p.pw_name not in ("root", "mysql")]
    with override_settings(BASELINE_HISTORY_IGNORE_USERS=others):
        yield register_bare_hosts()


@pytest.fixture
def root_history():
    """root's history files as they were before the test, put back afterwards."""
    before = {}
    for path in ROOT_HISTORY:
        if path.is_symlink():
            before[path] = ("link", os.readlink(path))
        elif path.exists():
            before[path] = ("file", path.read_bytes())
        else:
            before[path] = ("missing", None)
    yield
    for path, (kind, value) in before.items():
        if path.is_symlink() or path.exists():
            path.unlink()
        if kind == "link":
            path.symlink_to(value)
        elif kind == "file":
            path.write_bytes(value)


@pytest.fixture
def servers():
    """Names of the servers a test provisions; each is stopped and removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        stop_server(_base(name))


def run(job: Job) -> str:
    return run_job(job.pk, provision_mariadb.body)


def steps_of(job: Job) -> dict[str, str]:
    return dict(JobStep.objects.filter(job=job).order_by("position").values_list("name", "status"))


def my(host: str, user: str, password: str, sql: str, port: int = 3306) -> list[tuple]:
    conn = MySQLdb.connect(host=host, port=port, user=user, password=password,
                           connect_timeout=5, autocommit=True)  # fmt: skip
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


# --- From nothing to a hardened, registered server ---------------------------------------------


@lab_db
def test_provision_from_nothing_then_a_rerun_changes_nothing(
    hosts, servers, root_history, dba, assert_no_secret_stored
):
    bare1 = hosts["bare1"]
    servers.append("mprov1")
    job = request(bare1, fields(bare1, "mprov1"), PASSWORD, actor=dba)
    assert run(job) == Job.Status.SUCCEEDED, Job.objects.get(pk=job.pk).error
    statuses = steps_of(job)
    assert len(statuses) == 14
    assert statuses["Install the MariaDB server package"] == "skipped"  # installed in the lab
    for step in ("Initialise the data directory", "Start mariadbd", "Create the admin account",
                 "Remove the anonymous accounts", "Drop the test database and its grants",
                 "Root by unix_socket only", "Register in the inventory"):  # fmt: skip
        assert statuses[step] == "done", step

    # The admin logs in over the network; the server is hardened as asked.
    facts = "SELECT @@local_infile, @@bind_address, CURRENT_USER(), @@secure_file_priv"
    rows = my(bare1.address, "dba_admin", PASSWORD, facts)
    assert rows == [(0, bare1.address, "dba_admin@%", f"{_base('mprov1')}/files/")]
    users = my(bare1.address, "dba_admin", PASSWORD, "SELECT User, Host FROM mysql.user")
    assert ("", "localhost") not in users and not [u for u in users if u[0] == ""]
    assert [h for u, h in users if u == "root"] == ["localhost"]
    assert my(bare1.address, "dba_admin", PASSWORD, "SHOW DATABASES LIKE 'test'") == []
    grants = "SELECT COUNT(*) FROM mysql.db WHERE Db IN ('test', 'test\\\\_%')"
    assert my(bare1.address, "dba_admin", PASSWORD, grants) == [(0,)]
    [(plugin, auth_or)] = my(bare1.address, "dba_admin", PASSWORD,
                             "SELECT plugin, JSON_EXTRACT(Priv, '$.auth_or') FROM mysql.user u "
                             "JOIN mysql.global_priv p USING (User, Host) "
                             "WHERE User = 'root'")  # fmt: skip
    assert plugin == "unix_socket" and auth_or in (None, "[{}]")  # no other method
    with pytest.raises(MySQLdb.OperationalError):  # no anonymous login over the network
        my(bare1.address, "", "", "SELECT 1")
    for path in ROOT_HISTORY:
        assert path.is_symlink() and os.readlink(path) == "/dev/null"
    cnf = (_base("mprov1") / "my.cnf").read_text()
    assert "local-infile = 0" in cnf and f"bind-address = {bare1.address}" in cnf

    # Registered; its recorded baseline passes.
    node = Node.objects.get(name="mprov1-bare1")
    assert node.cluster.name == "mprov1" and node.cluster.kind == Cluster.Kind.MARIADB
    assert (node.service, node.role, node.address, node.db_port) == (
        "mariadb", "primary", bare1.address, 3306)  # fmt: skip
    assert node.config_file == str(_base("mprov1") / "my.cnf")
    assert node.version.startswith("10.11")
    results = BaselineResult.objects.filter(node=node)
    assert results.count() == 7 and set(results.values_list("status", flat=True)) == {"pass"}
    assert AuditEntry.objects.filter(action=audit.PROVISION_MARIADB_REQUESTED).count() == 1
    assert_no_secret_stored(PASSWORD, mysql_native_password_hash(PASSWORD))

    # A re-run finds everything done and changes nothing on the server.
    entries = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    again = request_again(job, dba)
    assert run(again) == Job.Status.SUCCEEDED, Job.objects.get(pk=again.pk).error
    statuses = steps_of(again)
    assert statuses.pop("Detect the OS family") == "done"
    assert statuses.pop("Run the security baseline check") == "done"
    assert set(statuses.values()) == {"skipped"}, statuses
    changes = AuditEntry.objects.filter(pk__gt=entries).exclude(
        action__in=[audit.REMOTE_COMMAND, audit.REMOTE_SQL, audit.BASELINE_CHECKED]
    )
    assert not changes.exists(), list(changes.values_list("action", "target"))
    commands = AuditEntry.objects.filter(pk__gt=entries, action=audit.REMOTE_COMMAND)
    programs = {shlex.split(c)[3] for c in commands.values_list("command", flat=True)}
    assert programs <= READ_ONLY_PROGRAMS, programs - READ_ONLY_PROGRAMS
    statements = AuditEntry.objects.filter(pk__gt=entries, action=audit.REMOTE_SQL)
    assert all(
        s.lstrip().upper().startswith(("SELECT", "--", "SHOW"))
        for s in statements.values_list("command", flat=True)
    )


def request_again(job: Job, user) -> Job:
    """The same provisioning once more (jobs.rerun only takes failed jobs)."""
    return make_job(kind=job.kind, params=job.params, user=user)


# --- Faults: each stops the job at its step with the reason and what was already done ----------

LISTENER = (
    "import socket, sys\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind((sys.argv[1], 3306))\n"
    "s.listen()\n"
    "sys.stdin.read()\n"  # until the test closes its stdin
)


@lab_db
def test_unreachable_host_stops_at_the_first_step(hosts, servers, lab, dba, settings):
    settings.EXECUTOR_CONNECT_TIMEOUT = 2
    bare2 = hosts["bare2"]
    job = request(bare2, fields(bare2, "mprov2"), PASSWORD, actor=dba)
    with faults.cut(lab, "bare2"):
        assert run(job) == Job.Status.FAILED
    job.refresh_from_db()
    assert job.error.startswith('Step 1 "Detect the OS family" failed: connecting to ')
    assert "timed out" in job.error and "Already done: nothing." in job.error
    statuses = steps_of(job)
    assert statuses.pop("Detect the OS family") == "failed"
    assert set(statuses.values()) == {"pending"}
    assert not _base("mprov2").exists()


@lab_db
def test_missing_package_stops_at_the_install_step(hosts, servers, dba):
    bare2 = hosts["bare2"]
    job = request(bare2, fields(bare2, "mprov3", package="mariadb-server-99"), PASSWORD,
                  actor=dba)  # fmt: skip
    assert run(job) == Job.Status.FAILED
    job.refresh_from_db()
    assert job.error.startswith('Step 2 "Install the MariaDB server package" failed: installing '
                                "mariadb-server-99 failed")  # fmt: skip
    assert "Unable to locate package mariadb-server-99" in job.error
    assert "Already done: Detect the OS family." in job.error
    assert list(steps_of(job).values())[:3] == ["done", "failed", "pending"]
    assert not _base("mprov3").exists()
    assert not Cluster.objects.filter(name="mprov3").exists()


@pytest.fixture
def service_user(lab):
    """An OS service user with a home directory under the lab directory (Debian's mysql has
    none, /nonexistent), deleted afterwards with its home."""
    home = Path(os.environ["LAB_DIR"]) / "home" / SERVICE_USER
    subprocess.run(["useradd", "--system", "--user-group", "--home-dir", str(home),
                    "--create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                   check=True)  # fmt: skip
    yield home
    subprocess.run(["userdel", SERVICE_USER], check=True)
    subprocess.run(["rm", "-rf", "--", str(home)], check=True)


@lab_db
def test_port_in_use_stops_at_start_and_a_rerun_resumes_there(
    hosts, service_user, servers, root_history, lab, dba
):
    """Also: a service user of one's own, whose history files are linked too."""
    bare2 = hosts["bare2"]
    servers.append("mprov4")
    listener = subprocess.Popen(lab.host("bare2").argv(["python3", "-c", LISTENER, bare2.address]),
                                stdin=subprocess.PIPE)  # fmt: skip
    try:
        faults.wait_port_open(bare2.address, 3306, timeout=10)
        asked = fields(bare2, "mprov4", service_user=SERVICE_USER)
        job = request(bare2, asked, PASSWORD, actor=dba)
        assert run(job) == Job.Status.FAILED
    finally:
        listener.stdin.close()
        listener.wait(timeout=10)
    job.refresh_from_db()
    assert job.error.startswith(
        f'Step 6 "Start mariadbd" failed: port 3306 on {bare2.address} is already in use '
        f'({bare2.address}:3306 users:(("python3",pid={listener.pid},'
    )
    assert "nothing was started" in job.error
    assert ("Already done: Detect the OS family; Install the MariaDB server package; Make the "
            "server's directories; Write the option file (local-infile=0, bind-address); "
            "Initialise the data directory.") in job.error  # fmt: skip
    assert not (_base("mprov4") / "run" / "mariadbd.pid").exists()

    # The port is free again: a re-run skips what was done and carries on from the start.
    again = rerun_mariadb_provision(job, actor=dba)
    assert again.params["rerun_of"] == job.pk
    assert run(again) == Job.Status.SUCCEEDED, Job.objects.get(pk=again.pk).error
    statuses = list(steps_of(again).values())
    assert statuses[1:5] == ["skipped"] * 4 and statuses[5:7] == ["done", "done"]
    assert my(bare2.address, "dba_admin", PASSWORD, "SELECT @@local_infile") == [(0,)]
    pid = int((_base("mprov4") / "run" / "mariadbd.pid").read_text())
    assert pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name == SERVICE_USER
    for name in (".mysql_history", ".mariadb_history"):
        link = service_user / name
        assert link.is_symlink() and os.readlink(link) == "/dev/null"
        assert pwd.getpwuid(os.lstat(link).st_uid).pw_name == SERVICE_USER


@lab_db
def test_an_admin_host_the_console_does_not_match_stops_at_the_admin_step(
    hosts, servers, root_history, dba
):
    bare1 = hosts["bare1"]
    servers.append("mprov5")
    job = request(bare1, fields(bare1, "mprov5", admin_host="192.0.2.%"), PASSWORD, actor=dba)
    assert run(job) == Job.Status.FAILED
    job.refresh_from_db()
    assert job.error.startswith(
        'Step 7 "Create the admin account" failed: dba_admin@192.0.2.% was created, but the '
        "console cannot log in as it from its own address"
    )
    assert "Start mariadbd." in job.error  # the last of the steps already done


# --- Refused requests: nothing stored, nothing queued --------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bind_address": "10.99.0.1"}, "bind_address: the console reaches the server at"),
        ({"bind_address": "bare1"}, "bind_address: 'bare1' is not an IP address"),
        ({"directory": "/etc"}, "directory: /etc is a system directory"),
        ({"directory": "relative/dir"}, "directory: an absolute path"),
        ({"admin_user": "a'b"}, "admin_user: expected"),
        ({"port": 0}, "port: expected 1 to 65535"),
        ({"name": "Bad Name"}, "name: expected"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_stored(db, dba, changes, message):
    from console.models import Credential

    host = Node.objects.create(name="bare9", service=Node.Service.NONE, address="192.0.2.9",
                               known_hosts="")  # fmt: skip
    with pytest.raises(ProvisionRefused, match=message):
        request(host, {**fields(host, "mprov9"), **changes}, PASSWORD, actor=dba)
    assert not Job.objects.exists() and not Credential.objects.exists()
    assert not AuditEntry.objects.filter(action=audit.PROVISION_MARIADB_REQUESTED).exists()


def test_a_taken_cluster_name_or_a_non_bare_host_is_refused(db, dba):
    from clusters.models import Environment

    env = Environment.objects.create(name="lab")
    cluster = Cluster.objects.create(name="taken", kind=Cluster.Kind.MARIADB, environment=env)
    host = Node.objects.create(name="bare9", service=Node.Service.NONE, address="192.0.2.9",
                               known_hosts="")  # fmt: skip
    with pytest.raises(ProvisionRefused, match="a cluster named 'taken' is already registered"):
        request(host, fields(host, "taken"), PASSWORD, actor=dba)
    server = Node.objects.create(name="my9", service=Node.Service.MARIADB, cluster=cluster,
                                 address="192.0.2.10", known_hosts="")  # fmt: skip
    with pytest.raises(ProvisionRefused, match="my9 is not a bare host"):
        request(server, fields(server, "other"), PASSWORD, actor=dba)
    assert not Job.objects.exists()


# --- Pure parts, on recorded real output ---------------------------------------------------------

OS_RELEASE_DEBIAN_12 = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""
SS_MY1 = """\
LISTEN 0      128    10.77.88.14:22   0.0.0.0:* users:(("sshd",pid=15810,fd=4))
LISTEN 0      70     10.77.88.14:3306 0.0.0.0:* users:(("mariadbd",pid=16591,fd=19))
"""


def test_os_family_of_debian_gentoo_ubuntu_and_others():
    from clusters.provision.mariadb_host import os_family, parse_os_release

    release = parse_os_release(OS_RELEASE_DEBIAN_12)
    assert release["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    assert os_family(release) == "debian"
    assert os_family({"ID": "gentoo"}) == "gentoo"
    assert os_family({"ID": "ubuntu", "ID_LIKE": "debian"}) == "debian"
    assert os_family({"ID": "rocky", "ID_LIKE": "rhel centos fedora"}) is None


def test_listeners_from_ss():
    from clusters.provision.mariadb_host import parse_listeners

    assert parse_listeners(SS_MY1) == [
        ("10.77.88.14", 22, 'users:(("sshd",pid=15810,fd=4))'),
        ("10.77.88.14", 3306, 'users:(("mariadbd",pid=16591,fd=19))'),
    ]
    assert parse_listeners("LISTEN 0 80 [::]:3306 [::]:*\n") == [("::", 3306, "")]


def test_option_file_reads_back_as_the_baseline_wants():
    from clusters import mycnf
    from clusters.provision.mariadb_cnf import Layout, render_cnf

    text = render_cnf(Layout("/srv/my/a"), bind_address="10.0.0.5", port=3307,
                      service_user="mysql")  # fmt: skip
    assert mycnf.as_bool(mycnf.get_effective(text, ["mysqld"], "local_infile")) is False
    assert mycnf.get_option(text, "mysqld", "bind-address") == "10.0.0.5"
    assert mycnf.get_option(text, "mysqld", "port") == "3307"
    assert mycnf.get_option(text, "mysqld", "log-error") == "/srv/my/a/log/error.log"
    assert mycnf.get_option(text, "client", "socket") == "/srv/my/a/run/mariadbd.sock"
    assert mycnf.get_option(text, "mysqld", "secure-file-priv") == "/srv/my/a/files"


def test_admin_statements_carry_the_hash_and_a_quoted_account():
    from clusters.provision.mariadb_accounts import admin_statements
    from users.passwords import mysql_native_password_hash

    hashed = mysql_native_password_hash("password")
    assert hashed == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"  # SELECT PASSWORD('password')
    text = admin_statements("dba", "10.0.%", hashed)
    assert "CREATE USER IF NOT EXISTS `dba`@`10.0.%` IDENTIFIED BY PASSWORD '*2470C0" in text
    assert "GRANT ALL PRIVILEGES ON *.* TO `dba`@`10.0.%` WITH GRANT OPTION;" in text
    assert "--" not in text
    with pytest.raises(ValueError):
        admin_statements("dba", "%", "password")
