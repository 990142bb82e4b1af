"""The backup report for managers (read-only; DBAs and auditors read it too): per cluster and
per environment, whether the company could get its data back and to what point.

Per cluster: the newest usable backup and its age, the success rate of the backups started in
the last 7, 30 and 90 days, missed schedules, retention compliance (does each catalog keep
what its policies' retention asks), the last successful test restore and its duration, and
the restorable point (RPO) from the newest WAL archive check.

`build()` reads all of it in a CONSTANT number of queries, whatever the number of clusters and
runs (bench/backup_report.py measures it on 1,000 clusters and 1,000,000 runs):
1. the environments (the filter's choices);
2. the clusters shown, with their environment;
3. the newest usable run of each (`BackupRun.objects.latest_usable`: one probe per cluster of
   the partial index backups_run_usable_latest);
4. per cluster and status, the runs started in each of the three windows: one GROUP BY over
   the runs of the last 90 days, an index-only scan of the covering index
   backups_run_report_window;
5. per catalog, the retention figures: its usable full backups (a count on the partial index
   backups_run_catalog_full) and its oldest usable backup (a probe of backups_run_catalog_usable);
   both indexes come from migration 0005;
6. the policies (their retention and whether they are enabled);
7. the newest successful test restore of each cluster (a probe of backups_restore_cluster);
8. missed schedules per window (one GROUP BY on backups_missed_cluster);
9. the newest archive check of each cluster (a probe of backups_archivecheck_latest).
Everything after that is Python over those rows: its cost grows with the clusters shown, not
with the runs. Pure reads: nothing here writes, and nothing reaches a managed server.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from backups.models import (
    ArchiveCheck,
    BackupCatalog,
    BackupMode,
    BackupPolicy,
    BackupRun,
    MissedBackup,
    RestoreRun,
    RestoreStatus,
    RunStatus,
)
from backups.report_rows import (  # noqa: F401 (the report's vocabulary, used as report.X)
    FINISHED,
    MET,
    NO_POLICY,
    NO_RETENTION,
    NOT_MET,
    SORTS,
    WINDOWS,
    ClusterReport,
    EnvironmentSummary,
    LastBackup,
    LastTestRestore,
    Rate,
    Report,
    Retention,
    human_age,
    human_duration,
    never,
    percent,
    sort_rows,
    summarise,
)
from clusters.models import Cluster, Environment
from console.access import require_perm

VIEW = "backups.view_backuprun"  # managers, auditors and DBAs hold it; the helpdesk does not


def clusters_for_report(user):
    """The clusters `user` may see in the report (every cluster; PermissionDenied without
    backups.view_backuprun)."""
    require_perm(user, VIEW)
    return Cluster.objects.all()


def build(user, *, environment: str = "", sort: str = "environment", cluster: int | None = None,
          now: datetime | None = None) -> Report:  # fmt: skip
    """The report of the clusters `user` may see (None: the console itself, for the scheduled
    mail) in `environment` (all when blank), or of one `cluster` (a pk), sorted by one of
    SORTS. A constant number of queries (see the module docstring)."""
    now = now or timezone.now()
    sort = sort if sort in SORTS else "environment"
    chosen = Cluster.objects.all() if user is None else clusters_for_report(user)
    if cluster is not None:
        chosen = chosen.filter(pk=cluster)
    elif environment:
        chosen = chosen.filter(environment__name=environment)
    names = list(Environment.objects.order_by("name").values_list("name", flat=True))  # 1
    rows = {
        pk: ClusterReport(pk, name, kind, env, _now=now)
        for pk, name, kind, env in chosen.order_by("environment__name", "name").values_list(
            "pk", "name", "kind", "environment__name"
        )  # 2
    }
    if rows:
        ids = chosen.values("pk")
        _last_usable(rows, chosen, now)  # 3
        scoped = cluster is not None or bool(environment)
        catalogs = _run_figures(rows, ids if scoped else None, now)  # 4, 5
        _retention(rows, ids, catalogs, now)  # 6
        _test_restores(rows, chosen)  # 7
        _missed(rows, ids, now)  # 8
        _archive_checks(rows, chosen, now)  # 9
    clusters = sort_rows(list(rows.values()), sort)
    return Report(
        generated_at=now, environment=environment, sort=sort, environments=names,
        clusters=clusters, summaries=summarise(clusters, now),
    )  # fmt: skip


def _last_usable(rows: dict, chosen, now: datetime) -> None:
    fields = ("pk", "cluster_id", "backup_id", "mode", "started", "ended", "duration",
              "total_bytes", "written_bytes")  # fmt: skip
    for values in BackupRun.objects.latest_usable(chosen).order_by().values_list(*fields):
        pk, cluster_id, *rest = values
        last = LastBackup(pk, *rest)
        row = rows.get(cluster_id)
        if row is None:  # a cluster created since the clusters were read
            continue
        row.last_usable = last
        if last.finished is not None:
            row.age = max(timedelta(0), now - last.finished)


def _run_figures(rows: dict, ids, now: datetime) -> dict[int, dict]:
    """Window counts per cluster: the runs started in the last 90 days, from the covering
    index backups_run_report_window (`ids` None: every cluster, no join needed). Then per
    catalog the retention figures, each a probe of a partial index:
    {catalog_id: {"fulls": usable full backups, "oldest": datetime | None}}."""
    # Grouped by status too, each window a count FILTER on the start time only: half the time
    # of one count per window and outcome (fewer comparisons per row); Python then adds the
    # statuses up (at most a few per cluster).
    counts = {f"in_{d}": Count("cluster", filter=Q(started__gte=now - timedelta(days=d)))
              for d in WINDOWS}  # fmt: skip
    runs = BackupRun.objects.all() if ids is None else BackupRun.objects.filter(cluster__in=ids)
    windows = (
        runs.filter(started__gte=now - timedelta(days=max(WINDOWS)))
        .values("cluster_id", "status")
        .order_by()
        .annotate(**counts)
    )
    for f in windows:
        row = rows.get(f["cluster_id"])
        if row is None or f["status"] not in FINISHED:  # not yet an outcome, or deleted
            continue
        for d in WINDOWS:
            row.rates[d].finished += f[f"in_{d}"]
            if f["status"] == RunStatus.OK:
                row.rates[d].ok += f[f"in_{d}"]
    kept = BackupRun.objects.filter(catalog=OuterRef("pk"), status=RunStatus.OK)
    fulls = (
        kept.filter(mode=BackupMode.FULL)
        .order_by()
        .values("catalog")
        .annotate(n=Count("*"))
        .values("n")
    )
    catalogs = (
        BackupCatalog.objects.all()
        if ids is None
        else BackupCatalog.objects.filter(cluster__in=ids)
    )
    catalogs = catalogs.annotate(
        fulls_=Subquery(fulls), oldest_=Subquery(kept.order_by("started").values("started")[:1])
    )
    return {
        pk: {"fulls": n or 0, "oldest": oldest}
        for pk, n, oldest in catalogs.order_by().values_list("pk", "fulls_", "oldest_")
    }


def _retention(rows: dict, ids, catalogs: dict, now: datetime) -> None:
    """Each catalog against the largest retention its enabled policies ask (a catalog's
    retention is applied to the whole catalog, whichever policy's backup triggered it)."""
    wanted: dict[int, dict] = {}  # catalog -> {"cluster", "name", "fulls", "days"}
    policies = BackupPolicy.objects.filter(catalog__cluster__in=ids, enabled=True).values_list(
        "catalog_id", "catalog__cluster_id", "catalog__name", "keep_data_generations",
        "retention_full", "keep_data_days",
    )  # fmt: skip
    for catalog_id, cluster_id, name, generations, retention_full, days in policies:
        if cluster_id not in rows:  # a cluster created since the clusters were read
            continue
        rows[cluster_id].policies += 1
        w = wanted.setdefault(catalog_id, {"cluster": cluster_id, "name": name, "fulls": None,
                                           "days": None})  # fmt: skip
        fulls = max(generations or 0, retention_full or 0) or None
        if fulls is not None:
            w["fulls"] = max(w["fulls"] or 0, fulls)
        if days:
            w["days"] = max(w["days"] or 0, days)
    for catalog_id, w in sorted(wanted.items(), key=lambda item: item[1]["name"]):
        retention = rows[w["cluster"]].retention
        if retention.status == NO_POLICY:
            retention.status = NO_RETENTION
        if w["fulls"] is None and w["days"] is None:
            continue
        if retention.status == NO_RETENTION:
            retention.status = MET
        have = catalogs.get(catalog_id, {"fulls": 0, "oldest": None})
        if w["fulls"] is not None:
            kept = have["fulls"]
            if retention.fulls_kept is None or kept < retention.fulls_kept:
                retention.fulls_kept, retention.fulls_wanted = kept, w["fulls"]
            if kept < w["fulls"]:
                retention.status = NOT_MET
                retention.reasons.append(
                    f"{w['name']}: {kept} usable full backup{'s' if kept != 1 else ''}, "
                    f"the policy keeps {w['fulls']}"
                )
        if w["days"] is not None:
            oldest = have["oldest"]
            age = (now - oldest).total_seconds() / 86400 if oldest else 0.0
            if retention.oldest_days is None or age < retention.oldest_days:
                retention.oldest_days, retention.days_wanted = round(age, 1), w["days"]
            if age < w["days"]:
                retention.status = NOT_MET
                retention.reasons.append(
                    f"{w['name']}: the oldest usable backup is {age:.1f} days old, "
                    f"the policy keeps {w['days']} days"
                    if oldest
                    else f"{w['name']}: no usable backup, the policy keeps {w['days']} days"
                )


def _test_restores(rows: dict, chosen) -> None:
    newest = (
        RestoreRun.objects.filter(
            cluster=OuterRef("pk"), test_restore=True, status=RestoreStatus.SUCCEEDED
        )
        .order_by("-created")
        .values("pk")[:1]
    )
    found = RestoreRun.objects.filter(
        pk__in=chosen.annotate(restore_=Subquery(newest)).values("restore_")
    ).values_list("pk", "cluster_id", "ended", "duration", "check_ok", "backup__backup_id",
                  "target_node__name")  # fmt: skip
    for pk, cluster_id, ended, duration, check_ok, backup_id, target in found:
        if cluster_id not in rows:
            continue
        rows[cluster_id].test_restore = LastTestRestore(
            pk, ended, duration, check_ok, backup_id or "", target or ""
        )


def _missed(rows: dict, ids, now: datetime) -> None:
    """Missed schedules per window (each row starts at 0 in every window)."""
    counts = {f"m_{d}": Count("pk", filter=Q(due_at__gte=now - timedelta(days=d))) for d in WINDOWS}
    since = now - timedelta(days=max(WINDOWS))
    found = (
        MissedBackup.objects.filter(cluster__in=ids, due_at__gte=since)
        .values("cluster_id")
        .order_by()
        .annotate(**counts)
    )
    for f in found:
        if f["cluster_id"] in rows:
            rows[f["cluster_id"]].missed = {d: f[f"m_{d}"] for d in WINDOWS}


def _archive_checks(rows: dict, chosen, now: datetime) -> None:
    """The restorable point of each cluster from its newest archive check (assurance): one
    probe of backups_archivecheck_latest per cluster."""
    newest = (
        ArchiveCheck.objects.filter(cluster=OuterRef("pk")).order_by("-checked_at").values("pk")[:1]
    )
    found = ArchiveCheck.objects.filter(
        pk__in=chosen.annotate(check_=Subquery(newest)).values("check_")
    ).values_list("cluster_id", "restorable_to", "continuous", "first_gap", "checked_at")
    for cluster_id, restorable_to, continuous, first_gap, checked_at in found:
        row = rows.get(cluster_id)
        if row is None:
            continue
        row.restorable_to, row.archive_continuous = restorable_to, continuous
        row.archive_gap, row.archive_checked = first_gap, checked_at
        row.rpo = max(timedelta(0), now - restorable_to) if restorable_to else None


def history(cluster: Cluster | int, *, now: datetime | None = None, days: int = max(WINDOWS),
            limit: int = 5000) -> list[dict]:  # fmt: skip
    """The runs of `cluster` started in the last `days`, oldest first, for its charts (sizes
    and durations over time): one query on the index (cluster, started DESC)."""
    now = now or timezone.now()
    runs = (
        BackupRun.objects.filter(cluster=cluster, started__gte=now - timedelta(days=days))
        .order_by("-started")
        .values("pk", "backup_id", "mode", "status", "started", "ended", "duration",
                "data_bytes", "total_bytes", "written_bytes", "database_bytes")[:limit]
    )  # fmt: skip
    return list(reversed(runs))


def daily(environment: str, *, now: datetime | None = None, days: int = max(WINDOWS)) -> list[dict]:
    """Per day of the last `days` (in the console's time zone), the backups of the clusters of
    `environment` started that day: how many were usable and how many had an outcome, the
    bytes they read and wrote, and their total duration in seconds. One GROUP BY; unlike the
    report it reads the runs themselves (sizes and durations are in no index), so it is the
    environment page's, not the report's."""
    now = now or timezone.now()
    runs = BackupRun.objects.filter(
        cluster__environment__name=environment, started__gte=now - timedelta(days=days)
    )
    found = (
        runs.annotate(day=TruncDate("started", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .order_by("day")
        .annotate(
            ok=Count("pk", filter=Q(status=RunStatus.OK)),
            finished=Count("pk", filter=Q(status__in=FINISHED)),
            read=Sum("total_bytes"),
            written=Sum("written_bytes"),
            seconds=Sum("duration"),
        )
    )
    return [
        {**f, "seconds": f["seconds"].total_seconds() if f["seconds"] is not None else None}
        for f in found
    ]
