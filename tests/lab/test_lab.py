"""The lab itself, against the running lab: every part serves, with the documented credentials."""

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import ldap
import MySQLdb
import psycopg
import pytest
import redis

from console.lab import cli, seed
from console.lab.lab import PART_NAMES, Lab
from console.lab.net import HOST_NAMES
from console.lab.parts.ssh import SSH_DEFAULT_HOST

REPO = Path(__file__).resolve().parents[2]


def lab_command(*args: str):
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "lab", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def ssh_argv(lab_env, key: str, known_hosts: str, *command: str) -> list[str]:
    return [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=10",
        "-i",
        key,
        "-p",
        lab_env["LAB_SSH_PORT"],
        f"{lab_env['LAB_SSH_USER']}@{lab_env['LAB_SSH_HOST']}",
        *command,
    ]


def lab_ssh(lab_env, *command: str) -> subprocess.CompletedProcess:
    argv = ssh_argv(lab_env, lab_env["LAB_SSH_KEY"], lab_env["LAB_SSH_KNOWN_HOSTS"], *command)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def ldap_connection(lab_env):
    conn = ldap.initialize(lab_env["LAB_LDAP_URI"])
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
    conn.set_option(ldap.OPT_TIMEOUT, 5)
    return conn


# --- the command ----------------------------------------------------------------------------
def status_tables(stdout: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """`lab status` output as two tables: part -> columns, host -> columns."""
    parts_text, hosts_text = stdout.split("\n\n")
    parts = {line.split()[0]: line.split()[1:] for line in parts_text.splitlines()[1:]}
    hosts = {line.split()[0]: line.split()[1:] for line in hosts_text.splitlines()[1:]}
    return parts, hosts


def test_status_shows_every_part_running(lab_env):
    result = lab_command("status")
    assert result.returncode == 0, result.stderr
    parts, _ = status_tables(result.stdout)
    assert {name: columns[0] for name, columns in parts.items()} == dict.fromkeys(
        PART_NAMES, "running"
    )


def test_status_shows_each_host_with_namespace_link_and_sshd(lab_env):
    result = lab_command("status")
    _, hosts = status_tables(result.stdout)
    assert set(hosts) == set(HOST_NAMES)
    for name, (address, namespace, link, sshd) in hosts.items():
        assert (namespace, link, sshd) == ("present", "up", "running"), name
        assert address == json.loads(lab_env["LAB_HOSTS"])[name]


def test_env_prints_every_contract_variable(lab_env):
    result = lab_command("env")
    assert result.returncode == 0, result.stderr
    names = {line.removeprefix("export ").split("=", 1)[0] for line in result.stdout.splitlines()}
    assert set(lab_env) | {"SECRET_KEY", "CONSOLE_SECRET_KEYS", "DEBUG"} <= names
    assert "LDAP_BIND_PASSWORD" in names


def test_up_leaves_running_parts_alone(lab_env):
    lab = Lab(Path(lab_env["LAB_DIR"]))
    pids = {name: part.pid() for name, part in lab.parts.items()}
    result = lab_command("up")
    assert result.returncode == 0, result.stderr
    assert {name: part.pid() for name, part in lab.parts.items()} == pids


def test_lab_command_refuses_a_user_other_than_root(capfd):
    # The interpreter lives under /root, so run the command in a forked child that drops to nobody.
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        code = 99
        try:
            os.setgid(65534)
            os.setuid(65534)
            code = cli.run_command("status")
        finally:
            os._exit(code)
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 2
    assert "must run as root" in capfd.readouterr().err


def test_state_file_is_readable_by_root_only(lab_env):
    mode = (Path(lab_env["LAB_DIR"]) / "lab.json").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


# --- sshd -----------------------------------------------------------------------------------
def test_ssh_with_lab_key_runs_a_command_on_the_default_host(lab_env):
    result = lab_ssh(lab_env, "hostname")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == SSH_DEFAULT_HOST


def test_ssh_session_can_sudo_to_postgres(lab_env):
    result = lab_ssh(lab_env, "sudo", "-n", "-u", "postgres", "whoami")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "postgres"


def test_ssh_refuses_an_unknown_key(lab_env, tmp_path):
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    argv = ssh_argv(lab_env, str(key), lab_env["LAB_SSH_KNOWN_HOSTS"], "hostname")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_ssh_client_refuses_a_host_key_not_in_known_hosts(lab_env, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    argv = ssh_argv(lab_env, lab_env["LAB_SSH_KEY"], str(empty), "hostname")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr


def test_private_key_is_readable_by_root_only(lab_env):
    assert stat.S_IMODE(Path(lab_env["LAB_SSH_KEY"]).stat().st_mode) == 0o600


# --- slapd ----------------------------------------------------------------------------------
@pytest.mark.parametrize("uid", [p["uid"] for p in seed.LAB_PEOPLE])
def test_ldap_seed_person_binds_with_their_password(lab_env, uid):
    conn = ldap_connection(lab_env)
    conn.simple_bind_s(seed.person_dn(uid), seed.person(uid)["password"])
    assert conn.whoami_s() == f"dn:{seed.person_dn(uid)}"


def test_ldap_wrong_password_is_refused(lab_env):
    conn = ldap_connection(lab_env)
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        conn.simple_bind_s(seed.person_dn("alice"), "not-her-password")


def test_ldap_person_reads_group_members(lab_env):
    conn = ldap_connection(lab_env)
    conn.simple_bind_s(seed.person_dn("bob"), seed.person("bob")["password"])
    [(dn, attrs)] = conn.search_s(seed.group_dn("dba"), ldap.SCOPE_BASE, "(objectClass=*)")
    members = {m.decode() for m in attrs["member"]}
    assert members == {seed.person_dn(p["uid"]) for p in seed.LAB_PEOPLE if "dba" in p["groups"]}


def test_ldap_accented_name_is_stored_as_utf8(lab_env):
    conn = ldap_connection(lab_env)
    conn.simple_bind_s(lab_env["LAB_LDAP_ADMIN_DN"], lab_env["LAB_LDAP_ADMIN_PASSWORD"])
    [(dn, attrs)] = conn.search_s(seed.person_dn("zoe"), ldap.SCOPE_BASE, attrlist=["cn"])
    assert attrs["cn"] == ["Zoë Ångström".encode()]


def test_ldap_anonymous_cannot_read_people(lab_env):
    conn = ldap_connection(lab_env)
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):
        conn.search_s(seed.LDAP_PEOPLE_BASE, ldap.SCOPE_SUBTREE, "(uid=alice)")


def test_ldap_deleting_a_person_removes_them_from_groups(lab_env):
    conn = ldap_connection(lab_env)
    conn.simple_bind_s(lab_env["LAB_LDAP_ADMIN_DN"], lab_env["LAB_LDAP_ADMIN_PASSWORD"])
    dn = seed.person_dn(f"leaver-{os.getpid()}")
    conn.add_s(dn, [("objectClass", [b"inetOrgPerson"]), ("cn", [b"Leaver"]), ("sn", [b"Leaver"])])
    group = seed.group_dn("team-web")
    conn.modify_s(group, [(ldap.MOD_ADD, "member", [dn.encode()])])
    conn.delete_s(dn)

    def still_member() -> bool:
        [(_, attrs)] = conn.search_s(group, ldap.SCOPE_BASE, attrlist=["member"])
        return dn.encode() in attrs["member"]

    # refint updates the groups in a background thread, just after the delete returns.
    deadline = time.monotonic() + 5
    while still_member() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not still_member()


# --- databases and broker -------------------------------------------------------------------
def test_mariadb_admin_logs_in_with_grant_option(lab_env):
    conn = MySQLdb.connect(
        host=lab_env["LAB_MYSQL_HOST"],
        port=int(lab_env["LAB_MYSQL_PORT"]),
        user=lab_env["LAB_MYSQL_USER"],
        password=lab_env["LAB_MYSQL_PASSWORD"],
        connect_timeout=5,
    )
    try:
        cur = conn.cursor()
        cur.execute("SHOW GRANTS")
        grants = " ".join(row[0] for row in cur.fetchall())
    finally:
        conn.close()
    assert "GRANT ALL PRIVILEGES ON *.*" in grants
    assert "WITH GRANT OPTION" in grants


def test_managed_postgres_login_sees_seed_rows(lab_env):
    with psycopg.connect(
        host=lab_env["LAB_PG_HOST"],
        port=lab_env["LAB_PG_PORT"],
        user=lab_env["LAB_PG_USER"],
        password=lab_env["LAB_PG_PASSWORD"],
        dbname=seed.PG_SEED_DATABASE,
        connect_timeout=5,
    ) as conn:
        count = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
        checksums = conn.execute("SHOW data_checksums").fetchone()[0]
    assert count == 3
    assert checksums == "on"


def test_managed_postgres_refuses_a_wrong_password(lab_env):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=lab_env["LAB_PG_HOST"],
            port=lab_env["LAB_PG_PORT"],
            user=lab_env["LAB_PG_USER"],
            password="wrong",
            connect_timeout=5,
        )


def test_metadata_database_role_is_a_superuser(lab_env):
    with psycopg.connect(lab_env["DATABASE_URL"], connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == ("console", True)


def test_redis_broker_answers(lab_env):
    client = redis.Redis.from_url(lab_env["CELERY_BROKER_URL"], socket_timeout=5)
    assert client.ping() is True
