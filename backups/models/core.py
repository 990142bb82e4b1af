"""Backups: where they are kept (BackupCatalog), when they are taken (BackupPolicy), each backup
(BackupRun) and each restore (RestoreRun).

One model for both engines, pg_rman (a catalog directory on storage the database hosts share)
and pgBackRest (a repository and a stanza); fields named after an engine's option apply to that
engine only, and `clean()` refuses the other engine's. A run is *usable* only when the engine
reports it validated and sound (pg_rman status OK): an unvalidated backup (DONE) cannot be
restored. Rows are written by backups.actions with their audit entry in the same transaction.
"""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_celery_beat.validators import crontab_validator

from backups.drivers.base import DriverInputError
from backups.drivers.pg_rman import check_path, check_target_time
from clusters.models import Cluster, Node


class Engine(models.TextChoices):
    PG_RMAN = "pg_rman", "pg_rman"
    PGBACKREST = "pgbackrest", "pgBackRest"


class BackupMode(models.TextChoices):
    FULL = "full", "full"
    INCREMENTAL = "incremental", "incremental (pg_rman)"
    ARCHIVE = "archive", "archive WAL only (pg_rman)"
    DIFF = "diff", "differential (pgBackRest)"
    INCR = "incr", "incremental (pgBackRest)"


ENGINE_MODES: dict[str, tuple[str, ...]] = {
    Engine.PG_RMAN: (BackupMode.FULL, BackupMode.INCREMENTAL, BackupMode.ARCHIVE),
    Engine.PGBACKREST: (BackupMode.FULL, BackupMode.DIFF, BackupMode.INCR),
}


def validate_cron(value: str) -> None:
    """Five cron fields (minute hour day-of-month month day-of-week), checked by the same
    validator django-celery-beat applies to its CrontabSchedule."""
    fields = value.split()
    if len(fields) != 5:
        raise ValidationError(
            "A schedule is five cron fields: minute hour day-of-month month day-of-week "
            "(e.g. '0 2 * * 0' for Sundays at 02:00)."
        )
    try:
        crontab_validator(" ".join(fields))
    except ValidationError as exc:
        raise ValidationError(f"Not a valid cron schedule: {'; '.join(exc.messages)}") from None


def _absolute_path(value: str) -> None:
    if value:
        try:
            check_path("path", value)
        except DriverInputError as exc:
            raise ValidationError(exc.message) from None


def _time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ValidationError(f"Not a known time zone: {value!r}.") from None


class BackupCatalog(models.Model):
    """Where a cluster's backups live: a pg_rman catalog (`path`, its -B) or a pgBackRest
    repository (`path`, repo1-path, with `stanza`). `nodes` are the hosts that see it (the
    shared mount), on which the engine runs."""

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="backup_catalogs")
    name = models.CharField(max_length=64)
    engine = models.CharField(max_length=16, choices=Engine.choices)
    path = models.CharField(max_length=1024, validators=[_absolute_path])
    nodes = models.ManyToManyField(Node, related_name="backup_catalogs", blank=True)
    arclog_path = models.CharField(  # pg_rman -A: where the server archives WAL
        max_length=1024, blank=True, validators=[_absolute_path]
    )
    srvlog_path = models.CharField(  # pg_rman -S: the server's log_directory
        max_length=1024, blank=True, validators=[_absolute_path]
    )
    stanza = models.CharField(max_length=64, blank=True)  # pgBackRest
    # pg_rman names backups by their start time in the database host's local time.
    time_zone = models.CharField(max_length=64, default="UTC", validators=[_time_zone])
    initialized = models.DateTimeField(null=True, blank=True)
    last_read = models.DateTimeField(null=True, blank=True)  # catalog last read into BackupRuns
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="backups_catalog_name"),
            models.CheckConstraint(
                condition=Q(engine__in=[e.value for e in Engine]), name="backups_catalog_engine"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cluster.name}/{self.name}"

    def clean(self) -> None:
        errors = {}
        if self.engine == Engine.PG_RMAN:
            if self.stanza:
                errors["stanza"] = "A stanza is a pgBackRest setting; pg_rman has none."
            if not self.arclog_path:
                errors["arclog_path"] = "pg_rman needs the directory the server archives WAL to."
        elif self.engine == Engine.PGBACKREST:
            if not self.stanza:
                errors["stanza"] = "pgBackRest needs a stanza name."
            for name in ("arclog_path", "srvlog_path"):
                if getattr(self, name):
                    errors[name] = "This is a pg_rman setting; pgBackRest has none."
        if errors:
            raise ValidationError(errors)


class BackupPolicy(models.Model):
    """A schedule of backups into one catalog: cron text, the mode taken at each firing,
    retention (fields named after the engine's options), compression and source node (a
    standby when set to one; the primary at run time when empty)."""

    catalog = models.ForeignKey(BackupCatalog, on_delete=models.CASCADE, related_name="policies")
    name = models.CharField(max_length=64)
    schedule = models.CharField(max_length=100, validators=[validate_cron])
    mode = models.CharField(max_length=16, choices=BackupMode.choices)
    compress = models.BooleanField(default=False)
    with_serverlog = models.BooleanField(default=False)  # pg_rman --with-serverlog
    source_node = models.ForeignKey(
        Node, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # pg_rman retention (--keep-*)
    keep_data_generations = models.PositiveIntegerField(null=True, blank=True)
    keep_data_days = models.PositiveIntegerField(null=True, blank=True)
    keep_arclog_files = models.PositiveIntegerField(null=True, blank=True)
    keep_arclog_days = models.PositiveIntegerField(null=True, blank=True)
    keep_srvlog_files = models.PositiveIntegerField(null=True, blank=True)
    keep_srvlog_days = models.PositiveIntegerField(null=True, blank=True)
    # pgBackRest retention (repo1-retention-*)
    retention_full = models.PositiveIntegerField(null=True, blank=True)
    retention_diff = models.PositiveIntegerField(null=True, blank=True)
    retention_archive = models.PositiveIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)

    PG_RMAN_RETENTION = ("keep_data_generations", "keep_data_days", "keep_arclog_files",
                         "keep_arclog_days", "keep_srvlog_files", "keep_srvlog_days")  # fmt: skip
    PGBACKREST_RETENTION = ("retention_full", "retention_diff", "retention_archive")

    class Meta:
        ordering = ["catalog", "name"]
        verbose_name_plural = "backup policies"
        constraints = [
            models.UniqueConstraint(fields=["catalog", "name"], name="backups_policy_name"),
            models.CheckConstraint(
                condition=Q(mode__in=[m.value for m in BackupMode]), name="backups_policy_mode"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.catalog} {self.name} ({self.mode}, {self.schedule})"

    def clean(self) -> None:
        errors = {}
        if not hasattr(self, "catalog"):
            return
        engine = self.catalog.engine
        if self.mode and self.mode not in ENGINE_MODES[engine]:
            errors["mode"] = (
                f"{Engine(engine).label} takes {', '.join(ENGINE_MODES[engine])} backups."
            )
        other = self.PGBACKREST_RETENTION if engine == Engine.PG_RMAN else self.PG_RMAN_RETENTION
        for name in other:
            if getattr(self, name) is not None:
                errors[name] = f"Not a {Engine(engine).label} retention setting."
        for name in (*self.PG_RMAN_RETENTION, *self.PGBACKREST_RETENTION):
            if getattr(self, name) == 0:
                errors[name] = "Keep at least 1, or leave it empty."
        if self.with_serverlog and engine != Engine.PG_RMAN:
            errors["with_serverlog"] = "Only pg_rman backs up server logs."
        if self.source_node_id and self.source_node.cluster_id != self.catalog.cluster_id:
            errors["source_node"] = "The source node must belong to the catalog's cluster."
        if errors:
            raise ValidationError(errors)


class RunStatus(models.TextChoices):
    """A backup's status as its engine reports it (pg_rman's words, lowercased), plus the
    console's own `pending` (queued) and `failed` (the command failed before the engine
    recorded anything)."""

    PENDING = "pending", "pending"
    RUNNING = "running", "RUNNING"
    DONE = "done", "DONE (not validated)"
    OK = "ok", "OK"
    ERROR = "error", "ERROR"
    DELETING = "deleting", "DELETING"
    DELETED = "deleted", "DELETED"
    CORRUPT = "corrupt", "CORRUPT"
    FAILED = "failed", "failed"


ACTIVE_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING)


class BackupRunQuerySet(models.QuerySet):
    def latest_usable(self, clusters=None) -> "BackupRunQuerySet":
        """The newest usable (OK) run of each cluster, in one query: per cluster, one probe of
        the partial index backups_run_usable_latest (cluster, started DESC WHERE ok), so the
        cost grows with the number of clusters, not of runs."""
        clusters = Cluster.objects.all() if clusters is None else clusters
        newest = (
            BackupRun.objects.filter(cluster=models.OuterRef("pk"), status=RunStatus.OK)
            .order_by("-started")
            .values("pk")[:1]
        )
        return self.filter(pk__in=clusters.annotate(run=models.Subquery(newest)).values("run"))


class BackupRun(models.Model):
    """One backup, started by the console or found in the catalog (`found_outside_console`).

    `backup_id` is the engine's name for it (pg_rman: its start time "YYYY-MM-DD HH:MM:SS";
    pgBackRest: its label), unique per catalog. Only one console-started run per cluster is
    active at a time (a partial unique constraint). Sizes are bytes: data files, archived WAL
    and server logs read, their total, and what was written into the catalog (after
    compression). `usable` is true only for an OK run.
    """

    catalog = models.ForeignKey(BackupCatalog, on_delete=models.PROTECT, related_name="runs")
    cluster = models.ForeignKey(  # the catalog's, kept here for the report and the constraint
        Cluster, on_delete=models.PROTECT, related_name="backup_runs"
    )
    policy = models.ForeignKey(
        BackupPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    source_node = models.ForeignKey(
        Node, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job = models.ForeignKey(
        "console.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    mode = models.CharField(max_length=16, choices=BackupMode.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    backup_id = models.CharField(max_length=64, blank=True)
    found_outside_console = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    ended = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    data_bytes = models.BigIntegerField(null=True, blank=True)
    arclog_bytes = models.BigIntegerField(null=True, blank=True)
    srvlog_bytes = models.BigIntegerField(null=True, blank=True)
    total_bytes = models.BigIntegerField(null=True, blank=True)
    written_bytes = models.BigIntegerField(null=True, blank=True)
    database_bytes = models.BigIntegerField(null=True, blank=True)
    sizes_exact = models.BooleanField(default=False)  # False: from a rounded listing
    compressed = models.BooleanField(default=False)
    with_serverlog = models.BooleanField(default=False)
    timeline = models.PositiveIntegerField(null=True, blank=True)
    parent_timeline = models.PositiveIntegerField(null=True, blank=True)
    start_lsn = models.CharField(max_length=32, blank=True)
    stop_lsn = models.CharField(max_length=32, blank=True)
    recovery_xid = models.BigIntegerField(null=True, blank=True)
    recovery_time = models.DateTimeField(null=True, blank=True)
    validated = models.BooleanField(default=False)  # a validation ran (OK or CORRUPT)
    validated_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)  # the engine's own error, for a person

    objects = BackupRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster"],
                condition=Q(
                    status__in=[s.value for s in ACTIVE_STATUSES], found_outside_console=False
                ),  # fmt: skip
                name="backups_one_active_run_per_cluster",
            ),
            models.UniqueConstraint(
                fields=["catalog", "backup_id"],
                condition=~Q(backup_id=""),
                name="backups_run_backup_id",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in RunStatus]), name="backups_run_status"
            ),
        ]
        indexes = [
            # The report: the latest usable run per cluster, over a million runs.
            models.Index(
                fields=["cluster", "-started"],
                condition=Q(status="ok"),
                name="backups_run_usable_latest",
            ),
            models.Index(fields=["cluster", "-started"], name="backups_run_cluster_started"),
            models.Index(fields=["started"], name="backups_run_started"),
        ]

    def __str__(self) -> str:
        return f"{self.cluster_id and self.cluster.name} {self.mode} {self.backup_id or self.pk}"

    @property
    def usable(self) -> bool:
        """Restorable: validated and sound. DONE (not validated), CORRUPT, ERROR are not."""
        return self.status == RunStatus.OK


class RecoveryTargetKind(models.TextChoices):
    LATEST = "latest", "the latest point"
    TIME = "time", "a point in time"
    XID = "xid", "a transaction id"
    TIMELINE = "timeline", "the end of a timeline"


class RestoreStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


class RestoreRun(models.Model):
    """One restore onto `target_node` (the cluster's own server, or another host for a test
    restore or a clone), to a recovery target, from `backup` (the base backup used), checked
    afterwards with `check_query`. One active restore per target node."""

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="restore_runs")
    catalog = models.ForeignKey(BackupCatalog, on_delete=models.PROTECT, related_name="restores")
    target_node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="restore_runs")
    target_data_directory = models.CharField(max_length=1024, blank=True)  # empty: the node's
    backup = models.ForeignKey(
        BackupRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="restores"
    )
    job = models.ForeignKey(
        "console.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_kind = models.CharField(
        max_length=16, choices=RecoveryTargetKind.choices, default=RecoveryTargetKind.LATEST
    )
    target_value = models.CharField(max_length=64, blank=True)
    target_inclusive = models.BooleanField(null=True, blank=True)
    target_action = models.CharField(max_length=16, blank=True)  # pause, promote, shutdown
    test_restore = models.BooleanField(default=False)  # into a scratch instance (assurance)
    status = models.CharField(
        max_length=16, choices=RestoreStatus.choices, default=RestoreStatus.PENDING
    )
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    ended = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)  # the measured restore time (RTO)
    check_query = models.TextField(blank=True)
    check_result = models.TextField(blank=True)
    check_ok = models.BooleanField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["target_node"],
                condition=Q(status__in=[RestoreStatus.PENDING, RestoreStatus.RUNNING]),
                name="backups_one_active_restore_per_node",
            ),
        ]
        indexes = [models.Index(fields=["cluster", "-created"], name="backups_restore_cluster")]

    def __str__(self) -> str:
        return f"restore of {self.cluster_id and self.cluster.name} to {self.target_kind}"

    def clean(self) -> None:
        errors = {}
        kind, value = self.target_kind, (self.target_value or "").strip()
        if kind == RecoveryTargetKind.LATEST:
            if value:
                errors["target_value"] = "The latest point takes no value."
        elif not value:
            errors["target_value"] = f"Give {RecoveryTargetKind(kind).label}."
        elif kind == RecoveryTargetKind.TIME:
            try:
                check_target_time(value, "target_value")
            except DriverInputError as exc:
                errors["target_value"] = exc.message
        elif not value.isdigit() or int(value) < 1:
            errors["target_value"] = f"{RecoveryTargetKind(kind).label} is a positive number."
        if self.target_inclusive is not None and kind not in ("time", "xid"):
            errors["target_inclusive"] = "Only a time or an xid target can be inclusive."
        if self.target_action not in ("", "pause", "promote", "shutdown"):
            errors["target_action"] = "One of pause, promote, shutdown."
        if errors:
            raise ValidationError(errors)
