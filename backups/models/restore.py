"""What the restore wizard adds to a RestoreRun (backups.models.core): the plan shown before it
was confirmed, the pre-check results, and the follow-ups done afterwards."""

from django.db import models

from backups.models.core import BackupRun, RestoreRun

__all__ = ["RestoreDetail"]


class RestoreDetail(models.Model):
    """The plan and follow-ups of one restore started from the wizard (backups.restore).

    `prechecks` is the list the job checked before touching anything: dicts with `name`,
    `ok`, `detail`. `delta`: pgBackRest restored over an existing data directory (only files
    that differ replaced). `recovery_settings_removed`: when the engine's recovery settings
    (pgBackRest's in postgresql.auto.conf, pg_rman's pg_rman_recovery.conf and its include)
    were removed; `full_backup`: the new full backup queued as the follow-up."""

    restore = models.OneToOneField(RestoreRun, on_delete=models.CASCADE, related_name="detail")
    port = models.PositiveIntegerField()
    in_place = models.BooleanField(default=False)
    delta = models.BooleanField(default=False)
    wal_first = models.CharField(max_length=24, blank=True)
    wal_until = models.CharField(max_length=255, blank=True)
    command = models.TextField(blank=True)  # the engine's command as a person would type it
    prechecks = models.JSONField(default=list, blank=True)
    recovery_settings_removed = models.DateTimeField(null=True, blank=True)
    full_backup = models.ForeignKey(
        BackupRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"plan of {self.restore}"
