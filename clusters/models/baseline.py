"""The security baseline's records (clusters.baseline holds the checks).

A `BaselineRun` is one pass of the checks over one node (all of them, or the one check a fix
re-ran); each of its `BaselineResult` rows is one check's verdict with the evidence a DBA reads.
The report shows, per node and check, the newest result. Rows are written only by
clusters.actions.baseline, with their audit entry in the same transaction.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from clusters.models.inventory import Node


class BaselineStatus(models.TextChoices):
    PASS = "pass", "pass"
    FAIL = "fail", "fail"
    REVIEW = "review", "review"  # nothing wrong for sure: a person must look (superusers, ssl)
    ERROR = "error", "error"  # the check could not be made (server down, no privilege)


class BaselineRun(models.Model):
    """One pass of baseline checks over a node: a scheduled or on-demand check, or the re-check
    that ends a fix (`fix_key` then names the fixed check)."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="baseline_runs")
    started = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job = models.ForeignKey(
        "console.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fix_key = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-started"]
        indexes = [models.Index(fields=["node", "-started"], name="clusters_baselinerun_node")]

    def __str__(self) -> str:
        return f"baseline of {self.node_id} at {self.started:%Y-%m-%d %H:%M:%S}"


class BaselineResult(models.Model):
    """One check's verdict on a node: status, evidence text, and whether a fix can be run."""

    run = models.ForeignKey(BaselineRun, on_delete=models.CASCADE, related_name="results")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="baseline_results")
    check_key = models.CharField(max_length=64)
    status = models.CharField(max_length=8, choices=BaselineStatus.choices)
    evidence = models.TextField()
    fixable = models.BooleanField(default=False)
    checked = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["node__name", "check_key"]
        indexes = [
            models.Index(fields=["node", "check_key", "-checked"], name="clusters_baseline_latest")
        ]
        # view_baselineresult reads the report; add_baselinerun starts checks; fix_baseline fixes.
        permissions = [("fix_baseline", "Can run a security baseline fix")]

    def __str__(self) -> str:
        return f"{self.node_id} {self.check_key}: {self.status}"
