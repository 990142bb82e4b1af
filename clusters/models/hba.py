"""pg_hba.conf managed per cluster: the console's ordered rules, every applied version, and the
files last read from the nodes (for drift). Parsing and rendering are in clusters/hba.py."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from clusters import hba
from clusters.models.inventory import Cluster, Node


class Target(models.TextChoices):
    BOTH = "both", "primary and standbys"
    PRIMARY = "primary", "primary only"
    STANDBYS = "standbys", "standbys only"


class HbaRuleSet(models.Model):
    """The console's version of a cluster's pg_hba.conf: a header comment, ordered rules and a
    footer comment. Changed only through clusters.actions.hba (audited)."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="hba")
    header = models.TextField(blank=True)
    footer = models.TextField(blank=True)
    updated = models.DateTimeField(default=timezone.now)
    updated_by_name = models.CharField(max_length=150, blank=True)

    class Meta:
        permissions = [("apply_hbaruleset", "Can apply pg_hba.conf rules to servers")]

    def __str__(self) -> str:
        return f"pg_hba.conf of {self.cluster}"

    def rules_list(self) -> list[hba.Rule]:
        return [r.as_rule() for r in self.rules.all()]


class HbaRule(models.Model):
    """One record of pg_hba.conf, at `position` (0-based) in its rule set. Field texts are in
    canonical pg_hba form (clusters.hba_validate.normalise); options are [name, value] pairs in
    order."""

    ruleset = models.ForeignKey(HbaRuleSet, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveIntegerField()
    target = models.CharField(max_length=16, choices=Target.choices, default=Target.BOTH)
    conn_type = models.CharField(max_length=16)
    database = models.CharField(max_length=1000)
    user = models.CharField(max_length=1000)
    address = models.CharField(max_length=300, blank=True)
    netmask = models.CharField(max_length=64, blank=True)
    method = models.CharField(max_length=16)
    options = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["ruleset", "position"]

    def __str__(self) -> str:
        return hba.mask_secrets(self.as_rule().line())

    def as_rule(self) -> hba.Rule:
        return hba.Rule(
            conn_type=self.conn_type, database=self.database, user=self.user,
            address=self.address, netmask=self.netmask, method=self.method,
            options=tuple((k, v) for k, v in self.options), comment=self.comment,
            target=self.target,
        )  # fmt: skip


def rule_to_json(rule: hba.Rule) -> dict:
    return {
        "target": rule.target, "conn_type": rule.conn_type, "database": rule.database,
        "user": rule.user, "address": rule.address, "netmask": rule.netmask,
        "method": rule.method, "options": [list(o) for o in rule.options],
        "comment": rule.comment,
    }  # fmt: skip


def rule_from_json(data: dict) -> hba.Rule:
    return hba.Rule(**{**data, "options": tuple((k, v) for k, v in data.get("options", []))})


class HbaVersion(models.Model):
    """A rule set as it was sent to the nodes: number N of its cluster, with the rules, who
    asked, and the outcome over all nodes (each node's file and result in HbaNodeVersion)."""

    class Kind(models.TextChoices):
        APPLY = "apply"
        ROLLBACK = "rollback"

    class Status(models.TextChoices):
        PENDING = "pending"
        APPLIED = "applied"  # every node has it (written now, or already had it)
        REFUSED = "refused"  # PostgreSQL refused the file on a node; that node was put back
        FAILED = "failed"  # a step failed (unreachable, command failed); see the nodes

    ruleset = models.ForeignKey(HbaRuleSet, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.APPLY)
    rolled_back_to = models.PositiveIntegerField(null=True, blank=True)
    rules = models.JSONField(default=list)  # rule_to_json of each rule, in order
    header = models.TextField(blank=True)
    footer = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    job = models.ForeignKey(
        "console.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["ruleset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["ruleset", "number"], name="hba_version_number")
        ]

    def __str__(self) -> str:
        return f"version {self.number} of {self.ruleset.cluster}"

    def rules_list(self) -> list[hba.Rule]:
        return [rule_from_json(r) for r in self.rules]


class HbaNodeVersion(models.Model):
    """The file a version gave one node, and what happened: written and reloaded, already
    there, refused by PostgreSQL (errors per line, mapped to rules; the old file put back, no
    reload) or failed (the step that failed; the node left as it was)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPLIED = "applied"
        UNCHANGED = "unchanged"
        REFUSED = "refused"
        FAILED = "failed"
        SKIPPED = "skipped"  # not tried: an earlier node refused or failed

    version = models.ForeignKey(HbaVersion, on_delete=models.CASCADE, related_name="node_files")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    path = models.CharField(max_length=1000, blank=True)
    text = models.TextField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    errors = models.JSONField(default=list, blank=True)  # [{"line", "error", "rule"}]
    backup_path = models.CharField(max_length=1000, blank=True)
    detail = models.TextField(blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["version", "node__name"]
        constraints = [models.UniqueConstraint(fields=["version", "node"], name="hba_node_version")]

    def __str__(self) -> str:
        return f"{self.version} on {self.node}"


class HbaLiveFile(models.Model):
    """A node's pg_hba.conf as last read over SSH (import, drift check, apply)."""

    node = models.OneToOneField(Node, on_delete=models.CASCADE, related_name="hba_live")
    path = models.CharField(max_length=1000, blank=True)
    text = models.TextField(blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    read_at = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True)  # why it could not be read, if it could not

    def __str__(self) -> str:
        return f"pg_hba.conf of {self.node}"
