"""Benchmark: failover drills with writes running through pgpool-II (RTO, RPO, fencing).

The console deploys its own pgpool-II on the lab's lb1 (clusters.ha.deploy; the lab's pgpool-II
is stopped first and every PostgreSQL part rebuilt at the end), in front of the lab's db1
(primary) and db2 (synchronous standby, remote_apply). Then DRILLS times:

1. a writer inserts 1, 2, 3… through pgpool-II, each commit under a client-side deadline
   (a commit waiting for a synchronous standby ignores statement_timeout), and records every
   commit it was told succeeded, with when it was sent and when it returned;
2. the primary's host is cut off (its link set down: connections time out, as a pulled cable);
   pgpool-II's health check fails over and its failover_command promotes the standby;
3. RTO: from the cut to the first commit sent after the cut that succeeded;
   RPO: acknowledged commits missing on the new primary afterwards (target 0);
4. the link comes back with the old primary still running as a primary: a direct INSERT on it
   must not be acknowledged (it waits for its synchronous standby, which is now a primary);
   then the console's reconcile (what Celery beat runs) records the failover and fences it:
   stopped, standby.signal in place; a connection is then refused;
5. the old primary is rebuilt as a synchronous standby of the new one (clusters.ha.ops.rebuild:
   pg_rewind, else pg_basebackup) and attached again, so the next drill fails the other way.

Targets: RPO 0 in every drill, RTO <= 10 s, the old primary never acknowledges a write after the
failover. Prints each drill, ends with one JSON line. The lab shares this machine's 2 CPUs with
the console and everything else running: figures are noisy.
"""

import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _benchdb import drop_bench_database, use_bench_database  # noqa: E402

DRILLS = int(os.environ.get("FAILOVER_DRILLS", "10"))
TARGET_RTO_S = 10.0
COMMIT_DEADLINE_S = 1.0
BENCH_DB = "bench_failover"
APP_USER, APP_PASSWORD = "ha_bench", "ha-bench-password-71c3"


class client_deadline:  # noqa: N801 - used as a function
    """Cancel what `conn` runs after `seconds` (from another thread). `fired` tells the caller
    the client gave up: a commit that returns after that (a cancelled wait for a synchronous
    standby returns with a warning, the row committed locally only) was never acknowledged."""

    def __init__(self, conn, seconds: float):
        self.conn, self.fired, self.error = conn, threading.Event(), ""
        self.timer = threading.Timer(seconds, self.cancel)
        self.timer.start()

    def cancel(self) -> None:
        import psycopg

        self.fired.set()
        try:
            self.conn.cancel_safe(timeout=1)
        except psycopg.Error as e:  # the cancel itself may time out on a cut link
            self.error = str(e)


class Writer(threading.Thread):
    """Commits through pgpool-II; `acked` holds (id, sent, returned) of every acknowledged one."""

    def __init__(self, host: str, port: int, first_id: int):
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.acked: list[tuple[int, float, float]] = []
        self.stop = threading.Event()
        self.next_id = first_id  # each drill its own ids: a duplicate key is not a failover

    def connect(self):
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, dbname="postgres",
                               user=APP_USER, password=APP_PASSWORD, connect_timeout=1,
                               autocommit=True)  # fmt: skip

    def run(self) -> None:
        import psycopg

        conn = None
        while not self.stop.is_set():
            row, sent = self.next_id, time.monotonic()
            self.next_id += 1
            timer = None
            try:
                if conn is None:
                    conn = self.connect()
                timer = client_deadline(conn, COMMIT_DEADLINE_S)
                conn.execute("INSERT INTO ha_drill (id) VALUES (%s)", [row])
                if not timer.fired.is_set():
                    self.acked.append((row, sent, time.monotonic()))
            except (psycopg.Error, OSError):
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)
            finally:
                if timer is not None:
                    timer.timer.cancel()
            time.sleep(0.005)
        if conn is not None:
            conn.close()

    def wait_acks(self, more: int, timeout: float) -> None:
        start, deadline = len(self.acked), time.monotonic() + timeout
        while len(self.acked) < start + more:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the writer did not commit {more} rows in {timeout} s")
            time.sleep(0.05)


def superuser(host: str):
    import psycopg

    return psycopg.connect(host=host, port=5432, dbname="postgres", user="postgres",
                           password=os.environ["LAB_PG_PASSWORD"], connect_timeout=3,
                           autocommit=True)  # fmt: skip


def prepare_lab(lab) -> None:
    from console.lab import faults

    faults.stop_server(lab, "pgpool")
    with superuser(os.environ["LAB_PG_HOST"]) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_USER]).fetchone():
            conn.execute(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'")
        conn.execute("DROP TABLE IF EXISTS ha_drill")
        conn.execute("CREATE TABLE ha_drill (id bigint PRIMARY KEY)")
        conn.execute(f"GRANT ALL ON ha_drill TO {APP_USER}")


def make_setup(lab):
    from clusters.ha import deploy
    from clusters.models import Cluster, Node
    from console.lab.demo import register_demo
    from console.models import AuditEntry
    from console.secrets import store_credential

    register_demo(os.environ)
    records, src = lab.load()["parts"], AuditEntry.Source.CLI
    pcp = store_credential("ha-pcp", "pcp-password", records["pgpool"]["pcp_password"],
                           actor=None, username="pcpadmin", source=src)  # fmt: skip
    repl = store_credential("ha-replication", "password",
                            records["primary"]["replication_password"], actor=None,
                            username="replicator", source=src)  # fmt: skip
    store_credential("ha-bench", "password", APP_PASSWORD, actor=None, username=APP_USER,
                     source=src)  # fmt: skip
    setup = deploy.save_setup(
        Cluster.objects.get(name="lab-pg"), pgpool=Node.objects.get(name="lb1"),
        directory=f"{lab.dir}/ha-pgpool", pcp_credential=pcp, replication_credential=repl,
        client_networks=[os.environ["LAB_NET"]], pool_users=["ha-bench"], actor=None,
        source=src, health_check_period=1, health_check_timeout=1, health_check_max_retries=1,
    )  # fmt: skip
    deploy.deploy_pgpool(setup)
    return setup


def old_primary_write(address: str) -> str:
    """A direct INSERT on the old primary: 'acknowledged' is a failure of the fencing."""
    try:
        with superuser(address) as conn:
            timer = client_deadline(conn, 2.0)
            try:
                conn.execute("INSERT INTO ha_drill (id) VALUES (-1) ON CONFLICT DO NOTHING")
            finally:
                timer.timer.cancel()
        return "not acknowledged (cancelled)" if timer.fired.is_set() else "acknowledged"
    except Exception as e:  # noqa: BLE001
        return "not acknowledged (" + type(e).__name__ + ")"


def drill(number: int, setup, lab) -> dict:
    from clusters.ha import fence, ops, prechecks, remote
    from clusters.models import Node
    from console.lab import faults

    setup.refresh_from_db()
    old = fence.registered_primary(setup)
    new = next(n for n in prechecks.backend_nodes(setup) if n != old)
    host = next(h for h in lab.hosts.values() if h.address == old.address)
    writer = Writer(setup.pgpool.address, setup.pgpool.db_port, number * 1_000_000)
    writer.start()
    try:
        writer.wait_acks(50, 30)
        faults.cut_link(lab, host.name)
        cut_at = time.monotonic()
        try:
            deadline = cut_at + 60
            while not any(sent >= cut_at for _, sent, _ in writer.acked[-5:]):
                if time.monotonic() > deadline:
                    raise RuntimeError("writes did not succeed again within 60 s")
                time.sleep(0.02)
            first = min(done for _, sent, done in writer.acked if sent >= cut_at)
            rto = first - cut_at
            writer.wait_acks(30, 20)
        finally:
            faults.restore_link(lab, host.name)
    finally:
        writer.stop.set()
        writer.join(10)
    acked = {row for row, _, _ in writer.acked}
    with superuser(new.address) as conn:
        present = {r[0] for r in conn.execute("SELECT id FROM ha_drill").fetchall()}
    missing = sorted(acked - present)
    write = old_primary_write(old.address)
    found = fence.reconcile(setup)  # what beat runs every few seconds
    refused = faults.connect_result(old.address, 5432) != "open"
    started = time.monotonic()
    rebuilt = ops.rebuild(setup, Node.objects.get(pk=old.pk))
    rebuild_s = time.monotonic() - started
    pool = remote.pool_nodes(setup)
    return {
        "drill": number, "from": old.name, "to": new.name, "rto_s": round(rto, 3),
        "rpo_missing": len(missing), "acknowledged": len(acked),
        "old_primary_write": write, "fenced": bool(found["fences"]) and refused,
        "rebuild": rebuilt["method"], "rebuild_s": round(rebuild_s, 1),
        "pool": {i: (b["status"], b["role"]) for i, b in pool.items()},
    }  # fmt: skip


def main() -> int:
    original_url = use_bench_database(BENCH_DB)
    import django

    django.setup()
    from django.core.management import call_command

    from clusters.ha import deploy, remote
    from console.lab.lab import Lab
    from console.lab.net import require_lab_network

    require_lab_network(os.environ.get("LAB_BRIDGE"))
    lab = Lab(Path(os.environ["LAB_DIR"]))
    results, setup, error = [], None, ""
    try:
        call_command("migrate", verbosity=0)
        prepare_lab(lab)
        setup = make_setup(lab)
        for number in range(1, DRILLS + 1):
            result = drill(number, setup, lab)
            results.append(result)
            print(f"drill {number:2}: {result['from']} -> {result['to']}"
                  f"  RTO {result['rto_s']:.2f} s"
                  f"  RPO {result['rpo_missing']} of {result['acknowledged']} acknowledged missing"
                  f"  old primary write: {result['old_primary_write']}"
                  f"  fenced: {result['fenced']}  rebuild {result['rebuild']} "
                  f"{result['rebuild_s']} s", flush=True)  # fmt: skip
    except Exception as e:  # noqa: BLE001 - reported in the JSON line
        error = f"{type(e).__name__}: {e}"
        print(f"drill failed: {error}", flush=True)
    finally:
        if setup is not None:
            try:
                deploy.stop_pgpool(setup, remote.call())
            except Exception as e:  # noqa: BLE001
                print(f"stopping the bench's pgpool-II: {e}")
        parts = ["primary", "standby", "pgpool"]
        lab.down(parts, report=lambda line: None)
        lab.up(parts, report=lambda line: None)
        from django.db import connections

        connections.close_all()
        drop_bench_database(original_url, BENCH_DB)
    rtos = [r["rto_s"] for r in results]
    summary = {
        "name": "failover",
        "drills": len(results),
        "rto_max_s": max(rtos) if rtos else None,
        "rto_p50_s": round(statistics.median(rtos), 3) if rtos else None,
        "rto_min_s": min(rtos) if rtos else None,
        "rpo_missing_max": max((r["rpo_missing"] for r in results), default=None),
        "old_primary_acknowledged_writes": sum(
            r["old_primary_write"] == "acknowledged" for r in results
        ),  # fmt: skip
        "all_fenced": all(r["fenced"] for r in results),
        "target_rto_s": TARGET_RTO_S,
        "target_rpo": 0,
        "error": error,
    }
    summary["ok"] = bool(
        not error and len(results) == DRILLS and summary["rto_max_s"] <= TARGET_RTO_S
        and summary["rpo_missing_max"] == 0 and summary["old_primary_acknowledged_writes"] == 0
        and summary["all_fenced"]
    )  # fmt: skip
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
