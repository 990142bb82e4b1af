"""The lab's hosts: namespaces on a bridge, each with its own address, name and key-only sshd;
slapd reachable from the hosts; MariaDB on my1, unhardened, with its seed."""

import json
import os
import subprocess
from pathlib import Path

import asyncssh
import MySQLdb
import pytest

from console.executor import HostKeyRejected, SshTarget, run_command
from console.lab import seed
from console.lab.net import HOST_NAMES

pytestmark = pytest.mark.usefixtures("lab")


def host_env(env: dict, host: str, name: str) -> str:
    """A per-host variable of `lab env`: LAB_DB1_SSH_HOST..."""
    return env[f"LAB_{host.upper()}_SSH_{name}"]


@pytest.fixture(scope="module")
def env(lab_env) -> dict:
    """Every variable of `lab env`, also the per-host ones lab_env does not list."""
    return dict(os.environ)


def ssh(env: dict, host: str, *command: str, key: str | None = None, known_hosts=None):
    argv = [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ConnectTimeout=5",
    ]
    argv += ["-o", f"UserKnownHostsFile={known_hosts or host_env(env, host, 'KNOWN_HOSTS')}"]
    argv += ["-o", "IdentitiesOnly=yes", "-i", key or env["LAB_SSH_KEY"]]
    argv += [f"root@{host_env(env, host, 'HOST')}", *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


# --- addressing and routes ----------------------------------------------------------------------
def test_each_host_has_its_own_address_on_the_lab_network(lab, lab_env):
    addresses = json.loads(lab_env["LAB_HOSTS"])
    assert sorted(addresses) == sorted(HOST_NAMES)
    assert len(set(addresses.values())) == len(HOST_NAMES)
    assert all(a.startswith(lab_env["LAB_NET"].rsplit(".", 1)[0] + ".") for a in addresses.values())


@pytest.mark.parametrize("host", HOST_NAMES)
def test_host_has_no_default_route(lab, host):
    routes = subprocess.run(
        ["ip", "-n", lab.host(host).namespace, "-j", "route", "show", "default"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    assert json.loads(routes.stdout) == []


def test_host_cannot_send_outside_the_lab(lab):
    # Asks the routing table only (no connection is attempted): inside a host, an address
    # outside the lab (TEST-NET-1 here) has no route at all.
    lookup = subprocess.run(
        lab.host("db1").argv(["ip", "route", "get", "192.0.2.1"]),
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert lookup.returncode != 0
    assert "unreachable" in lookup.stderr.lower()


def test_blackhole_route_covers_the_lab_range(lab):
    routes = subprocess.run(
        ["ip", "-j", "route", "show", "exact", str(lab.net.blackhole)],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    assert [r.get("type") for r in json.loads(routes.stdout)] == ["blackhole"]


def test_hosts_resolve_each_other_by_name(env):
    result = ssh(env, "db2", "getent", "hosts", "db1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [host_env(env, "db1", "HOST"), "db1"]


# --- sshd on every host -------------------------------------------------------------------------
@pytest.mark.parametrize("host", HOST_NAMES)
def test_ssh_with_lab_key_reaches_that_host_and_only_it(env, host):
    result = ssh(env, host, "hostname")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{host}\n"


@pytest.mark.parametrize("host", HOST_NAMES)
def test_ssh_refuses_an_unknown_client_key(env, host, tmp_path):
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    result = ssh(env, host, "hostname", key=str(key))
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_one_known_hosts_file_verifies_every_host(env):
    for host in HOST_NAMES:
        result = ssh(env, host, "true", known_hosts=env["LAB_KNOWN_HOSTS"])
        assert result.returncode == 0, (host, result.stderr)


def executor_target(env: dict, host: str, known_hosts: str) -> SshTarget:
    return SshTarget(
        name=f"lab-{host}",
        host=host_env(env, host, "HOST"),
        port=int(host_env(env, host, "PORT")),
        username="root",
        known_hosts=known_hosts,
        private_key=Path(env["LAB_SSH_KEY"]).read_text(),
    )


@pytest.mark.django_db(transaction=True)
def test_executor_runs_on_a_host_with_its_recorded_key(env):
    known = Path(host_env(env, "db2", "KNOWN_HOSTS")).read_text()
    result = run_command(executor_target(env, "db2", known), ["hostname"])
    assert result.stdout == "db2\n"


@pytest.mark.django_db(transaction=True)
def test_executor_refuses_a_changed_host_key(env):
    address = host_env(env, "db2", "HOST")
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    with pytest.raises(HostKeyRejected, match="changed key"):
        run_command(executor_target(env, "db2", f"{address} {other}\n"), ["hostname"])


@pytest.mark.django_db(transaction=True)
def test_executor_refuses_another_hosts_key_for_an_address(env):
    # db1's real key recorded for db2's address: as after an address was given to another host.
    db1_key = Path(host_env(env, "db1", "KNOWN_HOSTS")).read_text().split(maxsplit=1)[1]
    address = host_env(env, "db2", "HOST")
    with pytest.raises(HostKeyRejected):
        run_command(executor_target(env, "db2", f"{address} {db1_key}"), ["hostname"])


# --- slapd on the bridge ------------------------------------------------------------------------
def ldapwhoami(lab, lab_env, uid: str, password: str, host: str | None = None):
    argv = ["ldapwhoami", "-x", "-H", lab_env["LAB_LDAP_URI"], "-D", seed.person_dn(uid)]
    argv += ["-w", password, "-o", "nettimeout=5"]
    if host:
        argv = lab.host(host).argv(argv)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("host", [None, "db1"], ids=["root-namespace", "db1"])
def test_ldap_bind_as_a_directory_person(lab, lab_env, host):
    person = seed.person("zoe")
    result = ldapwhoami(lab, lab_env, "zoe", person["password"], host)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"dn:{seed.person_dn('zoe')}"


def test_ldap_bind_from_a_host_with_a_wrong_password_is_refused(lab, lab_env):
    result = ldapwhoami(lab, lab_env, "zoe", "not-her-password", "db1")
    assert result.returncode == 49  # invalidCredentials


# --- MariaDB on my1 -----------------------------------------------------------------------------
def mariadb(lab_env, user: str, password: str, database: str | None = None):
    return MySQLdb.connect(
        host=lab_env["LAB_MYSQL_HOST"],
        port=int(lab_env["LAB_MYSQL_PORT"]),
        user=user,
        password=password,
        database=database or "",
        connect_timeout=5,
        charset="utf8mb4",
    )


def scalar(conn, statement: str, params=None):
    cur = conn.cursor()
    cur.execute(statement, params)
    return cur.fetchone()[0]


def test_mariadb_runs_on_my1(lab, lab_env):
    assert lab_env["LAB_MYSQL_HOST"] == lab.host("my1").address
    conn = mariadb(lab_env, lab_env["LAB_MYSQL_USER"], lab_env["LAB_MYSQL_PASSWORD"])
    try:
        assert scalar(conn, "SELECT @@hostname") == "my1"
    finally:
        conn.close()


def test_mariadb_personal_account_logs_in_and_reads_its_team_database(lab_env):
    conn = mariadb(lab_env, "erin", seed.SEED_DB_PASSWORDS["erin"], "billing")
    try:
        assert scalar(conn, "SELECT count(*) FROM invoices") == 3
    finally:
        conn.close()


def test_mariadb_read_only_functional_account_cannot_write(lab_env):
    conn = mariadb(lab_env, "analytics_ro", seed.SEED_DB_PASSWORDS["analytics_ro"], "analytics")
    try:
        with pytest.raises(MySQLdb.OperationalError, match="command denied"):
            conn.cursor().execute("DELETE FROM page_views")
    finally:
        conn.close()


def test_mariadb_records_functional_account_owners_and_the_orphan(lab_env):
    conn = mariadb(lab_env, lab_env["LAB_MYSQL_USER"], lab_env["LAB_MYSQL_PASSWORD"])
    try:
        cur = conn.cursor()
        cur.execute("SELECT user, owner_team, owner_uid FROM dba_inventory.account_owner")
        owners = {user: (team, uid) for user, team, uid in cur.fetchall()}
    finally:
        conn.close()
    for account in seed.SEED_FUNCTIONAL_ACCOUNTS:
        assert owners[account["name"]] == (account["owner_team"], None)
    assert owners[seed.SEED_ORPHAN] == (None, seed.SEED_ORPHAN)
    assert seed.SEED_ORPHAN not in {p["uid"] for p in seed.LAB_PEOPLE}


def test_mariadb_is_left_unhardened_as_installed(lab_env):
    conn = mariadb(lab_env, lab_env["LAB_MYSQL_USER"], lab_env["LAB_MYSQL_PASSWORD"])
    try:
        local_infile = scalar(conn, "SELECT @@local_infile")
        anonymous = scalar(conn, "SELECT count(*) FROM mysql.user WHERE user = ''")
        test_db = scalar(
            conn, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'test'"
        )
    finally:
        conn.close()
    assert (local_infile, test_db) == (1, 1)
    assert anonymous >= 1
