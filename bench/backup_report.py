"""Benchmark: the manager's backup report over 1,000 clusters and 1,000,000 backup runs.

Runs on the lab's metadata PostgreSQL (DATABASE_URL, as `make bench` sets it) in a throwaway
database of its own; no managed server is contacted. It builds a fleet as months of backups
would leave it:
- 4 environments of 600, 290, 100 and 10 clusters (the filter then shows 10, 100 or 1,000);
- one catalog per cluster (one in five pg_rman, the others pgBackRest) seen by its one node,
  two policies each (a weekly full with retention, a daily incremental; one cluster in 20 has
  its policies disabled, one in 25 keeps too short a history for its retention);
- 1,000,000 BackupRun rows, 1,000 per cluster, one every 4.3 hours over the last 180 days
  (a full every 42nd), most ok; failed, error, corrupt and unvalidated ones mixed in; one
  cluster in 30 failing for its last two weeks; runs older than 120 days mostly deleted by
  retention; written by INSERT ... SELECT generate_series with the table's secondary indexes
  built afterwards, then VACUUM ANALYZE (the build time is printed);
- a test restore a week per cluster (about 26,000 RestoreRun rows), missed schedules
  (MissedBackup) on one cluster in ten, and an hourly WAL archive check (ArchiveCheck) per
  cluster for a week (168,000 rows; a gap in one cluster in 50).
Then it measures, signed in as a manager:
- the SQL queries of the report's data build (backups.report.build, CaptureQueriesContext) for
  10, 100 and 1,000 clusters (the environment filter): they must be equal;
- the wall and CPU time of the data build over the whole fleet, and of the CSV export (build
  plus CSV), REPEAT times each (p50, max); the report page through the test client; and, for
  information, the per-day sums of the production environment's page (no target).
Targets: the data build and the CSV each at most 1 s (p50); the same number of queries for
10, 100 and 1,000 clusters. Prints its figures and ends with one JSON line.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _benchdb import drop_bench_database, use_bench_database  # noqa: E402

ENVIRONMENTS = (("production", 600), ("staging", 290), ("qa", 100), ("development", 10))
RUNS_PER_CLUSTER = 1000
STEP_HOURS = 4.32  # 1,000 runs over 180 days
REPEAT = 10
TARGET_S = 1.0
BENCH_DB = "bench_backup_report"


def build_fleet() -> dict:
    """Environments, clusters, nodes, catalogs and policies (bulk_create)."""
    from backups.models import BackupCatalog, BackupPolicy
    from clusters.models import Cluster, Environment, Node

    envs, clusters = [], []
    for name, count in ENVIRONMENTS:
        env = Environment.objects.create(name=name)
        envs.append(env)
        clusters += [
            Cluster(name=f"{name[:4]}-{i:04d}", kind="postgresql", environment=env)
            for i in range(count)
        ]
    clusters = Cluster.objects.bulk_create(clusters, batch_size=1000)
    nodes = Node.objects.bulk_create(
        [Node(cluster=c, name=f"{c.name}-db1", service="postgresql", role="primary",
              known_hosts="", address=f"10.{c.pk // 250}.{c.pk % 250}.10")
         for c in clusters], batch_size=1000,
    )  # fmt: skip
    catalogs = BackupCatalog.objects.bulk_create(
        [BackupCatalog(cluster=c, name="main", engine="pg_rman" if c.pk % 5 == 0 else "pgbackrest",
                       path=f"/backup/{c.name}", stanza="" if c.pk % 5 == 0 else c.name,
                       arclog_path=f"/archive/{c.name}" if c.pk % 5 == 0 else "")
         for c in clusters], batch_size=1000,
    )  # fmt: skip
    through = BackupCatalog.nodes.through
    through.objects.bulk_create(
        [
            through(backupcatalog_id=c.pk, node_id=n.pk)
            for c, n in zip(catalogs, nodes, strict=True)
        ],
        batch_size=1000,
    )
    policies = []
    for cat in catalogs:
        rman = cat.engine == "pg_rman"
        enabled = cat.cluster_id % 20 != 0
        keep = {"keep_data_generations": 4, "keep_data_days": 28} if rman else {
            "retention_full": 4}  # fmt: skip
        if cat.cluster_id % 25 == 0:  # asks for more history than it keeps
            keep = {"keep_data_generations": 40, "keep_data_days": 400} if rman else {
                "retention_full": 40}  # fmt: skip
        policies.append(BackupPolicy(catalog=cat, name="weekly-full", schedule="0 1 * * 0",
                                     mode="full", enabled=enabled, **keep))  # fmt: skip
        daily = "incremental" if rman else "incr"
        policies.append(BackupPolicy(catalog=cat, name="daily", schedule="0 2 * * *",
                                     mode=daily, enabled=enabled))  # fmt: skip
    BackupPolicy.objects.bulk_create(policies, batch_size=1000)
    return {"clusters": len(clusters), "nodes": len(nodes), "catalogs": len(catalogs),
            "policies": len(policies)}  # fmt: skip


def fill_runs() -> float:
    """RUNS_PER_CLUSTER runs per catalog in one INSERT ... SELECT; secondary indexes dropped
    first and built after with their own definitions. Returns the seconds it took."""
    from django.db import connection

    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'backups_backuprun' "
            "AND indexname <> 'backups_backuprun_pkey'"
        )
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET session_replication_role = replica")  # no FK trigger per row
        cur.execute(f"""
            INSERT INTO backups_backuprun (
                catalog_id, cluster_id, policy_id, mode, status, backup_id,
                found_outside_console, created, started, ended, duration, data_bytes,
                arclog_bytes, srvlog_bytes, total_bytes, written_bytes, database_bytes,
                sizes_exact, compressed, with_serverlog, timeline, start_lsn, stop_lsn,
                validated, validated_at, message)
            SELECT c.id, c.cluster_id, NULL, x.mode, x.status, 'b' || k, false,
                   x.started, x.started, x.started + x.took, x.took,
                   x.data, 16777216, 0, x.data + 16777216, x.data / 3, 50e9::bigint,
                   true, false, false, 1, '', '', x.status IN ('ok', 'corrupt'),
                   CASE WHEN x.status IN ('ok', 'corrupt') THEN x.started + x.took END, ''
              FROM backups_backupcatalog AS c
             CROSS JOIN generate_series(0, {RUNS_PER_CLUSTER - 1}) AS k
             CROSS JOIN LATERAL (
                SELECT now() - make_interval(secs => k * {STEP_HOURS} * 3600
                                             + random() * 600) AS started,
                       CASE WHEN k % 42 = 41 THEN 'full'
                            WHEN c.engine = 'pg_rman' THEN 'incremental' ELSE 'incr' END
                            AS mode,
                       CASE WHEN k % 42 = 41 THEN (40e9 + random() * 20e9)::bigint
                            ELSE (1e9 + random() * 3e9)::bigint END AS data,
                       CASE WHEN k % 42 = 41 THEN make_interval(secs => 2400 + random() * 2400)
                            ELSE make_interval(secs => 120 + random() * 480) END AS took,
                       CASE WHEN c.cluster_id % 30 = 0 AND k < 78 THEN 'failed'
                            WHEN k > 670 AND random() < 0.9 THEN 'deleted'
                            WHEN random() < 0.03 THEN 'failed'
                            WHEN random() < 0.01 THEN 'error'
                            WHEN random() < 0.005 THEN 'corrupt'
                            WHEN random() < 0.005 THEN 'done'
                            ELSE 'ok' END AS status
             ) AS x
        """)  # noqa: S608 (constants of this file only)
        cur.execute("SET session_replication_role = DEFAULT")
        cur.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cur.execute(definition)
        cur.execute("SELECT count(*) FROM backups_backuprun")
        count = cur.fetchone()[0]
    with connection.cursor() as cur:  # VACUUM: outside a transaction (autocommit)
        cur.execute("VACUUM ANALYZE backups_backuprun")
    seconds = time.perf_counter() - t0
    print(f"runs: {count:,} rows in {seconds:.1f} s (insert, indexes, VACUUM ANALYZE)")
    return seconds


def fill_restores_and_missed() -> dict:
    """A weekly test restore per cluster over 180 days, missed schedules, archive checks."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("""
            INSERT INTO backups_restorerun (
                cluster_id, catalog_id, target_node_id, target_data_directory, backup_id,
                target_kind, target_value, test_restore, status, created, started, ended,
                duration, check_query, check_result, check_ok, message, target_action)
            SELECT c.cluster_id, c.id, n.node_id, '/scratch', NULL, 'latest', '', true,
                   CASE WHEN random() < 0.05 THEN 'failed' ELSE 'succeeded' END,
                   t, t, t + d, d, 'SELECT 1', '1', true, '', ''
              FROM backups_backupcatalog AS c
              JOIN backups_backupcatalog_nodes AS n ON n.backupcatalog_id = c.id
             CROSS JOIN generate_series(0, 25) AS w
             CROSS JOIN LATERAL (SELECT now() - make_interval(days => 7 * w, hours => 3) AS t,
                                        make_interval(secs => 600 + random() * 1800) AS d) AS x
        """)
        cur.execute("SELECT count(*) FROM backups_restorerun")
        restores = cur.fetchone()[0]
        cur.execute("""
            INSERT INTO backups_missedbackup (policy_id, policy_name, cluster_id, due_at,
                                              detected_at)
            SELECT p.id, p.name, c.cluster_id,
                   date_trunc('day', now()) - make_interval(days => d, hours => -2),
                   date_trunc('day', now()) - make_interval(days => d, hours => -3)
              FROM backups_backuppolicy AS p
              JOIN backups_backupcatalog AS c ON c.id = p.catalog_id
             CROSS JOIN generate_series(0, 89, 3) AS d
             WHERE c.cluster_id % 10 = 0 AND p.name = 'daily'
        """)
        cur.execute("SELECT count(*) FROM backups_missedbackup")
        missed = cur.fetchone()[0]
        cur.execute("""
            INSERT INTO backups_archivecheck (cluster_id, checked_at, continuous, first_segment,
                                              first_gap, last_segment, last_restorable_segment,
                                              segments, missing, restorable_to, message)
            SELECT c.id, now() - make_interval(hours => h), c.id % 50 <> 0,
                   '000000010000000000000001', CASE WHEN c.id % 50 = 0 THEN
                   '000000010000000000000042' ELSE '' END, '0000000100000000000000A0',
                   '0000000100000000000000A0', 160, (c.id % 50 = 0)::int * 3,
                   now() - make_interval(hours => h, mins => 5), ''
              FROM clusters_cluster AS c CROSS JOIN generate_series(0, 167) AS h
        """)
        cur.execute("SELECT count(*) FROM backups_archivecheck")
        checks = cur.fetchone()[0]
        cur.execute("ANALYZE")
    print(f"restores: {restores:,} test restores; missed schedules: {missed:,}; "
          f"archive checks: {checks:,} (hourly for a week, a gap in one in 50)")  # fmt: skip
    return {"restores": restores, "missed": missed, "archive_checks": checks}


def queries_of(user, environment: str) -> tuple[int, int]:
    """The queries of one data build, the user's permissions read first (as every request
    reads them once)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from backups import report

    user = get_user_model().objects.get(pk=user.pk)
    user.has_perm(report.VIEW)
    with CaptureQueriesContext(connection) as captured:
        built = report.build(user, environment=environment)
    return len(captured), len(built.clusters)


def timed(func, repeat: int = REPEAT) -> dict:
    func()  # warm: code, templates, the database's caches, as a running server has them
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        func()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {"p50_s": round(statistics.median(walls), 3), "max_s": round(max(walls), 3),
            "cpu_p50_s": round(statistics.median(cpus), 3)}  # fmt: skip


def sql_time(user) -> float:
    """Seconds the database spent on the queries of one full build (from Django's log)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from backups import report

    with CaptureQueriesContext(connection) as captured:
        report.build(user)
    return round(sum(float(q["time"]) for q in captured), 3)


def main() -> int:
    original_url = use_bench_database(BENCH_DB)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from backups import report, report_export
    from tests.factories import make_user

    setup_test_environment()  # the test client's host name is allowed
    try:
        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        fleet = build_fleet()
        fleet_s = time.perf_counter() - t0
        print(f"fleet: {fleet}, {fleet_s:.1f} s")
        runs_s = fill_runs()
        extra = fill_restores_and_missed()
        manager = make_user("bench-manager", persona="manager")

        queries = {}
        for label, env in (("10", "development"), ("100", "qa"), ("1000", "")):
            count, shown = queries_of(manager, env)
            queries[label] = count
            print(f"report of {shown:5} clusters: {count} queries")
        build = timed(lambda: report.build(manager))
        csv = timed(lambda: report_export.as_csv(report.build(manager)))
        sql_s = sql_time(manager)
        built = report.build(manager)
        csv_bytes = len(report_export.as_csv(built))
        print(f"data build, 1,000 clusters: p50 {build['p50_s']:.3f} s, max {build['max_s']:.3f} "
              f"s (CPU p50 {build['cpu_p50_s']:.3f} s, SQL {sql_s:.3f} s)")  # fmt: skip
        print(f"CSV export (build + CSV, {csv_bytes:,} bytes): p50 {csv['p50_s']:.3f} s, "
              f"max {csv['max_s']:.3f} s (CPU p50 {csv['cpu_p50_s']:.3f} s)")  # fmt: skip
        client = Client()
        client.force_login(manager)
        url = reverse("backups:report")
        page = timed(lambda: client.get(url), repeat=5)
        print(f"report page (first 100 rows): p50 {page['p50_s']:.3f} s, max {page['max_s']:.3f} s")
        per_day = timed(lambda: report.daily("production"), repeat=3)
        print(f"per-day sums of production (600 clusters; its environment page, no target): "
              f"p50 {per_day['p50_s']:.3f} s")  # fmt: skip
        summary_all = built.summaries[-1]
        print(f"fleet: {summary_all.with_usable} of {summary_all.clusters} clusters with a "
              f"usable backup, {summary_all.fresh} within a day; 30-day success "
              f"{summary_all.rates[30].percent} % of {summary_all.rates[30].finished:,} runs; "
              f"retention met {summary_all.retention_met}, not met "
              f"{summary_all.retention_not_met}")  # fmt: skip
    finally:
        from django.db import connections

        connections.close_all()
        drop_bench_database(original_url, BENCH_DB)

    constant = len(set(queries.values())) == 1
    ok = constant and build["p50_s"] <= TARGET_S and csv["p50_s"] <= TARGET_S
    summary = {
        "name": "backup_report",
        "clusters": fleet["clusters"],
        "runs": fleet["clusters"] * RUNS_PER_CLUSTER,
        "test_restores": extra["restores"],
        "missed_schedules": extra["missed"],
        "archive_checks": extra["archive_checks"],
        "build_s": {"fleet": round(fleet_s, 1), "runs": round(runs_s, 1)},
        "queries": queries,
        "queries_constant": constant,
        "data_build": build,
        "data_build_sql_s": sql_s,
        "csv": csv,
        "csv_bytes": csv_bytes,
        "page": page,
        "environment_per_day": per_day,
        "target_s": TARGET_S,
        "target_queries": "equal for 10, 100 and 1,000 clusters",
        "load_average_1m": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
        "ok": ok,
    }
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
