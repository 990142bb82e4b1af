"""Security baseline actions: check a node, fix one check or every failing check on a node, read
the latest results.

Remote work goes through clusters.baseline (the executor audits every statement and command);
these actions store what was found and write the summary audit entry (baseline.checked,
baseline.fixed) in the same transaction as the rows.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from clusters import baseline
from clusters.baseline import FixFailed, FixRefused, Verdict
from clusters.models import BaselineResult, BaselineRun, BaselineStatus, Node
from console import audit
from console.executor import ExecutorError
from console.models import AuditEntry

__all__ = [
    "FixFailed",
    "FixRefused",
    "check_node",
    "fix_all",
    "fix_check",
    "latest_results",
    "prune_baseline_runs",
]


def _source(job, source):
    return AuditEntry.Source.JOB if job is not None else (source or AuditEntry.Source.CLI)


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


def _store(
    node: Node, verdicts: dict[str, Verdict], *, started, actor, job, fix_key=""
) -> BaselineRun:
    run = BaselineRun.objects.create(
        node=node, started=started, finished=timezone.now(), user=_user(actor), job=job,
        fix_key=fix_key,
    )  # fmt: skip
    BaselineResult.objects.bulk_create(
        BaselineResult(
            run=run,
            node=node,
            check_key=key,
            status=v.status,
            evidence=v.evidence,
            fixable=v.fixable,
            checked=run.finished,
        )  # fmt: skip
        for key, v in verdicts.items()
    )
    return run


def summary(verdicts: dict[str, Verdict]) -> str:
    counts = {s: sum(v.status == s for v in verdicts.values()) for s in BaselineStatus.values}
    head = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no checks for this service"
    return "\n".join([head, *(f"{key}: {v.status}" for key, v in verdicts.items())])


def check_node(node: Node, *, actor=None, job=None, source: str | None = None) -> BaselineRun:
    """Run every baseline check of the node's service and record the results.

    Guarantees: never raises for a server that is down (its checks are `error` with the
    reason); one run, its results and one baseline.checked audit entry commit together."""
    started = timezone.now()
    verdicts = baseline.run_checks(node, actor=actor, job=job)
    with transaction.atomic():
        run = _store(node, verdicts, started=started, actor=actor, job=job)
        audit.append(
            audit.BASELINE_CHECKED, actor=actor,
            actor_name=job.user_name if job is not None and actor is None else None,
            source=_source(job, source), target=f"node:{node.name}", node=node.name,
            output=summary(verdicts), job_id=job.pk if job is not None else None,
        )  # fmt: skip
    return run


def fix_check(node: Node, key: str, *, actor=None, job=None, source: str | None = None) -> str:
    """Fix one failing check on the node, then check again and record the result.

    Guarantees: a check that already passes is left alone ("nothing to do", audited); a fix
    that is refused changed nothing; a fix that fails has undone its own steps where the check
    says it can (the config file backup, locked accounts) and its message says what stays
    done; the re-check's result is stored and one baseline.fixed entry (succeeded or failed,
    with the reason) is written either way. Raises FixRefused or FixFailed for the caller."""
    check = baseline.CHECKS.get(key)
    if check is None or check.service != node.service:
        raise FixRefused(f"{node.name} has no baseline check {key!r}")
    if check.fix is None:
        where = {"hba": "on the pg_hba page", "settings": "on the settings page"}
        raise FixRefused(
            f"{check.title}: no automatic fix; fix it {where.get(check.fix_there, 'by hand')}"
        )
    started = timezone.now()
    label = f"baseline fix {key}"
    probe = baseline.Probe(node, actor=actor, job=job, label=label)
    before = baseline.evaluate(check, probe)
    message, error = "", ""
    if before.status == BaselineStatus.PASS:
        message = "the check already passes: nothing done"
    elif before.status == BaselineStatus.ERROR:
        error = f"the check could not be made before fixing, so nothing was done: {before.evidence}"
    elif not before.fixable:
        error = f"this finding has no automatic fix, nothing was done:\n{before.evidence}"
    else:
        try:
            message = check.fix(probe, before)
        except (FixRefused, FixFailed, ExecutorError) as e:
            error = str(e)
    after = before if before.status == BaselineStatus.PASS else baseline.evaluate(
        check, baseline.Probe(node, actor=actor, job=job, label=label))  # fmt: skip
    if not error and after.status != BaselineStatus.PASS:
        error = f"the fix ran ({message}) but the check still says {after.status}: {after.evidence}"
    with transaction.atomic():
        _store(node, {key: after}, started=started, actor=actor, job=job, fix_key=key)
        audit.append(
            audit.BASELINE_FIXED, actor=actor,
            actor_name=job.user_name if job is not None and actor is None else None,
            source=_source(job, source), target=f"node:{node.name} {key}", node=node.name,
            status=AuditEntry.Status.FAILED if error else AuditEntry.Status.SUCCEEDED,
            output=f"{message}\nafter: {after.status}" if message else f"after: {after.status}",
            error=error, job_id=job.pk if job is not None else None,
        )  # fmt: skip
    if error:
        raise FixFailed(error)
    return message


NOTHING_TO_DO = "nothing to do: every check with an automatic fix already passes"


@dataclass
class FixAllResult:
    """What fix_all did, check by check: fixed {key: message}, refused {key: reason} (the fix
    was refused or failed; what it says stays as it says), skipped {key: why} (failing but
    no automatic fix, or the check could not be made), and the final re-check's run."""

    fixed: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    run: BaselineRun | None = None

    @property
    def nothing_to_do(self) -> bool:
        return not self.fixed and not self.refused

    def text(self) -> str:
        lines = [NOTHING_TO_DO] if self.nothing_to_do else []
        lines += [f"fixed {k}: {m}" for k, m in self.fixed.items()]
        lines += [f"refused {k}: {m}" for k, m in self.refused.items()]
        lines += [f"not fixed {k}: {m}" for k, m in self.skipped.items()]
        return "\n".join(lines)


def fix_all(node: Node, *, actor=None, confirm: str, job=None, source: str | None = None):
    """Fix every failing check of the node that has an automatic fix, then check everything
    again and record that run.

    Order: the registry's (local_infile, anonymous accounts, remote root, test database,
    histories, accounts without a password): accounts are dropped before the remaining
    passwordless ones are locked. Each fix goes through fix_check (its own re-check, result
    and baseline.fixed entry); a refused or failed fix is reported for its check and the
    others still run. A second run finds nothing to do and says so. `confirm` must be the
    node's name (FixRefused otherwise, nothing done). One more baseline.fixed entry (target
    "node:<name> all") sums the run up; the final check writes baseline.checked."""
    if (confirm or "").strip() != node.name:
        raise FixRefused(f"type the server's name, {node.name}, to confirm; nothing was changed")
    result = FixAllResult()
    verdicts = baseline.run_checks(node, actor=actor, job=job)
    for check in baseline.checks_for(node):
        verdict = verdicts.get(check.key)
        if verdict is None or verdict.status in (BaselineStatus.PASS, BaselineStatus.REVIEW):
            continue
        if verdict.status == BaselineStatus.ERROR:
            result.skipped[check.key] = f"the check could not be made: {verdict.evidence}"
        elif check.fix is None or not verdict.fixable:
            result.skipped[check.key] = "no automatic fix: a person decides"
        else:
            try:
                result.fixed[check.key] = fix_check(node, check.key, actor=actor, job=job,
                                                    source=source)  # fmt: skip
            except (FixRefused, FixFailed) as e:
                result.refused[check.key] = str(e)
    result.run = check_node(node, actor=actor, job=job, source=source)
    with transaction.atomic():
        audit.append(
            audit.BASELINE_FIXED, actor=actor,
            actor_name=job.user_name if job is not None and actor is None else None,
            source=_source(job, source), target=f"node:{node.name} all", node=node.name,
            status=AuditEntry.Status.FAILED if result.refused else AuditEntry.Status.SUCCEEDED,
            output=result.text(), error="; ".join(result.refused),
            job_id=job.pk if job is not None else None,
        )  # fmt: skip
    return result


def latest_results(nodes) -> dict[int, dict[str, BaselineResult]]:
    """The newest result of each check of each node: {node id: {check key: result}}."""
    newest = (
        BaselineResult.objects.filter(node__in=nodes)
        .values("node", "check_key")
        .annotate(last=Max("id"))
        .values_list("last", flat=True)
    )
    found: dict[int, dict[str, BaselineResult]] = {}
    for result in BaselineResult.objects.filter(id__in=list(newest)):
        found.setdefault(result.node_id, {})[result.check_key] = result
    return found


def prune_baseline_runs() -> int:
    """Delete runs older than BASELINE_KEEP_DAYS, except each node's newest result per check
    (the report must not lose a node whose checks stopped). Returns the runs deleted."""
    cutoff = timezone.now() - timedelta(days=settings.BASELINE_KEEP_DAYS)
    latest = latest_results(Node.objects.all()).values()
    keep_runs = {r.run_id for results in latest for r in results.values()}
    old = BaselineRun.objects.filter(started__lt=cutoff).exclude(id__in=keep_runs)
    count = old.count()
    old.delete()
    return count
