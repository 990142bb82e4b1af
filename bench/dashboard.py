"""Benchmark: the fleet dashboard and a cluster page on a large fleet.

Runs on the lab's metadata PostgreSQL (DATABASE_URL, as `make bench` sets it) in a throwaway
database of its own; no managed server is contacted. It builds a fleet as the collector would
leave it, then requests the pages through Django's test client, signed in as a DBA:
- 4 environments, 1,000 clusters (800 PostgreSQL, 200 MariaDB), 5,000 nodes: every PostgreSQL
  cluster a primary with 2 standbys and 2 pgpool-II nodes, or with 3 standbys and 1 pgpool-II;
  every MariaDB cluster a primary and 4 replicas;
- one NodeStatus per node, in a mix of states: most clusters healthy; some with a node down, a
  standby not streaming or lagging, an asynchronous standby only, a pgpool-II backend down
  (degraded); some with the primary down (down); some never collected (unknown);
- open alerts (firing and pending) on about one cluster in ten, and cleared ones as history;
- 10,000,000 Sample rows: 4 metrics a node (those the cluster page charts) every 30 s over the
  last ~4 hours, written by INSERT ... SELECT generate_series with the table's secondary
  indexes built afterwards, then ANALYZE. The build time is printed.
Then each cluster's summary row (ClusterStatus) is written as the collect job writes it after
a cycle (clusters.status.refresh_cluster_status, then refresh_alert_counts after the alert
evaluation), timed: the cost it adds to every collection cycle (REFRESHES runs, median and
worst). Then, for each page, the SQL queries of one request (CaptureQueriesContext) and the
server time of REQUESTS requests (p50/p95): the fleet page with filters, sorts and a later
page (the dashboard keeps no cache: every request reads the summaries); a cluster page
(PostgreSQL and MariaDB); the series endpoint of its charts.
Targets: at most 12 queries per page whatever the fleet size; p95 server time <= 150 ms.
Prints its figures and ends with one JSON line.
"""

import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _benchdb import drop_bench_database, use_bench_database  # noqa: E402

ENVIRONMENTS = ("production", "staging", "qa", "development")
PG_CLUSTERS, MY_CLUSTERS = 800, 200  # 5 nodes each: 5,000 nodes
SAMPLES = 10_000_000
METRICS_PER_NODE = 4
POINTS = SAMPLES // (5 * (PG_CLUSTERS + MY_CLUSTERS) * METRICS_PER_NODE)  # 500, every 30 s
REQUESTS = 50
REFRESHES = 5
TARGET_QUERIES = 12
TARGET_P95_MS = 150.0
BENCH_DB = "bench_dashboard"
SEED = 20261125

# Metrics a node gets, by what it is: those the cluster page's charts ask for.
_METRICS = {
    "primary": ["connections.active", "connections.idle", "archive.ready_count", "log.error"],
    "standby": ["replication.replay_lag_bytes", "archive.ready_count", "log.error",
                "connections.active"],
    "balancer": ["pgpool.backends_up", "pgpool.replication_delay_max", "up",
                 "connections.total"],
    "my_primary": ["connections.threads_connected", "connections.threads_running",
                   "log.error", "disk.used_percent"],
    "replica": ["connections.threads_connected", "connections.threads_running", "log.error",
                "disk.used_percent"],
}  # fmt: skip


def build_fleet(rng: random.Random) -> dict:
    """Environments, clusters, nodes, statuses and alerts; returns a few ids to request."""
    from django.utils import timezone

    from clusters.models import Alert, AlertRule, Cluster, Environment, Node, NodeStatus

    now = timezone.now()
    envs = Environment.objects.bulk_create(Environment(name=n) for n in ENVIRONMENTS)
    clusters = Cluster.objects.bulk_create(
        Cluster(
            name=f"{'pg' if i < PG_CLUSTERS else 'my'}-{i:04d}",
            kind="postgresql" if i < PG_CLUSTERS else "mariadb",
            environment=envs[rng.choices(range(4), weights=(5, 2, 2, 1))[0]],
        )
        for i in range(PG_CLUSTERS + MY_CLUSTERS)
    )
    nodes = []
    for c in clusters:
        if c.kind == "postgresql":
            standbys = 2 if c.pk % 2 else 3
            spec = [("db1", "postgresql", "primary")]
            spec += [(f"db{k + 2}", "postgresql", "standby") for k in range(standbys)]
            spec += [(f"lb{k + 1}", "pgpool", "balancer") for k in range(4 - standbys)]
        else:
            spec = [("my1", "mariadb", "primary")]
            spec += [(f"my{k + 2}", "mariadb", "replica") for k in range(4)]
        nodes += [
            Node(
                cluster=c,
                name=f"{c.name}-{n}",
                service=s,
                role=r,
                known_hosts="",
                address=f"10.{c.pk // 250}.{c.pk % 250}.{k + 10}",
            )  # fmt: skip
            for k, (n, s, r) in enumerate(spec)
        ]
    nodes = Node.objects.bulk_create(nodes, batch_size=1000)
    by_cluster: dict[int, list] = {}
    for n in nodes:
        by_cluster.setdefault(n.cluster_id, []).append(n)

    statuses, fate = [], {}
    for c in clusters:
        fate[c.pk] = rng.choices(
            ["healthy", "node_down", "lagging", "async", "backend_down", "primary_down", "new"],
            weights=(85, 4, 3, 2, 2, 2, 2),
        )[0]
        if fate[c.pk] == "new":
            continue  # registered, never collected: unknown
        for n in by_cluster[c.pk]:
            statuses.append(_status(n, c, fate[c.pk], by_cluster[c.pk], now, rng))
    NodeStatus.objects.bulk_create(statuses, batch_size=1000)

    rules = list(AlertRule.objects.all())
    alerts = []
    for c in clusters:
        if fate[c.pk] in ("healthy", "new") and rng.random() > 0.03:
            continue
        for rule in rng.sample(rules, k=min(len(rules), rng.randint(1, 3))):
            firing = rng.random() < 0.8
            node = rng.choice(by_cluster[c.pk])
            seen = now - rng.uniform(60, 86400) * _seconds(1)
            alerts.append(Alert(
                rule=rule, cluster=c, node=node, subject=f"node:{node.pk}",
                state="firing" if firing else "pending",
                severity=rng.choice(["warning", "critical"]), value=rng.uniform(0, 100),
                message=f"{rule.title} on {node.name}", first_seen=seen, last_seen=now,
                raised=seen if firing else None,
            ))  # fmt: skip
    for _ in range(5000):  # history: cleared alerts
        c = rng.choice(clusters)
        node = rng.choice(by_cluster[c.pk])
        seen = now - rng.uniform(86400, 30 * 86400) * _seconds(1)
        alerts.append(Alert(
            rule=rng.choice(rules), cluster=c, node=node, subject=f"node:{node.pk}",
            state="cleared", severity="warning", message="cleared", first_seen=seen,
            last_seen=seen, raised=seen, cleared=seen + _seconds(600),
        ))  # fmt: skip
    Alert.objects.bulk_create(alerts, batch_size=1000)
    open_alerts = sum(1 for a in alerts if a.state != "cleared")
    states = {}
    for f in fate.values():
        states[f] = states.get(f, 0) + 1
    pg = next(c for c in clusters if c.kind == "postgresql" and fate[c.pk] == "lagging")
    my = next(c for c in clusters if c.kind == "mariadb" and fate[c.pk] == "healthy")
    standby = next(n for n in by_cluster[pg.pk] if n.role == "standby")
    return {"pg_cluster": pg.pk, "my_cluster": my.pk, "standby": standby.pk,
            "primary": by_cluster[pg.pk][0].pk, "fates": states,
            "open_alerts": open_alerts, "nodes": len(nodes), "clusters": len(clusters)}  # fmt: skip


def _seconds(n: float):
    from datetime import timedelta

    return timedelta(seconds=n)


def _status(node, cluster, fate: str, peers: list, now, rng: random.Random):
    """The NodeStatus a cycle would have left for `node` in a cluster meant to be `fate`."""
    from clusters.models import NodeStatus

    up = {"state": "up", "reachable": True, "polled": now - _seconds(rng.uniform(0, 30)),
          "poll_ms": rng.randint(5, 80)}  # fmt: skip
    down = {**up, "state": "down", "reachable": False, "error": "connection refused"}
    standbys = [p for p in peers if p.role in ("standby", "replica")]
    first_standby = standbys[0] if standbys else None
    if node.role == "primary":
        gone = fate == "primary_down"
        seen = (
            {"role_seen": "", "in_recovery": None}
            if gone
            else {"role_seen": "primary", "in_recovery": False}
        )
        return NodeStatus(node=node, **seen, **(down if gone else up))
    if node.role in ("standby", "replica"):
        is_down = fate == "node_down" and node == standbys[-1]
        sync = "sync" if node == first_standby and fate != "async" else "async"
        lag = rng.randint(0, 64 * 1024)
        if fate == "lagging" and node == first_standby:
            lag = rng.randint(1, 50) * 1024**3
        return NodeStatus(
            node=node, role_seen="" if is_down else node.role, in_recovery=not is_down,
            replication_state="" if is_down else "streaming",
            sync_state="" if is_down else (sync if cluster.kind == "postgresql" else ""),
            replay_lag_bytes=None if is_down else lag, **(down if is_down else up),
        )  # fmt: skip
    backends = [
        {"node_id": str(k), "hostname": p.address, "port": "5432", "role": p.role,
         "status": "down" if fate == "backend_down" and k == 1 else "up",
         "replication_delay": "0"}
        for k, p in enumerate(x for x in peers if x.service == "postgresql")
    ]  # fmt: skip
    return NodeStatus(node=node, role_seen="balancer", details={"backends": backends}, **up)


def fill_samples() -> float:
    """SAMPLES rows: METRICS_PER_NODE metrics a node, a point every 30 s until now. The
    secondary indexes are dropped first and built after (with the same definitions): much
    faster than maintaining them row by row. Returns the seconds it took."""
    from django.db import connection

    t0 = time.perf_counter()
    metrics_case = " ".join(
        f"WHEN '{kind}' THEN ARRAY{names!r}" for kind, names in _METRICS.items()
    ).replace('"', "'")
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'clusters_sample' "
            "AND indexname <> 'clusters_sample_pkey'"
        )
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET session_replication_role = replica")  # no FK trigger per row
        cur.execute(f"""
            INSERT INTO clusters_sample (node_id, metric, ts, value)
            SELECT n.id, m.metric, now() - make_interval(secs => 30 * k),
                   CASE WHEN m.metric LIKE 'replication.%' THEN random() * 1048576
                        WHEN m.metric LIKE '%percent' THEN 20 + random() * 60
                        ELSE floor(random() * 20) END
              FROM (SELECT id, CASE WHEN role = 'primary' AND service = 'mariadb'
                                    THEN 'my_primary' ELSE role END AS kind
                      FROM clusters_node) AS n
             CROSS JOIN LATERAL unnest(CASE n.kind {metrics_case} END) AS m(metric)
             CROSS JOIN generate_series(0, {POINTS - 1}) AS k
        """)  # noqa: S608 (constants of this file only)
        cur.execute("SET session_replication_role = DEFAULT")
        cur.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cur.execute(definition)
        cur.execute("ANALYZE")
        cur.execute("SELECT count(*) FROM clusters_sample")
        count = cur.fetchone()[0]
    seconds = time.perf_counter() - t0
    print(f"samples: {count:,} rows in {seconds:.1f} s (insert, indexes, ANALYZE)")
    return seconds


def refresh_summaries() -> dict:
    """The summary rows written REFRESHES times as the collect job does after each cycle: the
    seconds of each (the first one inserts, the others update)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from clusters.status import refresh_alert_counts, refresh_cluster_status

    runs, alert_runs = [], []
    for _ in range(REFRESHES):
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            rows = refresh_cluster_status()
            runs.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            refresh_alert_counts()
            alert_runs.append(time.perf_counter() - t0)
    figures = {
        "rows": rows,
        "queries": len(captured),
        "p50_s": round(statistics.median(runs), 3),
        "max_s": round(max(runs), 3),
        "alert_counts_p50_s": round(statistics.median(alert_runs), 3),
    }
    print(f"summaries: {rows} rows, {len(captured)} queries; refresh_cluster_status "
          f"p50 {figures['p50_s']:.3f} s, max {figures['max_s']:.3f} s; refresh_alert_counts "
          f"p50 {figures['alert_counts_p50_s']:.3f} s (added to each collection cycle)"
          )  # fmt: skip
    return figures


def timed(client, url: str) -> tuple[float, float]:
    """Server time of one request in ms, and the CPU this process spent on it (the view, the
    templates and the test client; not the database's): on a loaded machine the wall time
    also counts the waits for a CPU."""
    t0, c0 = time.perf_counter(), time.process_time()
    client.get(url)
    return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000


def measure(client, label: str, url: str) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm the process (templates, code), as a running server is
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    queries = list(captured)  # now: the list is read from the connection's log, which the
    # next request empties
    if response.status_code != 200:
        raise SystemExit(f"{label}: {url} answered {response.status_code}")
    runs = [timed(client, url) for _ in range(REQUESTS)]
    times, cpu = sorted(t for t, _ in runs), sorted(c for _, c in runs)
    figures = {
        "url": url,
        "queries": len(queries),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
        "cpu_p50_ms": round(statistics.median(cpu), 1),
        "sql_ms": round(sum(float(q["time"]) for q in queries) * 1000, 1),  # the first request
        "bytes": len(response.content),
    }
    print(f"{label:32} {figures['queries']:3} queries  "
          f"p50 {figures['p50_ms']:6.1f} ms  p95 {figures['p95_ms']:6.1f} ms  "
          f"(CPU p50 {figures['cpu_p50_ms']:5.1f} ms, SQL {figures['sql_ms']:5.1f} ms)  "
          f"{url}")  # fmt: skip
    return figures


def pages(ids: dict) -> list[tuple[str, str]]:
    from django.urls import reverse

    fleet = reverse("clusters:fleet")
    pg = reverse("clusters:cluster_detail", args=[ids["pg_cluster"]])
    my = reverse("clusters:cluster_detail", args=[ids["my_cluster"]])
    series = reverse("clusters:series")
    wanted = [
        ("fleet", fleet),
        ("fleet, environment", f"{fleet}?env=production"),
        ("fleet, degraded", f"{fleet}?state=degraded"),
        ("fleet, by name, page 3", f"{fleet}?sort=name&page=3"),
        ("fleet, by lag", f"{fleet}?sort=lag"),
        ("fleet, by alerts", f"{fleet}?sort=alerts"),
        ("fleet, env + state + sort", f"{fleet}?env=staging&state=healthy&sort=environment"),
        ("cluster page, PostgreSQL", pg),
        ("cluster page, MariaDB", my),
    ]
    for range_key in ("6h", "24h", "7d"):
        url = f"{series}?node={ids['standby']}&metric=replication.replay_lag_bytes"
        wanted.append((f"series, standby lag {range_key}", f"{url}&range={range_key}"))
    wanted.append(("series, primary connections", f"{series}?node={ids['primary']}"
                   "&metric=connections.active&range=6h"))  # fmt: skip
    return wanted


def main() -> int:
    original_url = use_bench_database(BENCH_DB)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host name is allowed
    try:
        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        ids = build_fleet(random.Random(SEED))
        fleet_s = time.perf_counter() - t0
        print(f"fleet: {ids['clusters']} clusters, {ids['nodes']} nodes, "
              f"{ids['open_alerts']} open alerts; cluster fates {ids['fates']}; "
              f"{fleet_s:.1f} s")  # fmt: skip
        samples_s = fill_samples()
        refresh = refresh_summaries()
        dba = get_user_model().objects.create_user("bench-dba")
        dba.groups.add(Group.objects.get(name="dba"))
        client = Client()
        client.force_login(dba)
        results = {label: measure(client, label, url) for label, url in pages(ids)}
    finally:
        from django.db import connections

        connections.close_all()
        drop_bench_database(original_url, BENCH_DB)

    worst_queries = max(r["queries"] for r in results.values())
    worst_p95 = max(r["p95_ms"] for r in results.values())
    ok = worst_queries <= TARGET_QUERIES and worst_p95 <= TARGET_P95_MS
    summary = {
        "name": "dashboard",
        "clusters": ids["clusters"],
        "nodes": ids["nodes"],
        "samples": SAMPLES,
        "open_alerts": ids["open_alerts"],
        "build_s": {"fleet": round(fleet_s, 1), "samples": round(samples_s, 1)},
        "summary_refresh": refresh,
        "requests_each": REQUESTS,
        "pages": {
            k: {f: v[f] for f in ("queries", "p50_ms", "p95_ms", "cpu_p50_ms", "sql_ms")}
            for k, v in results.items()
        },
        "queries_max": worst_queries,
        "p95_ms_max": worst_p95,
        "target_queries": TARGET_QUERIES,
        "target_p95_ms": TARGET_P95_MS,
        "load_average_1m": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
        "ok": ok,
    }
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
