"""Benchmark: one monitoring cycle over 500 nodes, against a sequential poll of the same nodes.

Runs on the lab's metadata PostgreSQL (DATABASE_URL, as `make bench` sets it) in a throwaway
database of its own. Registers the lab (console.lab.demo), then 500 nodes that are copies of its
four real servers (db1 primary, db2 standby, lb1 pgpool-II, my1 MariaDB; distinct names, in
clusters of their own) and runs the cycle as the Celery task does: inside a Job, each remote
call audited (an intent and an outcome entry, naming the job), samples and NodeStatus stored.
Target: one cycle (the slowest of CYCLES) <= 5 s with CLUSTERS_COLLECT_WORKERS (16) workers,
printed next to a sequential poll of the same nodes measured in the same run.

How many copies of each server. The lab's servers run on the collector's own machine (2 CPUs
here, shared with the metadata database and other work), so a poll costs this machine the
server's side too: a new PostgreSQL backend (fork, SCRAM, a cold catalog cache) for db1 and db2;
for lb1, pgpool-II's child and two new backend connections behind it, since pgpool-II never
caches connections to the `postgres` database (its documented rule), about five times a
PostgreSQL poll; a MariaDB thread for my1, a tenth of it. Equal copies (125 each) put about
10 CPU-seconds of server work per cycle on 2 CPUs, more than the target allows before the
collector runs at all (on a real fleet each server does its part on its own CPU). So the bench
first measures what one poll costs each server here (CALIBRATION polls, CPU from /proc) and
spreads the 500 copies in proportion to what each can serve (the inverse of that cost): each
server then gets the same share of the machine. It prints the spread and the CPU each side used
per cycle (collector process, metadata database, lab servers). pgpool-II's connection limit
(num_init_children 24) is not what queues: 16 workers never hold more than 16 of its children.

Not in the cycle figure: disk (`df` every CLUSTERS_COLLECT_DISK_EVERY-th cycle) and server log
reads (every cycle, for nodes with a log path) go over SSH, and the lab's registration records
neither a data directory nor a log path. Their cost is measured apart (SSH_CALLS `df` calls on
db1) and printed per call; see docs/benchmarks.md. Prints its figures, ends with one JSON line.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _benchdb import drop_bench_database, use_bench_database  # noqa: E402

NODES = 500
CYCLES = 3
CALIBRATION = 40  # sequential polls of each real server to measure what one costs here
SSH_CALLS = 10
TARGET_CYCLE_S = 5.0
BENCH_DB = "bench_collect"
REAL = ("db1", "db2", "lb1", "my1")
# Which lab processes are which server: the LAB_DIR directory their command line names.
_PARTS = {"primary": "db1", "standby": "db2", "pgpool": "lb1", "mariadb": "my1", "meta": "meta"}


def lab_cpu() -> dict[str, float]:
    """CPU seconds used so far by each lab server (its processes, and their children that have
    ended: a PostgreSQL backend's time is added to the postmaster's when it exits), by /proc."""
    lab_dir = os.environ.get("LAB_DIR", "/var/lib/dbconsole-lab").rstrip("/") + "/"
    tick = os.sysconf("SC_CLK_TCK")
    procs = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        procs[int(pid)] = (int(stat[1]), cmd, sum(map(int, stat[11:15])) / tick)
    used: dict[str, float] = {}
    for pid, (_, _, seconds) in procs.items():
        part, up = None, pid
        for _ in range(20):  # the nearest ancestor started with a LAB_DIR path names the part
            if up not in procs:
                break
            cmd = procs[up][1]
            if lab_dir in cmd:
                sub = cmd.split(lab_dir, 1)[1].split("/", 1)[0]
                part = "sshd" if sub.startswith("ssh-") else _PARTS.get(sub, "other")
                break
            up = procs[up][0]
        if part:
            used[part] = used.get(part, 0.0) + seconds
    return used


def cpu_since(before: dict[str, float]) -> dict[str, float]:
    after = lab_cpu()
    return {k: round(after.get(k, 0) - before.get(k, 0), 2) for k in sorted(after)}


def calibrate(real: dict) -> dict[str, float]:
    """Server CPU milliseconds one poll of each real server costs this machine."""
    from clusters.collect_poll import poll_node

    cost = {}
    for name in REAL:
        before = lab_cpu()
        for _ in range(CALIBRATION):
            poll_node(real[name], None, disk=False, with_logs=False)
        used = cpu_since(before)
        servers = sum(v for k, v in used.items() if k in REAL)  # lb1 makes db1 and db2 work
        cost[name] = max(servers * 1000 / CALIBRATION, 0.1)
    return cost


def spread(cost: dict[str, float]) -> dict[str, int]:
    """NODES copies, in proportion to 1 / cost: every server gets the same share of CPU."""
    weight = {name: 1 / c for name, c in cost.items()}
    total = sum(weight.values())
    copies = {name: max(1, round(NODES * w / total)) for name, w in weight.items()}
    copies[max(copies, key=copies.get)] += NODES - sum(copies.values())
    return copies


def register_nodes(copies: dict[str, int], prefix: str = "bench") -> list[int]:
    """copies[name] copies of each real server, in clusters of their own (a PostgreSQL cluster
    holds at most one copy each of db1, db2 and lb1; a MariaDB cluster one of my1)."""
    from clusters.models import Cluster, Environment, Node

    real = {n.name: n for n in Node.objects.filter(name__in=REAL)}
    env = Environment.objects.get(name="lab")
    copied = ("service", "role", "address", "ssh_port", "ssh_user", "known_hosts",
              "ssh_credential_id", "db_port", "db_credential_id")  # fmt: skip
    nodes = []
    pg_clusters = max(copies["db1"], copies["db2"], copies["lb1"])
    for i in range(max(pg_clusters, copies["my1"])):
        for kind, names in (("postgresql", ("db1", "db2", "lb1")), ("mariadb", ("my1",))):
            wanted = [n for n in names if i < copies[n]]
            if not wanted:
                continue
            cluster = Cluster.objects.create(
                name=f"{prefix}-{kind[:2]}-{i:03d}", kind=kind, environment=env
            )
            for name in wanted:
                fields = {f: getattr(real[name], f) for f in copied}
                node_name = f"{name}-{i:03d}" if prefix == "bench" else f"{prefix}-{name}-{i:03d}"
                nodes.append(Node(name=node_name, cluster=cluster, **fields))
    return [n.pk for n in Node.objects.bulk_create(nodes)]


def sequential_poll(ids: list[int]) -> float:
    """The same polls one after the other, in this thread; their results are not stored."""
    from clusters.collect_poll import poll_node
    from clusters.models import Node

    nodes = list(Node.objects.filter(pk__in=ids).select_related("ssh_credential", "db_credential"))
    t0 = time.perf_counter()
    for node in nodes:
        poll_node(node, None, disk=False, with_logs=False)
    return time.perf_counter() - t0


def ssh_call_cost(node) -> dict:
    """What one remote command (`df` of a directory, as the disk check runs it) costs."""
    from console.executor import run_command

    before, cpu0, t0 = lab_cpu(), time.process_time(), time.perf_counter()
    for _ in range(SSH_CALLS):
        run_command(node, ["df", "--output=pcent", "--", "/"], label=f"monitor {node.name}")
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    used = cpu_since(before)
    return {
        "wall_ms": round(wall * 1000 / SSH_CALLS, 1),
        "collector_cpu_ms": round(cpu * 1000 / SSH_CALLS, 1),
        "sshd_cpu_ms": round(used.get("sshd", 0) * 1000 / SSH_CALLS, 1),
    }


def equal_copies_cycle() -> dict:
    """For comparison, not the target: one cycle over NODES / 4 copies of each server, where
    the lab servers' CPU alone exceeds what this machine has in TARGET_CYCLE_S."""
    from clusters.collect import collect_cycle

    ids = register_nodes(dict.fromkeys(REAL, NODES // 4), prefix="equal")
    collect_cycle(ids, disk=False)  # warm-up
    before, cpu0 = lab_cpu(), time.process_time()
    result = collect_cycle(ids, disk=False)
    used = cpu_since(before)
    figures = {
        "cycle_s": round(result.duration_s, 3),
        "down": len(result.down),
        "cpu_s": {
            "collector": round(time.process_time() - cpu0, 2),
            "metadata_db": used.get("meta", 0.0),
            "lab_servers": round(sum(v for k, v in used.items() if k in REAL), 2),
        },
    }
    print(f"for comparison, {len(ids)} nodes as {NODES // 4} copies of each server: {figures}")
    return figures


def measure_cycles(ids: list[int]) -> tuple[list[dict], object]:
    from clusters.collect import collect_cycle
    from console.models import AuditEntry, Job

    cycles, result = [], None
    for _ in range(CYCLES):
        job = Job.objects.create(
            kind="clusters.collect", title="bench", status="running", source="schedule"
        )
        audit_before = AuditEntry.objects.count()
        before, cpu0 = lab_cpu(), time.process_time()
        result = collect_cycle(ids, job=job, disk=False)
        collector_cpu = time.process_time() - cpu0
        used = cpu_since(before)
        entries = AuditEntry.objects.filter(job_id=job.pk).count()
        cycle = {
            "s": result.duration_s,
            "up": len(result.up),
            "down": result.down,
            "audit_entries": AuditEntry.objects.count() - audit_before,
            "audit_entries_of_job": entries,
            "cpu_s": {
                "collector": round(collector_cpu, 2),
                "metadata_db": used.get("meta", 0.0),
                "lab_servers": round(sum(v for k, v in used.items() if k in REAL), 2),
            },
        }
        cycles.append(cycle)
        print(f"cycle: {cycle['s']:.2f} s, {cycle['up']} up, {len(cycle['down'])} down, "
              f"{cycle['audit_entries']} audit entries ({entries} naming the job), "
              f"CPU s {cycle['cpu_s']}, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    return cycles, result


def main() -> int:
    original_url = use_bench_database(BENCH_DB)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from clusters.collect import collect_cycle
    from clusters.models import Node, Sample
    from console import audit_chain
    from console.lab.demo import register_demo

    try:
        call_command("migrate", verbosity=0)
        register_demo(os.environ)
        real = {
            n.name: n
            for n in Node.objects.filter(name__in=REAL).select_related(
                "ssh_credential", "db_credential"
            )
        }
        cost = calibrate(real)
        copies = spread(cost)
        per_poll = {k: round(v, 1) for k, v in cost.items()}
        print(f"server CPU per poll on this machine, ms: {per_poll}")
        print(f"copies, in proportion to what each server can serve: {copies}")
        ids = register_nodes(copies)
        print(f"registered {len(ids)} nodes; {settings.CLUSTERS_COLLECT_WORKERS} workers; "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")  # fmt: skip
        collect_cycle(ids, disk=False)  # warm-up: first NodeStatus rows
        cycles, result = measure_cycles(ids)
        services = dict(Node.objects.filter(pk__in=ids).values_list("pk", "name"))
        poll_ms = {}
        for name in REAL:
            times = [r.poll_ms for r in result.results.values()
                     if services[r.node_id].startswith(f"{name}-")]  # fmt: skip
            poll_ms[name] = round(statistics.mean(times), 1) if times else None
        print(f"mean poll per node in the last cycle, ms: {poll_ms}")
        sequential_s = sequential_poll(ids)
        print(f"sequential poll of the same {len(ids)} nodes: {sequential_s:.2f} s")
        equal = equal_copies_cycle()
        ssh = ssh_call_cost(real["db1"])
        print(f"one SSH command (disk check, log read) on db1: {ssh}")
        verified = audit_chain.verify()
        print(f"audit chain: {verified.checked} entries, intact={verified.intact}")
        samples = Sample.objects.count()
    finally:
        from django.db import connections

        connections.close_all()
        drop_bench_database(original_url, BENCH_DB)

    seconds = [c["s"] for c in cycles]
    down = sorted({name for c in cycles for name in c["down"]})
    calls_audited = all(c["audit_entries"] == c["audit_entries_of_job"] for c in cycles)
    ok = max(seconds) <= TARGET_CYCLE_S and not down and verified.intact and calls_audited
    figures = {
        "name": "collect",
        "nodes": len(ids),
        "copies": copies,
        "server_cpu_ms_per_poll": {k: round(v, 1) for k, v in cost.items()},
        "workers": settings.CLUSTERS_COLLECT_WORKERS,
        "cycle_s_max": round(max(seconds), 3),
        "cycle_s_median": round(statistics.median(seconds), 3),
        "sequential_s": round(sequential_s, 3),
        "speedup": round(sequential_s / statistics.median(seconds), 1),
        "cycle_cpu_s": cycles[-1]["cpu_s"],
        "audit_entries_per_cycle": cycles[-1]["audit_entries"],
        "audit_chain_intact": verified.intact,
        "poll_ms_mean": poll_ms,
        "equal_copies": equal,
        "ssh_call": ssh,
        "load_average_1m": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
        "samples_stored": samples,
        "down": down[:10],
        "target_cycle_s": TARGET_CYCLE_S,
        "ok": ok,
    }
    print(json.dumps(figures))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
