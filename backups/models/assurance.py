"""Backup assurance: scheduled test restores (TestRestorePolicy) and WAL archive continuity
checks (ArchiveCheck), from which each cluster's last restorable point and its RPO follow.

A test restore itself is a RestoreRun with `test_restore` (backups.models.core); its
`duration` is the measured restore time, the RTO figure. Rows are written by
backups.assurance with their audit entry in the same transaction.
"""

import re
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from backups.drivers.base import DriverInputError
from backups.drivers.pg_rman import check_path
from backups.models.core import BackupCatalog, BackupRun, Engine, validate_cron
from clusters.models import Cluster, Node

__all__ = ["ArchiveCheck", "TestRestorePolicy"]


# pg_ctl hands its -o options to a shell, and the unix socket lives in the directory: plain
# characters only, and short enough for a socket path (107 bytes with "/.s.PGSQL.<port>").
_SCRATCH_RE = re.compile(r"/[A-Za-z0-9_.\-/]+")
_SCRATCH_MAX = 90
_SHARED_DIRECTORIES = ("", "/var", "/var/lib", "/srv", "/home", "/root", "/" + "tmp")


def _scratch_path(value: str) -> None:
    try:
        check_path("data_directory", value)
    except DriverInputError as exc:
        raise ValidationError(exc.message) from None
    if not _SCRATCH_RE.fullmatch(value) or "/../" in f"{value}/" or "/./" in f"{value}/":
        raise ValidationError("Letters, digits and _ . - / only, without . or .. parts.")
    if len(value) > _SCRATCH_MAX:
        raise ValidationError(f"At most {_SCRATCH_MAX} characters (the server's socket lives "
                              f"there).")  # fmt: skip
    if value.rstrip("/") in _SHARED_DIRECTORIES:
        raise ValidationError("Give a directory of its own for the scratch instance.")


class TestRestorePolicy(models.Model):
    """A scheduled test restore: the latest usable backup of `catalog` restored into a new
    `data_directory` on `node` (a host that sees the repository), started on `port`, checked
    with `check_query`, then stopped and removed. `schedule` is five cron fields (the same
    validator as BackupPolicy.schedule); each policy has a django-celery-beat PeriodicTask
    named `periodic_task_name`, kept in step by backups.assurance (enabled with the policy)."""

    __test__ = False  # a model, not a pytest test class

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="test_restores")
    catalog = models.ForeignKey(
        BackupCatalog, on_delete=models.CASCADE, related_name="test_restore_policies"
    )
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    data_directory = models.CharField(max_length=200, validators=[_scratch_path])
    port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    schedule = models.CharField(max_length=100, validators=[validate_cron])
    check_query = models.TextField(max_length=4000)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["cluster__name", "pk"]
        verbose_name_plural = "test restore policies"
        constraints = [
            models.UniqueConstraint(
                fields=["node", "data_directory"], name="backups_testrestore_directory"
            ),
        ]

    def __str__(self) -> str:
        return f"test restore of {self.catalog} on {self.node.name}:{self.port} ({self.schedule})"

    @property
    def periodic_task_name(self) -> str:
        return f"backups.test_restore:{self.pk}"

    def clean(self) -> None:
        errors = {}
        catalog = self.catalog if self.catalog_id else None
        node = self.node if self.node_id else None
        if catalog is not None:
            if self.cluster_id and catalog.cluster_id != self.cluster_id:
                errors["catalog"] = "The catalog must be one of this cluster's."
            elif catalog.engine != Engine.PGBACKREST:
                errors["catalog"] = "Test restores run from pgBackRest repositories for now."
        if node is not None and catalog is not None and "catalog" not in errors:
            seeing = list(catalog.nodes.all())
            if seeing and node not in seeing:
                errors["node"] = (
                    f"{node.name} does not see the repository {catalog.path}: choose one of "
                    f"{', '.join(n.name for n in seeing)}."
                )
        if self.port and self.port < 1024:
            errors["port"] = "Use a port above 1023: the scratch server runs as postgres."
        elif node is not None and self.port and self.port == (node.db_port or 5432):
            if node.service == Node.Service.POSTGRESQL:
                errors["port"] = f"{node.name}'s own server listens on {self.port}."
        if node is not None and self.data_directory:
            taken = Node.objects.filter(data_directory=self.data_directory.rstrip("/"))
            if taken.exists():
                errors["data_directory"] = (
                    f"That is the data directory of {taken.first().name}: a test restore goes "
                    f"into a directory of its own."
                )
        if not (self.check_query or "").strip():
            errors["check_query"] = "Give a query whose first value says the data is there."
        if errors:
            raise ValidationError(errors)


class ArchiveCheck(models.Model):
    """One check of a cluster's WAL archive: from the start WAL of the latest usable backup
    (`backup`) to the newest archived segment (`last_segment`), is every segment there?
    `continuous` (None when the check could not run: `message` says why), the first missing
    segment (`first_gap`), and `restorable_to`: the last point the cluster can be restored
    to (the archive time of the last segment of the unbroken chain; None when nothing can be
    restored). The RPO is the time since `restorable_to`."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="archive_checks")
    catalog = models.ForeignKey(
        BackupCatalog, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    backup = models.ForeignKey(
        BackupRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job = models.ForeignKey(
        "console.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    checked_at = models.DateTimeField(default=timezone.now)
    continuous = models.BooleanField(null=True)
    first_segment = models.CharField(max_length=24, blank=True)  # the backup's start WAL
    first_gap = models.CharField(max_length=24, blank=True)
    last_segment = models.CharField(max_length=24, blank=True)  # newest in the archive
    last_restorable_segment = models.CharField(max_length=24, blank=True)
    segments = models.PositiveIntegerField(default=0)  # present from first_segment on
    missing = models.PositiveIntegerField(default=0)
    restorable_to = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-checked_at", "-id"]
        get_latest_by = "checked_at"
        indexes = [
            models.Index(fields=["cluster", "-checked_at"], name="backups_archivecheck_latest")
        ]

    def __str__(self) -> str:
        state = {True: "continuous", False: "gap", None: "not checked"}[self.continuous]
        return f"archive of {self.cluster_id and self.cluster.name} {state} at {self.checked_at}"

    def rpo(self, now: datetime | None = None) -> timedelta | None:
        """The data that would be lost now: the time since the last restorable point."""
        if self.restorable_to is None:
            return None
        return (now or timezone.now()) - self.restorable_to
