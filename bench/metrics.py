"""Benchmark: a /metrics scrape and /api/samples/ pages over 501 nodes with hours of samples.

Runs on the lab's metadata PostgreSQL (DATABASE_URL, as `make bench` sets it) in a throwaway
database of its own, like bench/collect.py. No server is polled: 167 PostgreSQL clusters of
three nodes (primary, synchronous standby, pgpool-II) get NodeStatus rows as a cycle leaves
them and HOURS of samples every 30 s (16 metrics a node), the latest cycle at NodeStatus.polled.
Measures the scrape (clusters.metrics.render) and its query count, the plan of its
latest-samples query, and a first page of /api/samples/ for one node with and without a metric.
Prints its figures and ends with one JSON line. Target: a scrape <= 1 s (median).
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _benchdb import drop_bench_database, use_bench_database  # noqa: E402

CLUSTERS = 167  # three nodes each: 501 nodes
HOURS = int(os.environ.get("BENCH_METRICS_HOURS", "6"))
SCRAPES = 15
TARGET_SCRAPE_S = 1.0
BENCH_DB = "bench_metrics"
METRICS = [
    "up", "connections.active", "connections.idle", "connections.idle_in_transaction",
    "connections.total", "connections.used_percent", "archive.failed_count",
    "archive.ready_count", "archive.last_archived_age_s", "replication.replay_lag_bytes",
    "replication.write_lag_bytes", "replication.flush_lag_bytes", "replication.replay_lag_s",
    "log.error", "log.fatal", "disk.used_percent",
]  # fmt: skip
_HISTORY = """
INSERT INTO clusters_sample (node_id, metric, ts, value)
SELECT n.id, m.metric, %(polled)s - g * interval '30 seconds', random() * 100
  FROM clusters_node AS n, unnest(%(metrics)s::text[]) AS m(metric),
       generate_series(0, %(cycles)s - 1) AS g
"""


def build_fleet():
    """CLUSTERS clusters with their nodes and statuses; HOURS of samples. Returns `polled`."""
    from django.db import connection
    from django.utils import timezone

    from clusters.models import Cluster, Environment, Node, NodeStatus

    polled = timezone.now().replace(microsecond=0)
    env = Environment.objects.create(name="bench")
    clusters = Cluster.objects.bulk_create(
        Cluster(name=f"pg-{i:03d}", kind="postgresql", environment=env) for i in range(CLUSTERS)
    )
    spec = [("db1", "postgresql", "primary"), ("db2", "postgresql", "standby"),
            ("lb1", "pgpool", "balancer")]  # fmt: skip
    nodes = Node.objects.bulk_create(
        Node(
            cluster=c, name=f"{c.name}-{n}", service=s, role=r, address="192.0.2.1", known_hosts=""
        )  # fmt: skip
        for c in clusters
        for n, s, r in spec
    )
    backends = [{"node_id": "0", "hostname": "192.0.2.1", "port": "5432", "status": "up"}]
    NodeStatus.objects.bulk_create(
        NodeStatus(
            node=n,
            state="up",
            reachable=True,
            polled=polled,
            poll_ms=20,
            role_seen=n.role,
            in_recovery={"primary": False, "standby": True}.get(n.role),
            replication_state="streaming" if n.role == "standby" else "",
            sync_state="sync" if n.role == "standby" else "",
            replay_lag_bytes=0,
            details={"backends": backends} if n.service == "pgpool" else {},
        )  # fmt: skip
        for n in nodes
    )
    with connection.cursor() as cur:
        cur.execute(_HISTORY, {"polled": polled, "metrics": METRICS, "cycles": HOURS * 120})
        cur.execute("ANALYZE")
    return polled


def latest_samples_plan() -> list[str]:
    from django.db import connection

    from clusters.metrics import latest_samples
    from clusters.models import NodeStatus

    times = set(NodeStatus.objects.values_list("polled", flat=True))
    sql, params = latest_samples(times).query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return [row[0] for row in cur.fetchall()]


def timed_get(client, path: str) -> float:
    t0 = time.perf_counter()
    response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    return time.perf_counter() - t0


def main() -> int:
    original_url = use_bench_database(BENCH_DB)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from rest_framework.test import APIClient

    from clusters import metrics
    from clusters.models import Node, Sample

    setup_test_environment()
    try:
        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        build_fleet()
        samples = Sample.objects.count()
        print(f"{Node.objects.count()} nodes, {samples} samples ({HOURS} h) built in "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        scrapes = []
        for _ in range(SCRAPES):
            t0 = time.perf_counter()
            with CaptureQueriesContext(connection) as captured:
                body, _ = metrics.render(None)
            scrapes.append(time.perf_counter() - t0)
            queries = len(captured)
        series = sum(1 for line in body.decode().splitlines() if not line.startswith("#"))
        print(f"scrape: median {statistics.median(scrapes) * 1000:.0f} ms, max "
              f"{max(scrapes) * 1000:.0f} ms, {queries} queries, {series} series, "
              f"{len(body)} bytes")  # fmt: skip
        plan = latest_samples_plan()
        print("latest-samples query plan:\n  " + "\n  ".join(plan))
        user = get_user_model().objects.create_superuser("bench", password="x")
        client = APIClient()
        client.force_authenticate(user)
        node = Node.objects.get(name="pg-080-db1").pk
        timed_get(client, f"/api/samples/?node={node}&metric=up")  # the first request loads code
        by_metric = timed_get(client, f"/api/samples/?node={node}&metric=connections.active")
        all_metrics = timed_get(client, f"/api/samples/?node={node}")
        print(f"/api/samples/ first page: {by_metric * 1000:.0f} ms with a metric, "
              f"{all_metrics * 1000:.0f} ms without")  # fmt: skip
    finally:
        from django.db import connections

        connections.close_all()
        drop_bench_database(original_url, BENCH_DB)

    median = statistics.median(scrapes)
    figures = {
        "name": "metrics",
        "nodes": CLUSTERS * 3,
        "samples": samples,
        "scrape_s_median": round(median, 3),
        "scrape_s_max": round(max(scrapes), 3),
        "scrape_queries": queries,
        "series": series,
        "latest_samples_ms": next(
            (float(line.split()[2]) for line in plan if line.startswith("Execution Time")), None
        ),
        "samples_page_ms_metric": round(by_metric * 1000, 1),
        "samples_page_ms_all": round(all_metrics * 1000, 1),
        "load_average_1m": os.getloadavg()[0],
        "target_scrape_s": TARGET_SCRAPE_S,
        "ok": median <= TARGET_SCRAPE_S,
    }
    print(json.dumps(figures))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
