"""Benchmark (issue 6 part 6): offboard one person who has accounts on 200 registered servers.

Runs on the lab's metadata PostgreSQL (DATABASE_URL, as `make bench` sets it) in a throwaway
database of its own. Registers the lab (console.lab.demo), then SERVERS servers in clusters of
their own: half copies of db1 (PostgreSQL primary), half copies of my1 (MariaDB), distinct names,
the lab's real addresses. On the real servers it creates one distinct account per registered
server (PostgreSQL roles on db1, MariaDB users on my1), each linked in the console to one Person
as a personal account on its own cluster, so the person has an account on every server.

Measured, in the same run:
- the offboarding end to end, as a helpdesk user starts it: start_offboarding (typed
  confirmation, run, audit entry, job queued) and the real job (users.offboard_person, run
  eagerly in this process instead of a Celery worker) that on every cluster at once reads the
  account, locks it, ends its sessions and verifies the lock by reading it back; every remote
  statement audited by the executor. Target: <= TARGET_S and the run `offboarded` with every
  account verified;
- the undo (unlock, audited; the same pool), for information;
- the sequential baseline: the very same offboarding (start_offboarding and the same job, the
  same per-account code) with a pool of one worker, so the same accounts are locked one server
  after another. Target: the offboarding at least TARGET_SPEEDUP times faster.
- with --lock-account, also users.dbops.lock_account on each account one after another (the
  lifecycle primitive: a connection per statement, no verification), for information.
For each, the CPU seconds of the console process, the metadata database and the lab's servers
(/proc), the connections the servers accepted (their own counters), the console database's
ORM statements, audit entries and audit writes, per account; and the bound they put on the
time on this machine's CPUs. Then every account created is dropped from the servers, and the
throwaway database goes.

The lab's servers run on this machine (2 CPUs shared with the metadata database and other
work): without --delay-ms there is no wait to overlap, and the parallel job can beat the
sequential one only by the CPUs the sequential one leaves idle. Figures are noisy; the load is
printed. Prints its figures, ends with one JSON line (name, figures, targets, ok).
"""

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _benchdb import drop_bench_database, use_bench_database  # noqa: E402
from collect import cpu_since, lab_cpu  # noqa: E402

SERVERS = 200
TARGET_S = 5.0
TARGET_SPEEDUP = 10.0
BENCH_DB = "bench_offboard"
UID = "bench.leaver"
PREFIX = "bench_off_"  # the accounts created on the lab's servers (dropped at the end)


# --- the lab's servers, set up and cleaned directly (as the tests do): not the console ----------


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


# --- the console side ---------------------------------------------------------------------------


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


def relay_counts(relay) -> dict:
    """The relay's counts so far (connections, chunks up and down): see bench/_delay.py."""
    relay.send_signal(signal.SIGUSR1)
    return json.loads(relay.stdout.readline())


def process_cpu(pid: int) -> float:
    """CPU seconds a process of this machine has used (the relay)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(map(int, stat[11:13])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time, and per account what a phase cost: CPU seconds of the console process (all its
    threads), the metadata database, the lab's servers and the relay; the connections the
    servers accepted; the ORM statements on the console database (every connection's, counted
    by an execute wrapper), the audit entries and the audit chain's writes."""

    statements = 0  # ORM statements on the console database, counted by _count_statements
    audit_writes = 0  # audit chain writes (a head read and one INSERT each), counted by count_audit

    def __init__(self, relay=None):
        from console.models import AuditEntry

        self.relay = relay
        self.audit0 = AuditEntry.objects.count()
        self.connections0 = server_connections()
        self.lab0, self.statements0, self.writes0 = lab_cpu(), Meter.statements, Meter.audit_writes
        self.relay0 = process_cpu(relay.pid) if relay else 0.0
        self.trips0 = relay_counts(relay) if relay else None
        self.cpu0, self.t0 = time.process_time(), time.perf_counter()

    def stop(self, accounts: int) -> dict:
        from console.models import AuditEntry

        seconds = time.perf_counter() - self.t0
        console = time.process_time() - self.cpu0
        used = cpu_since(self.lab0)
        statements = Meter.statements - self.statements0
        writes = Meter.audit_writes - self.writes0
        relay = process_cpu(self.relay.pid) - self.relay0 if self.relay else 0.0
        trips = relay_counts(self.relay) if self.relay else None
        servers = sum(used.get(k, 0.0) for k in ("db1", "db2", "my1"))
        cpu = {"console": round(console, 2), "metadata_db": used.get("meta", 0.0),
               "db1": used.get("db1", 0.0), "db2": used.get("db2", 0.0),
               "my1": used.get("my1", 0.0), "relay": round(relay, 2)}  # fmt: skip
        total = console + servers + used.get("meta", 0.0) + relay
        return {
            "seconds": round(seconds, 3),
            "cpu_s": cpu,
            "per_account": {
                "console_cpu_ms": round(console * 1000 / accounts, 2),
                "servers_cpu_ms": round(servers * 1000 / accounts, 2),
                "metadata_db_cpu_ms": round(used.get("meta", 0.0) * 1000 / accounts, 2),
                "connections": round((server_connections() - self.connections0) / accounts, 2),
                "orm_statements": round(statements / accounts, 2),
                "audit_writes": round(writes / accounts, 2),
                "audit_entries": round((AuditEntry.objects.count() - self.audit0) / accounts, 2),
                # through the relay: requests sent toward the servers (a round trip each) and
                # connections, per account
                **(
                    {
                        "round_trips": round((trips["up"] - self.trips0["up"]) / accounts, 2),
                        "relayed_connections": round(
                            (trips["connections"] - self.trips0["connections"]) / accounts, 2
                        ),
                    }
                    if trips
                    else {}
                ),  # fmt: skip
            },
            # On this machine's CPUs: the console's Python runs on one CPU at a time (the GIL),
            # and everything together on all of them.
            "cpu_bound_s": round(max(console, total / (os.cpu_count() or 1)), 2),
            "load": round(os.getloadavg()[0], 1),
        }


def count_audit() -> None:
    """Count the audit chain's writes: the executor's entries of concurrent threads are written
    together (console.audit's group commit), each write a head read and one INSERT."""
    from console import audit

    insert = audit._insert_after_head

    def counted(entries):
        Meter.audit_writes += 1
        return insert(entries)

    audit._insert_after_head = counted


def _count_statements(sender, connection, **kwargs) -> None:
    def count(execute, sql, params, many, context):
        Meter.statements += 1  # += on an int under the GIL: close enough for a count
        return execute(sql, params, many, context)

    connection.execute_wrappers.append(count)


def show(name: str, m: dict) -> None:
    a = m["per_account"]
    print(f"{name}: {m['seconds']:.2f} s, load {m['load']}; CPU s {m['cpu_s']}; per account: "
          f"console {a['console_cpu_ms']} ms, servers {a['servers_cpu_ms']} ms, metadata DB "
          f"{a['metadata_db_cpu_ms']} ms CPU, {a['connections']} server connection(s), "
          f"{a['orm_statements']} ORM statement(s), {a['audit_entries']} audit entries in "
          f"{a['audit_writes']} write(s)"
          + (f", {a['round_trips']} round trip(s) over {a['relayed_connections']} relayed "
             f"connection(s)" if "round_trips" in a else "")
          + f"; CPU bound here: >= {m['cpu_bound_s']} s"
          )  # fmt: skip


def offboard(person, actor, workers: int) -> tuple[float, object]:
    """start_offboarding as the page calls it; the job runs eagerly when the run commits, with
    a pool of `workers` (1: the sequential baseline, the very same code)."""
    from console.celery import app
    from users.actions import offboarding

    app.conf.task_always_eager = True  # the job in this process: no broker, no worker latency
    # The first enqueue of a process imports every app's tasks module (about 1 s here); a web
    # or worker process has done it long before a helpdesk user offboards anyone.
    app.loader.import_default_modules()
    default, offboarding.WORKERS = offboarding.WORKERS, workers
    try:
        run = offboarding.start_offboarding(person, actor=actor, confirmation=person.uid)
    finally:
        offboarding.WORKERS = default
    run.refresh_from_db()
    return run


def check_run(run, expected_locked: int) -> dict:
    from console.models import Job
    from users.models import OffboardingStep

    steps = run.steps.filter(kind=OffboardingStep.Kind.LOCK)
    locked_pg, locked_my = locked_on_servers()
    return {"run_state": run.state, "job_status": Job.objects.get(pk=run.job_id).status,
            "verified": steps.filter(result="verified").count(),
            "locked_on_servers": locked_pg + locked_my,
            "ok": run.state == "offboarded" and locked_pg + locked_my == expected_locked,
            }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="reach the servers through bench/_delay.py, each packet held this "
                        "long each way (default: directly, no latency)")  # fmt: skip
    parser.add_argument(
        "--lock-account",
        action="store_true",
        help="also time users.dbops.lock_account one account after another",
    )
    args = parser.parse_args()
    relay, via = start_relay(args.delay_ms) if args.delay_ms else (None, None)
    original_url = use_bench_database(BENCH_DB)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.db.backends.signals import connection_created

    from console import audit
    from console.lab.demo import register_demo
    from users import dbops
    from users.actions.offboarding import WORKERS, undo_offboarding
    from users.models import DatabaseAccount, Person

    figures: dict = {}
    try:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        register_demo(os.environ)
        drop_accounts()  # what an earlier run that died may have left
        actor = get_user_model().objects.create_user("bench-helpdesk")
        person = Person.objects.create(uid=UID, name="Bench Leaver", mail="leaver@example.org")
        accounts = register(person, via)
        n = len(accounts)
        create_accounts([a.name for a in accounts if a.host == ""],
                        [a.name for a in accounts if a.host == "%"])  # fmt: skip
        connections.close_all()  # from here every console connection gets the statement counter
        connection_created.connect(_count_statements)
        count_audit()
        print(f"registered {SERVERS} servers ({SERVERS // 2} copies of db1, {SERVERS // 2} of "
              f"my1, a cluster each) and created {n} accounts of {UID}; "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
              f"{WORKERS} workers; latency added: {args.delay_ms:g} ms each way")  # fmt: skip

        meter = Meter(relay)
        run = offboard(person, actor, WORKERS)
        job = meter.stop(n)
        job_check = check_run(run, n)
        show(f"offboarding, {WORKERS} workers", job)
        print(f"  run {job_check['run_state']}, job {job_check['job_status']}, "
              f"{job_check['verified']}/{n} verified; servers say {job_check['locked_on_servers']}"
              f" accounts locked")  # fmt: skip

        meter = Meter(relay)
        undo_offboarding(run, actor=actor, confirmation=UID)
        undo = meter.stop(n)
        undone = locked_on_servers() == (0, 0)
        show(f"undo, {WORKERS} workers", undo)
        print(f"  all unlocked: {undone}")

        meter = Meter(relay)
        serial_run = offboard(person, actor, 1)
        serial = meter.stop(n)
        serial_check = check_run(serial_run, n)
        show("sequential: the same offboarding, 1 worker", serial)
        print(f"  run {serial_check['run_state']}, {serial_check['verified']}/{n} verified; "
              f"servers say {serial_check['locked_on_servers']} accounts locked")  # fmt: skip
        undo_offboarding(serial_run, actor=actor, confirmation=UID)
        serial_undone = locked_on_servers() == (0, 0)

        lock_account = None
        if args.lock_account:
            ordered = list(DatabaseAccount.objects.filter(person=person)
                           .select_related("cluster", "node").order_by("name"))  # fmt: skip
            meter = Meter(relay)
            changed = sum(dbops.lock_account(a, actor=actor).changed for a in ordered)
            lock_account = meter.stop(n)
            show(f"dbops.lock_account one after another ({changed} changed)", lock_account)
            for a in ordered:
                dbops.unlock_account(a, actor=actor)
        chain = audit.verify()
        speedup = serial["seconds"] / job["seconds"]
        bound = serial["seconds"] / job["cpu_bound_s"] if job["cpu_bound_s"] else None
        # The sequential run's parts wait for each other (console, server, metadata database in
        # turn): on an idle machine it takes about the sum of their CPU, and the offboarding at
        # least its own CPU bound, whatever the pool's size.
        serial_cpu = round(sum(serial["cpu_s"].values()), 2)
        idle_bound = serial_cpu / job["cpu_bound_s"] if job["cpu_bound_s"] else None
        idle = "" if args.delay_ms else (
            f"; idle, with nothing else running, the sequential run takes about its CPU sum, "
            f"{serial_cpu} s: at most {idle_bound:.1f}x")  # fmt: skip
        print(f"speedup: {speedup:.1f}x (sequential {serial['seconds']:.2f} s / offboarding "
              f"{job['seconds']:.2f} s); at most {bound:.1f}x on this machine's CPUs from the "
              f"offboarding's CPU ({job['cpu_bound_s']} s){idle}; audit chain: "
              f"{chain.checked} entries, intact={chain.intact}")  # fmt: skip
        if args.delay_ms:
            waits = serial["seconds"] / n / (2 * args.delay_ms / 1000)
            print(f"  the sequential run took {waits:.1f} round trips' time per account for "
                  f"{serial['per_account']['round_trips']} round trips counted by the relay "
                  f"(the rest: CPU and waiting for it)")  # fmt: skip
        figures = {
            "offboard_s": job["seconds"],
            "offboard": {**job, **job_check},
            "undo_s": undo["seconds"],
            "undo": undo,
            "undone": undone and serial_undone,
            "sequential_s": serial["seconds"],
            "sequential": {**serial, **serial_check},
            "lock_account_sequential": lock_account,
            "speedup": round(speedup, 1),
            "speedup_cpu_bound": round(bound, 1) if bound else None,
            "sequential_cpu_sum_s": serial_cpu,
            "speedup_bound_idle": round(idle_bound, 1) if idle_bound else None,
            "audit_chain_intact": chain.intact,
            "workers": WORKERS,
        }
    finally:
        dropped = drop_accounts()
        print(f"cleanup: {dropped} accounts dropped from db1 and my1")
        connections.close_all()
        drop_bench_database(original_url, BENCH_DB)
        if relay is not None:
            relay.terminate()
            relay.wait(timeout=10)

    ok = (
        not args.delay_ms  # the targets are the direct run's; --delay-ms is for information
        and figures["offboard_s"] <= TARGET_S
        and figures["speedup"] >= TARGET_SPEEDUP
        and figures["offboard"]["ok"]
        and figures["offboard"]["verified"] == SERVERS
        and figures["sequential"]["ok"]
        and figures["undone"]
        and figures["audit_chain_intact"]
    )
    result = {
        "name": "offboard",
        "servers": SERVERS,
        "delay_ms_each_way": args.delay_ms,
        **figures,
        "accounts_dropped": dropped,
        "load_average_1m": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
        "target_offboard_s": TARGET_S,
        "target_speedup": TARGET_SPEEDUP,
        "ok": ok,
    }
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
