"""People from the directory and their database accounts across the fleet (issue 6).

- `Person`: one directory entry, synced from LDAP by `users.actions.sync_directory`. Never
  deleted: a person whose entry is gone or disabled becomes `left`, so their accounts stay
  attributable (offboarding needs exactly those).
- `DirectorySync`: one run of the directory sync. A run that would do harm (directory not
  reachable, too many people leaving at once) is `held`: it changed nothing and waits for a DBA.
- `DatabaseAccount`: one login role of a PostgreSQL cluster or one `user@host` of a MariaDB/MySQL
  server, as last imported (`users.actions.import_accounts`), with its classification: personal
  (a Person), functional (an owner and a purpose) or unclassified (an orphan to review).
- `AccountImport`: one import of one cluster's accounts.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Person(models.Model):
    """A person of the directory. `uid` is the directory's key; the rest is refreshed by every
    applied sync. `state` is `left` once the entry is gone or disabled (`left_reason` says
    which)."""

    class State(models.TextChoices):
        ACTIVE = "active"
        LEFT = "left"

    uid = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255, blank=True)
    mail = models.CharField(max_length=255, blank=True)
    dn = models.CharField(max_length=1024, blank=True)
    groups = models.JSONField(default=list, blank=True)  # group names, sorted
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    left_at = models.DateTimeField(null=True, blank=True)
    left_reason = models.CharField(max_length=255, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(null=True, blank=True)  # last applied sync that found it

    class Meta:
        ordering = ["uid"]
        permissions = [
            ("sync_directory", "Can run the directory sync and confirm a held one"),
            ("offboard_person", "Can offboard a person"),
        ]

    def __str__(self) -> str:
        return self.uid

    @property
    def display_name(self) -> str:
        return self.name or self.uid


class DirectorySync(models.Model):
    """One run of the directory sync.

    `applied`: the directory's view was written to the Person rows. `held`: nothing was changed
    (`reason` says why: the directory could not be read, or too many people would leave at once);
    `snapshot` keeps what was read so that a DBA's confirmation applies exactly that. A held run
    ends `confirmed` (applied on a DBA's word), `dismissed` (by a DBA, nothing applied) or
    `superseded` (a later run took its place). At most one run is open (held) at a time.
    """

    class Status(models.TextChoices):
        APPLIED = "applied"
        HELD = "held"
        CONFIRMED = "confirmed"
        DISMISSED = "dismissed"
        SUPERSEDED = "superseded"

    class HoldKind(models.TextChoices):
        NONE = "", "-"
        UNREACHABLE = "unreachable", "directory not reachable"
        TOO_MANY_LEFT = "too_many_left", "too many people would leave"

    started = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    hold_kind = models.CharField(max_length=16, choices=HoldKind.choices, blank=True)
    reason = models.TextField(blank=True)
    source = models.CharField(max_length=16, blank=True)  # console.AuditEntry.Source
    job = models.ForeignKey(
        "console.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    seen = models.PositiveIntegerField(default=0)  # entries the directory returned
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    left = models.PositiveIntegerField(default=0)
    returned = models.PositiveIntegerField(default=0)
    would_leave = models.JSONField(default=list, blank=True)  # uids, for a held run
    snapshot = models.JSONField(default=list, blank=True)  # entries read, for a held run
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by_name = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="held"),
                name="users_one_held_directory_sync",
            )
        ]

    def __str__(self) -> str:
        return f"directory sync #{self.pk} ({self.status})"

    @property
    def confirmable(self) -> bool:
        """A held run with something to apply (an unreachable directory gave nothing)."""
        return self.status == self.Status.HELD and self.hold_kind == self.HoldKind.TOO_MANY_LEFT


class DatabaseAccount(models.Model):
    """One login on a server, as last imported, and what it is to the company.

    Server facts (refreshed by every import): `locked` (PostgreSQL NOLOGIN, MariaDB ACCOUNT
    LOCK), `expired` (VALID UNTIL passed; MariaDB password expired), `superuser`, `member_of`,
    `valid_until`, `password_changed_at` (None where the server does not record it), `plugin`,
    `attributes`, `comment`. `gone_at` is set when an import no longer finds the account; the row
    is kept for the person's history.

    Classification: `kind` personal (with `person`), functional (with `owner_person` and/or
    `owner_team`, and `purpose`) or unclassified. `linked_by` says whether a naming rule or a
    person made it; an import re-applies the naming rules only where no person decided.
    """

    class Kind(models.TextChoices):
        PERSONAL = "personal"
        FUNCTIONAL = "functional"
        UNCLASSIFIED = "unclassified"

    class LinkedBy(models.TextChoices):
        NONE = "", "-"
        RULE = "rule", "naming rule"
        MANUAL = "manual", "by hand"

    cluster = models.ForeignKey(
        "clusters.Cluster", on_delete=models.CASCADE, related_name="database_accounts"
    )
    node = models.ForeignKey(
        "clusters.Node", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=255)
    host = models.CharField(max_length=255, blank=True)  # MariaDB/MySQL only
    locked = models.BooleanField(default=False)
    expired = models.BooleanField(default=False)
    superuser = models.BooleanField(default=False)
    member_of = models.JSONField(default=list, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    plugin = models.CharField(max_length=255, blank=True)
    attributes = models.JSONField(default=list, blank=True)  # createdb, replication, ...
    comment = models.TextField(blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    gone_at = models.DateTimeField(null=True, blank=True)

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.UNCLASSIFIED)
    linked_by = models.CharField(max_length=8, choices=LinkedBy.choices, blank=True)
    person = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    owner_person = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.PROTECT, related_name="owned_accounts"
    )
    owner_team = models.CharField(max_length=255, blank=True)
    purpose = models.CharField(max_length=255, blank=True)
    classified_by_name = models.CharField(max_length=150, blank=True)
    classified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["cluster__name", "name", "host"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "name", "host"], name="users_account_unique_per_cluster"
            )
        ]
        indexes = [models.Index(fields=["kind", "gone_at"])]
        permissions = [
            ("import_accounts", "Can import the accounts of the fleet's servers"),
            # Lifecycle (issue 6 part 3): manage = create, grant, revoke, expiry, rotate, drop.
            ("manage_account", "Can create, change and drop database accounts on the servers"),
            ("lock_account", "Can lock and unlock database accounts"),
        ]

    def __str__(self) -> str:
        return f"{self.login} on {self.cluster_id and self.cluster.name}"

    @property
    def login(self) -> str:
        """How the server names it: `role` on PostgreSQL, `'user'@'host'` on MariaDB/MySQL."""
        if self.cluster.kind == "mariadb":
            return f"'{self.name}'@'{self.host}'"
        return self.name

    @property
    def can_login(self) -> bool:
        return not (self.locked or self.expired or self.gone_at)


class AccountImport(models.Model):
    """One import of one cluster's accounts: when, from which node, what changed or why not."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    cluster = models.ForeignKey(
        "clusters.Cluster", on_delete=models.CASCADE, related_name="account_imports"
    )
    node = models.ForeignKey(
        "clusters.Node", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    error = models.TextField(blank=True)
    job = models.ForeignKey(
        "console.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    seen = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    gone = models.PositiveIntegerField(default=0)
    linked = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started", "-pk"]

    def __str__(self) -> str:
        return f"account import of {self.cluster} ({self.status})"


class OffboardingRun(models.Model):
    """The offboarding of one person (issue 6 part 4): every personal account locked, the
    person's sessions ended, the functional accounts they own listed for hand-over, and each lock
    verified on every server of its cluster.

    `state`: `awaiting_approval` (started by the directory sync while PEOPLE_OFFBOARD_APPROVAL
    is on), `requested` (a job is queued), `running`, `incomplete` (some server could not be
    done; `reason` says which and why, `next_retry_at` when the beat task tries again),
    `offboarded` (every account locked and verified), `undone` (unlocked again on purpose).
    At most one run per person is not undone: starting again returns it (idempotent).
    """

    class State(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", "awaiting approval"
        REQUESTED = "requested"
        RUNNING = "running"
        INCOMPLETE = "incomplete"
        OFFBOARDED = "offboarded"
        UNDONE = "undone"

    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="offboardings")
    state = models.CharField(max_length=20, choices=State.choices)
    reason = models.TextField(blank=True)  # why it is incomplete
    source = models.CharField(max_length=16, blank=True)  # console.AuditEntry.Source
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_name = models.CharField(max_length=150, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    approval_required = models.BooleanField(default=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by_name = models.CharField(max_length=150, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey(
        "console.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )  # the latest job that ran (or will run) it
    attempts = models.PositiveIntegerField(default=0)  # jobs that ran it
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)  # when it became offboarded
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    undone_by_name = models.CharField(max_length=150, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["person"],
                condition=~models.Q(state="undone"),
                name="users_one_offboarding_per_person",
            )
        ]
        permissions = [("view_offboarding_evidence", "Can download offboarding evidence")]

    def __str__(self) -> str:
        return f"offboarding of {self.person_id and self.person.uid} ({self.state})"


class OffboardingStep(models.Model):
    """One account of an offboarding run. `lock`: a personal account to lock, end the sessions
    of and verify; `handover`: a functional account the person owns, listed and left alone.

    `locked_before` records that the account was already locked when the run first found it, so
    an undo leaves it locked. `evidence` is what verification read, per server."""

    class Kind(models.TextChoices):
        LOCK = "lock"
        HANDOVER = "handover", "hand-over"

    class Result(models.TextChoices):
        PENDING = "pending"
        VERIFIED = "verified"
        FAILED = "failed"
        LISTED = "listed"  # hand-over
        UNLOCKED = "unlocked"  # undone

    run = models.ForeignKey(OffboardingRun, on_delete=models.CASCADE, related_name="steps")
    account = models.ForeignKey(DatabaseAccount, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    cluster_name = models.CharField(max_length=255)  # snapshots for the evidence
    engine = models.CharField(max_length=16)
    login = models.CharField(max_length=600)
    result = models.CharField(max_length=10, choices=Result.choices, default=Result.PENDING)
    locked_before = models.BooleanField(null=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    sessions_ended = models.PositiveIntegerField(default=0)
    verified_at = models.DateTimeField(null=True, blank=True)
    servers = models.CharField(max_length=255, blank=True)  # where it was verified
    evidence = models.TextField(blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    unlocked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kind", "cluster_name", "login"]
        constraints = [
            models.UniqueConstraint(fields=["run", "account"], name="users_offboarding_step_once")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.login} on {self.cluster_name}: {self.result}"
