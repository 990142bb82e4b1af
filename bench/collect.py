"""Benchmark: one monitoring cycle over 500 nodes, against a sequential poll of the same nodes.

Runs on the lab's metadata PostgreSQL (DATABASE_URL, as `make bench` sets it) in a throwaway
database of its own, like bench/audit.py. Registers the lab (console.lab.demo), then 500 nodes
pointing at its four real servers (db1, db2, lb1, my1, 125 copies each, distinct names, in
125 PostgreSQL and 125 MariaDB clusters). Each node costs one audited statement per cycle (the
disk check runs every CLUSTERS_COLLECT_DISK_EVERY-th cycle and the copies have no log path,
so neither runs here); every statement writes two audit entries, as in production.
Prints its figures and ends with one JSON line.
Target: one cycle (the slowest of CYCLES) <= 5 s with CLUSTERS_COLLECT_WORKERS (16) workers.

Measured on the dev lab (2 CPUs shared by the collector, the metadata database, the lab's
servers and other sessions): at load average ~10, cycles 7.7-7.8 s and the sequential poll
11.1 s; with the machine otherwise quiet (load ~5 from the bench itself), cycles 6.4-6.8 s and
sequential 9.7 s (19 ms a node). The 5 s target was NOT met there. Mean poll per node in a
cycle: MariaDB 12-17 ms, PostgreSQL 150-166 ms, pgpool-II 460-590 ms: the 125 pgpool-II copies
all queue at the lab's one pgpool-II (24 children), which answers one in about 77 ms alone.
Every poll opens a new connection to its server (the executor keeps none) and writes two audit
entries; during a cycle the collector's Python process takes about two thirds of one CPU and
the machine has no idle CPU left, so workers past 4 did not help (100 nodes: 2.7 s with 1
worker, 1.7 s with 4, 8 or 16).
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _benchdb import drop_bench_database, use_bench_database  # noqa: E402

COPIES = 125  # of each of db1, db2, lb1, my1: 500 nodes
CYCLES = 3
TARGET_CYCLE_S = 5.0
BENCH_DB = "bench_collect"


def register_nodes() -> list[int]:
    """The lab as `lab up --demo` registers it, then COPIES copies of its four servers."""
    from clusters.models import Cluster, Environment, Node
    from console.lab.demo import register_demo

    register_demo(os.environ)
    real = {n.name: n for n in Node.objects.filter(name__in=["db1", "db2", "lb1", "my1"])}
    env = Environment.objects.get(name="lab")
    copied = ("service", "role", "address", "ssh_port", "ssh_user", "known_hosts",
              "ssh_credential_id", "db_port", "db_credential_id")  # fmt: skip
    nodes = []
    for i in range(COPIES):
        pg = Cluster.objects.create(name=f"bench-pg-{i:03d}", kind="postgresql", environment=env)
        my = Cluster.objects.create(name=f"bench-my-{i:03d}", kind="mariadb", environment=env)
        for name, cluster in (("db1", pg), ("db2", pg), ("lb1", pg), ("my1", my)):
            fields = {f: getattr(real[name], f) for f in copied}
            nodes.append(Node(name=f"{name}-{i:03d}", cluster=cluster, **fields))
    return [n.pk for n in Node.objects.bulk_create(nodes)]


def sequential_poll(ids: list[int]) -> float:
    """The same polls one after the other, in this thread; their results are not stored."""
    from clusters.collect import poll_node
    from clusters.models import Node

    nodes = list(Node.objects.filter(pk__in=ids).select_related("ssh_credential", "db_credential"))
    t0 = time.perf_counter()
    for node in nodes:
        poll_node(node, None, disk=False, with_logs=False)
    return time.perf_counter() - t0


def main() -> int:
    original_url = use_bench_database(BENCH_DB)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from clusters.collect import collect_cycle
    from clusters.models import Node, Sample
    from console.models import AuditEntry

    try:
        call_command("migrate", verbosity=0)
        ids = register_nodes()
        print(f"registered {len(ids)} nodes; {settings.CLUSTERS_COLLECT_WORKERS} workers")
        collect_cycle(ids, disk=False)  # warm-up: first NodeStatus rows
        cycles, down = [], set()
        for _ in range(CYCLES):
            audit_before = AuditEntry.objects.count()
            result = collect_cycle(ids, disk=False)
            cycles.append(result.duration_s)
            down |= set(result.down)
            entries = AuditEntry.objects.count() - audit_before
            print(f"cycle: {result.duration_s:.2f} s, {len(result.up)} up, "
                  f"{len(result.down)} down, {entries} audit entries")  # fmt: skip
        services = dict(Node.objects.filter(pk__in=ids).values_list("pk", "service"))
        poll_ms = {}
        for service in sorted(set(services.values())):
            times = [r.poll_ms for r in result.results.values() if services[r.node_id] == service]
            poll_ms[service] = round(statistics.mean(times), 1)
        print(f"mean poll per node in the last cycle, ms: {poll_ms}")
        sequential_s = sequential_poll(ids)
        print(f"sequential poll of the same {len(ids)} nodes: {sequential_s:.2f} s")
        samples = Sample.objects.count()
    finally:
        from django.db import connections

        connections.close_all()
        drop_bench_database(original_url, BENCH_DB)

    worst = max(cycles)
    ok = worst <= TARGET_CYCLE_S and not down
    figures = {
        "name": "collect",
        "nodes": len(ids),
        "workers": settings.CLUSTERS_COLLECT_WORKERS,
        "cycle_s_max": round(worst, 3),
        "cycle_s_median": round(statistics.median(cycles), 3),
        "sequential_s": round(sequential_s, 3),
        "speedup": round(sequential_s / statistics.median(cycles), 1),
        "poll_ms_mean": poll_ms,
        "load_average_1m": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "samples_stored": samples,
        "down": sorted(down)[:10],
        "target_cycle_s": TARGET_CYCLE_S,
        "ok": ok,
    }
    print(json.dumps(figures))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
