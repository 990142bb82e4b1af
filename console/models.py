"""The console's own records: the audit chain, jobs with their live log, and stored secrets."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """One console change or remote effect, in an append-only SHA-256 chain.

    Each entry's `hash` covers its own fields and the `prev_hash` of the entry before it, so any
    change or removal behind the console's back breaks the chain (`manage.py audit verify`).
    Entries are never updated: a remote action appends a `started` entry before it touches the
    host and an outcome entry pointing at it (`intent`) afterwards. On PostgreSQL a trigger refuses
    UPDATE and DELETE on the table. Write through `console.audit.append`, nothing else.
    """

    class Source(models.TextChoices):
        UI = "ui"
        API = "api"
        JOB = "job"
        SCHEDULE = "schedule"
        LDAP_SYNC = "ldap-sync"
        CLI = "cli"
        SYSTEM = "system"

    class Status(models.TextChoices):
        STARTED = "started"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        ABANDONED = "abandoned"

    created = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=255, blank=True, db_index=True)
    node = models.CharField(max_length=255, blank=True)
    command = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    exit_code = models.IntegerField(null=True, blank=True)
    output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.IntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    job_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    intent_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    prev_hash = models.CharField(max_length=64, unique=True)  # one successor per entry
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["actor_name", "-id"], name="audit_actor_idx"),
            models.Index(fields=["action", "-id"], name="audit_action_idx"),
            # Prefix filters (`actor=carol*`) on the audit page: LIKE 'carol%' can use only a
            # pattern_ops index on PostgreSQL unless the collation is "C".
            models.Index(
                fields=["actor_name"],
                name="audit_actor_prefix_idx",
                opclasses=["varchar_pattern_ops"],
            ),
        ]
        permissions = [
            ("export_auditentry", "Can export audit entries"),
            ("verify_auditentry", "Can verify the audit chain"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.target} {self.status}"


class Job(models.Model):
    """One background execution, tracked from enqueue to its end.

    Created `pending` and enqueued after commit; the task wrapper in console.jobs claims it with a
    conditional UPDATE, so a redelivered message runs nothing twice. A job whose worker died is
    marked `errored` by the reaper once its heartbeat is stale.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        ERRORED = "errored"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.ERRORED, Status.CANCELLED)

    kind = models.CharField(max_length=64, db_index=True)
    title = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
    )
    user_name = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=16, choices=AuditEntry.Source.choices, default="ui")
    created = models.DateTimeField(default=timezone.now, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_name = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("view_all_jobs", "Can view every user's jobs")]

    def __str__(self) -> str:
        return f"Job #{self.pk} {self.kind} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration(self):
        if self.started is None:
            return None
        return (self.finished or timezone.now()) - self.started


class JobLogLine(models.Model):
    """A line of a job's live log; already redacted when written."""

    class Level(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        ERROR = "error"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_lines")
    created = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    message = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.message[:80]


class JobStep(models.Model):
    """One named step of a long job (console.jobs.run_steps), shown live on the job page.

    All steps of a run are written `pending` when it starts, so the page lists the whole plan;
    a step whose check finds it already done is `skipped`, which is how a re-run resumes.
    `detail` says what the step did, or why it failed; it is redacted like the job log.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        SKIPPED = "skipped"
        FAILED = "failed"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    started = models.DateTimeField(null=True, blank=True)
    ended = models.DateTimeField(null=True, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="jobstep_job_position_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name} ({self.status})"

    @property
    def duration(self):
        if self.started is None:
            return None
        return (self.ended or timezone.now()) - self.started


class Credential(models.Model):
    """A secret for reaching managed servers, encrypted at rest with MultiFernet.

    `secret_token` holds the Fernet token only; the clear value is read with `reveal()` by the
    executor and never shown on a page, in the API, a log or an audit entry.
    """

    class Kind(models.TextChoices):
        PASSWORD = "password"
        SSH_KEY = "ssh-key"
        PCP_PASSWORD = "pcp-password"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    username = models.CharField(max_length=150, blank=True)
    secret_token = models.BinaryField(editable=False)
    created = models.DateTimeField(default=timezone.now)
    rotated = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def reveal(self) -> str:
        from console.crypto import decrypt

        return decrypt(bytes(self.secret_token))
