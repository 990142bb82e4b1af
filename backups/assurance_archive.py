"""WAL archive continuity of a cluster (see backups.assurance): from the latest usable backup's
start segment to the newest archived segment, is every segment in the repository (pgBackRest
`repo-ls` of the backup's archive id) or the arclog directory (pg_rman)? Each check is an
ArchiveCheck (audited) with the first gap and `restorable_to`, the last point the cluster can
be restored to; the RPO is the time since then. The job `backups.check_archives` runs it for one
cluster or all (beat: `backups.scheduled_archive_checks`), and the alert rule
`backup_archive_gap` reads the newest check of each cluster.
"""

from collections.abc import Iterator

from django.db import connection, transaction
from django.utils import timezone

from backups import assurance_wal as wal
from backups.actions import reader_node, repository, run_pgbackrest
from backups.assurance import _ACTIVE_JOB, ARCHIVE_JOB, _source, ensure_alert_rules, latest_usable
from backups.drivers import pgbackrest
from backups.models import ArchiveCheck, BackupCatalog, BackupRun, Engine, RunStatus
from clusters.models import Cluster, Node
from console import audit, jobs
from console.errors import ExpectedFailure
from console.executor import ExecutorError, run_command, run_sql
from console.models import AuditEntry, Job

# --- WAL archive continuity --------------------------------------------------------------------


def latest_usable_of_cluster(cluster: Cluster) -> BackupRun | None:
    return (BackupRun.objects.filter(cluster=cluster, status=RunStatus.OK).exclude(backup_id="")
            .select_related("catalog").order_by("-started", "-id").first())  # fmt: skip


def _segment_size(node: Node, *, actor, job) -> tuple[int, str]:
    try:
        (row,) = run_sql(node, "backups:assurance-wal", actor=actor, job=job,
                         action=audit.BACKUP_COMMAND).rows  # fmt: skip
        return int(row[0]), ""
    except ExecutorError as exc:
        return wal.DEFAULT_SEGMENT_SIZE, (f" (the server could not be asked its WAL segment "
                                          f"size, 16 MiB assumed: {exc})")  # fmt: skip


def list_archive(catalog: BackupCatalog, backup: BackupRun, node: Node, *, actor, job=None):
    """{segment name: archive time} of every segment in the catalog's archive that holds
    `backup`'s WAL: pgBackRest's `repo-ls` of the stanza's archive id, or pg_rman's arclog
    directory."""
    if catalog.engine == Engine.PGBACKREST:
        repo = repository(catalog)
        listing = run_pgbackrest(node, pgbackrest.info(repo), actor=actor, job=job)
        archive_id = wal.archive_id_of(listing.stdout, catalog.stanza, backup.backup_id)
        if not archive_id:
            raise ExpectedFailure(f"pgBackRest's info of {catalog} lists no archive for backup "
                                  f"{backup.backup_id}.")  # fmt: skip
        result = run_pgbackrest(node, wal.repo_ls(repo, archive_id), actor=actor, job=job)
        return wal.parse_repo_ls(result.stdout)
    command = wal.arclog_ls(catalog.arclog_path)
    result = run_command(node, command.argv, actor=actor, job=job, action=audit.BACKUP_COMMAND,
                         sudo_user=command.os_user, keep_output=False)  # fmt: skip
    return wal.parse_arclog_ls(result.stdout)


def check_archive(
    cluster: Cluster, *, actor, job=None, catalog: BackupCatalog | None = None
) -> ArchiveCheck:
    """Check the WAL archive of `cluster` from its latest usable backup's start segment to the
    newest archived segment and record an ArchiveCheck (audited, backup.archive_check, in the
    same transaction): continuous or the first gap, and `restorable_to`, the archive time of
    the last segment of the unbroken chain (at least the backup's own end). When the gap
    falls inside the backup's own WAL nothing can be restored from it (restorable_to None).
    A check that cannot run is recorded with `continuous` None and the reason. `catalog`:
    check that catalog's latest usable backup (default: the cluster's newest, any catalog)."""
    backup = latest_usable(catalog) if catalog else latest_usable_of_cluster(cluster)
    check = ArchiveCheck(cluster=cluster, backup=backup, job=job,
                         catalog=backup.catalog if backup else None)  # fmt: skip
    try:
        if backup is None:
            raise ExpectedFailure("No usable (verified) backup: nothing can be restored.")
        node = reader_node(backup.catalog)
        size, note = _segment_size(node, actor=actor, job=job)
        if not (backup.start_lsn and backup.timeline):
            raise ExpectedFailure(f"Backup {backup.backup_id} has no start LSN recorded yet "
                                  f"(read the catalog again).")  # fmt: skip
        first = wal.lsn_segment(backup.timeline, backup.start_lsn, size)
        segments = list_archive(backup.catalog, backup, node, actor=actor, job=job)
        found = wal.walk(segments, first, size)
        _fill(check, backup, found, size, note)
    except ExpectedFailure as exc:
        check.continuous, check.message = None if backup else False, str(exc)
    check.checked_at = timezone.now()
    ensure_alert_rules()
    with transaction.atomic():
        check.save()
        audit.append(audit.BACKUP_ARCHIVE_CHECK, actor=actor, source=_source(job),
                     target=f"cluster:{cluster.name}", job_id=job.pk if job else None,
                     status=(AuditEntry.Status.SUCCEEDED if check.continuous
                             else AuditEntry.Status.FAILED),
                     output=_summary(check))  # fmt: skip
    return check


def _fill(check: ArchiveCheck, backup: BackupRun, found: wal.Continuity, size: int, note: str):
    check.first_segment, check.last_segment = found.first, found.last
    check.first_gap, check.last_restorable_segment = found.first_gap, found.last_restorable
    check.segments, check.missing = found.present, found.missing
    check.continuous = found.continuous
    stop = found.first
    if backup.stop_lsn:
        stop = wal.lsn_segment(backup.timeline, backup.stop_lsn, size, end=True)
    gap_no = wal.parse_segment(found.first_gap, size)[1] if found.first_gap else None
    if gap_no is not None and gap_no <= wal.parse_segment(stop, size)[1]:
        check.restorable_to = None
        check.message = (f"WAL {found.first_gap} of backup {backup.backup_id} itself is missing: "
                         f"that backup cannot be restored.{note}")  # fmt: skip
        return
    points = [t for t in (found.restorable_to, backup.recovery_time or backup.ended) if t]
    check.restorable_to = max(points) if points else None
    if found.first_gap:
        gaps = ", ".join(found.gaps) + (" ..." if found.missing > len(found.gaps) else "")
        check.message = (f"{found.missing} segment(s) missing from {found.first_gap} on ({gaps}): "
                         f"restorable only up to {found.last_restorable}.{note}")  # fmt: skip
    else:
        check.message = (f"{found.present} segment(s) from {found.first} to {found.last}, "
                         f"none missing.{note}")  # fmt: skip


def _summary(check: ArchiveCheck) -> str:
    state = {True: "continuous", False: "gap", None: "not checked"}[check.continuous]
    return (f"archive of {check.cluster.name}: {state}; backup "
            f"{check.backup.backup_id if check.backup else '-'}; first gap "
            f"{check.first_gap or '-'}; last {check.last_segment or '-'}; restorable to "
            f"{check.restorable_to.isoformat() if check.restorable_to else '-'}. "
            f"{check.message}")  # fmt: skip


def start_archive_check(
    cluster: Cluster | None = None, *, actor, source: str = AuditEntry.Source.UI
) -> Job | None:
    """Queue the job backups.check_archives for one cluster (or, None, every cluster with a
    backup catalog). Returns None, queuing nothing, while the same check is queued or
    running. The job's own entries audit it (each ArchiveCheck, each remote call)."""
    params = {"cluster": cluster.pk} if cluster is not None else {}
    with transaction.atomic():
        same = Job.objects.filter(kind=ARCHIVE_JOB, status__in=_ACTIVE_JOB, params=params)
        if same.exists():
            return None
        title = f"WAL archive check of {cluster.name}" if cluster else "WAL archive checks"
        return jobs.enqueue(ARCHIVE_JOB, title, user=actor, source=source, params=params,
                            target=cluster)  # fmt: skip


def check_archives(cluster_id: int | None = None, *, actor, job=None, log=None) -> list:
    """The job's body: check_archive for one cluster, or for every cluster with a catalog."""
    log = log or (lambda message: None)
    clusters = Cluster.objects.filter(backup_catalogs__isnull=False).distinct().order_by("name")
    if cluster_id is not None:
        clusters = Cluster.objects.filter(pk=cluster_id)
    checks = []
    for cluster in clusters:
        check = check_archive(cluster, actor=actor, job=job)
        log(_summary(check))
        checks.append(check)
    return checks


# --- the newest check of each cluster, and its alert ------------------------------------------


def newest_archive_checks(clusters=None) -> dict[int, ArchiveCheck]:
    """The newest ArchiveCheck of each cluster, by cluster id (one query)."""
    rows = ArchiveCheck.objects.order_by("cluster_id", "-checked_at", "-id")
    if clusters is not None:
        rows = rows.filter(cluster__in=clusters)
    if connection.vendor == "postgresql":  # DISTINCT ON: one row per cluster
        return {c.cluster_id: c for c in rows.distinct("cluster_id")}
    found: dict[int, ArchiveCheck] = {}
    for check in rows:
        found.setdefault(check.cluster_id, check)
    return found


def archive_alert_check(view, rule) -> Iterator:
    """clusters.alerts check `backup_archive_gap`: from the cluster's newest ArchiveCheck, a
    warning when WAL is missing after the latest usable backup, critical when nothing can be
    restored; a check that could not run leaves the alert as it is."""
    from clusters.alerts import Finding, Unknown
    from clusters.models import Severity

    if not hasattr(rule, "_newest_checks"):
        rule._newest_checks = newest_archive_checks()
    check = rule._newest_checks.get(view.cluster.pk)
    if check is None or check.continuous is True:
        return
    if check.continuous is None:
        yield Unknown(rule.key, view.cluster.pk)
        return
    severity = Severity.WARNING if check.restorable_to else Severity.CRITICAL
    yield Finding(rule.key, view.cluster.pk, "cluster", severity, check.message[:500],
                  float(check.missing))  # fmt: skip
