"""The fleet of bench/offboard.py: the lab's servers set up, read and cleaned directly (as the
tests do, not through the console), and the console's registration of SERVERS copies of them.

On db1 and my1 it creates one PREFIX account per registered server and drops them all at the
end (also those of an earlier run that died); it reads how many are locked and how many
connections the servers have accepted. `register` puts the copies (clusters of their own, the
lab's real addresses, or the delaying relay's: `start_relay`) and the person's accounts in the
console's database. Kept apart from the measurement (bench/_offboard_meter.py) and from the run
(bench/offboard.py), which uses both.
"""

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

SERVERS = 200
PREFIX = "bench_off_"  # the accounts created on the lab's servers (dropped at the end)


def pg_admin():
    import psycopg

    return psycopg.connect(
        host=os.environ["LAB_PG_HOST"], port=int(os.environ["LAB_PG_PORT"]),
        user=os.environ["LAB_PG_USER"], password=os.environ["LAB_PG_PASSWORD"],
        dbname="postgres", autocommit=True, connect_timeout=5, sslmode="disable",
    )  # fmt: skip


def my_admin():
    import MySQLdb

    conn = MySQLdb.connect(
        host=os.environ["LAB_MYSQL_HOST"], port=int(os.environ["LAB_MYSQL_PORT"]),
        user=os.environ["LAB_MYSQL_USER"], password=os.environ["LAB_MYSQL_PASSWORD"],
        connect_timeout=5, charset="utf8mb4",
    )  # fmt: skip
    conn.autocommit(True)
    return conn


def create_accounts(pg_names: list[str], my_names: list[str]) -> None:
    from psycopg import sql

    from console.executor.sql import quote_mysql_account

    with pg_admin() as conn:
        for name in pg_names:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(secrets.token_urlsafe(16))))  # fmt: skip
    conn = my_admin()
    try:
        cur = conn.cursor()
        for name in my_names:
            cur.execute(f"CREATE USER {quote_mysql_account(name, '%')} IDENTIFIED BY %s",
                        (secrets.token_urlsafe(16),))  # fmt: skip
    finally:
        conn.close()


def drop_accounts() -> int:
    """Drop every PREFIX account on db1 and my1 (also those of an earlier run that died)."""
    from psycopg import sql

    from console.executor.sql import quote_mysql_account

    dropped = 0
    with pg_admin() as conn:
        roles = [r for (r,) in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (PREFIX + "%",))]  # fmt: skip
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        dropped += len(roles)
    conn = my_admin()
    try:
        cur = conn.cursor()
        cur.execute("SELECT user, host FROM mysql.user WHERE user LIKE %s", (PREFIX + "%",))
        for user, host in cur.fetchall():
            user = user.decode() if isinstance(user, bytes) else user
            host = host.decode() if isinstance(host, bytes) else host
            cur.execute("DROP USER IF EXISTS " + quote_mysql_account(user, host), ())
            dropped += 1
    finally:
        conn.close()
    return dropped


def locked_on_servers() -> tuple[int, int]:
    """(PostgreSQL roles with NOLOGIN, MariaDB users with ACCOUNT LOCK) among PREFIX accounts."""
    with pg_admin() as conn:
        (pg,) = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE %s "
                             "AND NOT rolcanlogin", (PREFIX + "%",)).fetchone()  # fmt: skip
    conn = my_admin()
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM mysql.global_priv WHERE user LIKE %s "
                    "AND JSON_VALUE(priv, '$.account_locked') IN ('true', '1')",
                    (PREFIX + "%",))  # fmt: skip
        (my,) = cur.fetchone()
    finally:
        conn.close()
    return int(pg), int(my)


def server_connections() -> int:
    """Connections db1 and my1 have accepted so far, by their own counters (PostgreSQL 14+:
    pg_stat_database.sessions, counted when a session ends; MariaDB: Connections)."""
    with pg_admin() as conn:
        (pg,) = conn.execute("SELECT sum(sessions) FROM pg_stat_database").fetchone()
    conn = my_admin()
    try:
        cur = conn.cursor()
        cur.execute("SHOW GLOBAL STATUS LIKE 'Connections'")
        my = int(cur.fetchone()[1])
    finally:
        conn.close()
    return int(pg) + my - 2  # less this function's own two


def start_relay(delay_ms: float) -> tuple[subprocess.Popen, dict[str, tuple[str, int]]]:
    """bench/_delay.py in front of db1 and my1; returns it and where each server is reached."""
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    pg, my = ports
    argv = [sys.executable, str(Path(__file__).with_name("_delay.py")), str(delay_ms),
            f"{pg}={os.environ['LAB_PG_HOST']}:{os.environ['LAB_PG_PORT']}",
            f"{my}={os.environ['LAB_MYSQL_HOST']}:{os.environ['LAB_MYSQL_PORT']}"]  # fmt: skip
    relay = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    if relay.stdout.readline().strip() != "ready":
        relay.kill()
        sys.exit("bench offboard: the delaying relay did not start")
    return relay, {"db1": ("127.0.0.1", pg), "my1": ("127.0.0.1", my)}


def register(person, via: dict[str, tuple[str, int]] | None = None) -> list:
    """SERVERS servers in clusters of their own, copies of db1 and my1, and one personal account
    of `person` on each (the account's name is created on the real server by create_accounts).
    `via`: the address and port each copy is reached at instead of the real server's."""
    from clusters.models import Cluster, Environment, Node
    from users.models import DatabaseAccount

    real = {n.name: n for n in Node.objects.filter(name__in=("db1", "my1"))}
    env = Environment.objects.get(name="lab")
    copied = ("service", "role", "address", "ssh_port", "ssh_user", "known_hosts",
              "ssh_credential_id", "db_port", "db_credential_id", "version_num")  # fmt: skip
    accounts = []
    for i in range(SERVERS):
        source, kind = (real["db1"], "postgresql") if i % 2 == 0 else (real["my1"], "mariadb")
        cluster = Cluster.objects.create(name=f"off-{kind[:2]}-{i:03d}", kind=kind, environment=env)
        fields = {f: getattr(source, f) for f in copied}
        if via:
            fields["address"], fields["db_port"] = via[source.name]
        node = Node.objects.create(name=f"off-{source.name}-{i:03d}", cluster=cluster, **fields)
        accounts.append(DatabaseAccount(
            cluster=cluster, node=node, name=f"{PREFIX}{i:03d}",
            host="" if kind == "postgresql" else "%", kind=DatabaseAccount.Kind.PERSONAL,
            person=person, linked_by=DatabaseAccount.LinkedBy.MANUAL,
        ))  # fmt: skip
    return DatabaseAccount.objects.bulk_create(accounts)
