"""Alert evaluation: after each collection cycle, every enabled rule is checked on what the
console knows of each cluster, and alerts are opened, raised, updated and cleared.

`evaluate(cycle, now=…)` reads the NodeStatus rows (the latest view of every node), this
cycle's metrics (the CycleResult's, or the samples stored at each node's last poll when called
without one) and the previous archiver count, then:
- a condition seen for the first time opens a `pending` alert, or a `firing` one at once when
  the rule's `for_seconds` is 0;
- a pending alert whose condition held `for_seconds` since `first_seen` becomes firing;
- while the condition holds, severity, value and message follow it;
- when the condition is gone the alert is cleared. When the console cannot tell (the node is
  down, or the primary that reports a standby's lag), the alert is left as it is.
Raising and clearing go through clusters.actions.alerts (audited, source "schedule"); mails
are sent afterwards by clusters.notify, outside any transaction.

Subjects: "cluster", "node:<id>", and "node:<id>:backend:<n>" for a backend a pgpool-II node
reports down. Checks are plain functions below; each yields Findings and `Unknown`s.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from clusters import health, notify
from clusters.actions.alerts import clear_alert, fire_alert, wants_mail
from clusters.models import Alert, AlertRule, Cluster, MaintenanceWindow, Node, NodeStatus, Sample
from clusters.models import Severity as Sev

logger = logging.getLogger(__name__)

_DB = (Node.Service.POSTGRESQL, Node.Service.MARIADB)
_PG = Node.Service.POSTGRESQL
# The cycle metrics the checks read (when called without a cycle: from the stored samples).
_METRICS = (
    "archive.failed_count", "archive.ready_count", "archive.last_archived_age_s",
    "archive.last_failed_age_s", "log.fatal", "log.panic",
)  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """A rule's condition holding on one subject of a cluster."""

    rule: str
    cluster_id: int
    subject: str
    severity: str
    message: str
    value: float | None = None
    node_id: int | None = None


@dataclass(frozen=True)
class Unknown:
    """The console cannot tell whether `rule` holds on this node (or the cluster, node None):
    its open alerts there are left as they are."""

    rule: str
    cluster_id: int
    node_id: int | None = None


@dataclass
class ClusterView:
    """What one evaluation sees of a cluster: its nodes' statuses, this cycle's metrics by node
    id, the archiver's failed_count of the previous sample by node id."""

    cluster: Cluster
    statuses: list[NodeStatus]
    metrics: dict[int, dict[str, float]]
    previous_failed: dict[int, float]


def in_maintenance(cluster: Cluster, now: datetime | None = None) -> MaintenanceWindow | None:
    """The maintenance window silencing `cluster` at `now`, if any."""
    return _active_windows(now or timezone.now(), cluster=cluster).get(cluster.pk)


def _active_windows(now: datetime, cluster: Cluster | None = None) -> dict[int, MaintenanceWindow]:
    windows = MaintenanceWindow.objects.filter(starts__lte=now, ends__gt=now).filter(
        Q(ended__isnull=True) | Q(ended__gt=now)
    )
    if cluster is not None:
        windows = windows.filter(cluster=cluster)
    found: dict[int, MaintenanceWindow] = {}
    for window in windows.select_related("cluster").order_by("-ends"):
        found.setdefault(window.cluster_id, window)
    return found


def _level(rule: AlertRule, value: float) -> str | None:
    """ "Above" semantics: critical when value > critical, warning when value > warning."""
    if rule.critical is not None and value > rule.critical:
        return Sev.CRITICAL
    if rule.warning is not None and value > rule.warning:
        return Sev.WARNING
    return None


def _mib(value: float) -> str:
    return f"{value / 1048576:.1f} MiB"


def _up(s: NodeStatus) -> bool:
    return s.state == NodeStatus.State.UP


def _subject(node: Node) -> str:
    return f"node:{node.pk}"


# --- the checks, one per rule key -------------------------------------------------------------


def _replication_lag(view: ClusterView, rule: AlertRule) -> Iterator[Finding | Unknown]:
    cid = view.cluster.pk
    for s in view.statuses:
        if s.node.service != _PG or (_up(s) and s.in_recovery is False):
            continue  # a primary has no lag of its own
        if s.replay_lag_bytes is None:
            yield Unknown(rule.key, cid, s.node_id)  # down, not streaming, primary silent
            continue
        severity = _level(rule, s.replay_lag_bytes)
        if severity:
            text = f"{s.node.name} replays {_mib(s.replay_lag_bytes)} behind its primary"
            yield Finding(rule.key, cid, _subject(s.node), severity, text,
                          float(s.replay_lag_bytes), s.node_id)  # fmt: skip


def _no_sync_standby(view: ClusterView, rule: AlertRule) -> Iterator[Finding | Unknown]:
    if view.cluster.kind != Cluster.Kind.POSTGRESQL:
        return
    seen = health.cluster_health(view.cluster.kind, view.statuses)
    if seen.state in (health.DOWN, health.UNKNOWN):
        yield Unknown(rule.key, view.cluster.pk)
    elif seen.standbys and not seen.standbys_in_sync:
        why = [r for r in seen.reasons if r != "no sync standby"]
        text = "no synchronous standby" + (f" ({'; '.join(why)})" if why else "")
        yield Finding(rule.key, view.cluster.pk, "cluster", Sev.CRITICAL, text[:512], 0.0)


def _node_down(view: ClusterView, rule: AlertRule) -> Iterator[Finding | Unknown]:
    for s in view.statuses:
        if s.state == NodeStatus.State.DOWN:
            text = f"{s.node.name} does not answer: {s.error[:300] or 'no reason given'}"
            yield Finding(rule.key, view.cluster.pk, _subject(s.node), Sev.CRITICAL, text,
                          None, s.node_id)  # fmt: skip
        elif s.state == NodeStatus.State.UNKNOWN:
            yield Unknown(rule.key, view.cluster.pk, s.node_id)


def _pgpool_backend_down(view: ClusterView, rule: AlertRule) -> Iterator[Finding | Unknown]:
    for s in view.statuses:
        if s.node.service != Node.Service.PGPOOL:
            continue
        if not _up(s):
            yield Unknown(rule.key, view.cluster.pk, s.node_id)
            continue
        for b in s.details.get("backends", []):
            if b.get("status") in ("up", "waiting"):
                continue
            where = f"{b.get('hostname')}:{b.get('port')}"
            text = f"{s.node.name} reports backend {b.get('node_id')} ({where}) {b.get('status')}"
            subject = f"{_subject(s.node)}:backend:{b.get('node_id')}"[:32]
            yield Finding(rule.key, view.cluster.pk, subject, Sev.CRITICAL, text, None, s.node_id)


def _archive_failures(view: ClusterView, rule: AlertRule) -> Iterator[Finding | Unknown]:
    for s in view.statuses:
        if s.node.service != _PG:
            continue
        m = view.metrics.get(s.node_id, {})
        failed = m.get("archive.failed_count")
        if not _up(s) or failed is None:
            yield Unknown(rule.key, view.cluster.pk, s.node_id)
            continue
        before = view.previous_failed.get(s.node_id)
        grew = before is not None and failed > before
        failed_age, archived_age = (
            m.get("archive.last_failed_age_s"),
            m.get("archive.last_archived_age_s"),
        )
        failing = failed_age is not None and (archived_age is None or failed_age < archived_age)
        if grew or failing:
            text = f"archiving fails on {s.node.name} ({failed:g} failures since stats reset)"
            yield Finding(rule.key, view.cluster.pk, _subject(s.node), Sev.WARNING, text,
                          failed, s.node_id)  # fmt: skip


def _wal_ready(view: ClusterView, rule: AlertRule) -> Iterator[Finding | Unknown]:
    for s in view.statuses:
        if s.node.service != _PG:
            continue
        ready = view.metrics.get(s.node_id, {}).get("archive.ready_count")
        if not _up(s) or ready is None:
            yield Unknown(rule.key, view.cluster.pk, s.node_id)
            continue
        severity = _level(rule, ready)
        if severity:
            text = f"{ready:g} WAL files wait to be archived on {s.node.name}"
            yield Finding(rule.key, view.cluster.pk, _subject(s.node), severity, text,
                          ready, s.node_id)  # fmt: skip


def _disk_used(view: ClusterView, rule: AlertRule) -> Iterator[Finding | Unknown]:
    for s in view.statuses:
        if s.node.service not in _DB:
            continue
        if not _up(s) or s.disk_used_percent is None:
            yield Unknown(rule.key, view.cluster.pk, s.node_id)
            continue
        severity = _level(rule, s.disk_used_percent)
        if severity:
            text = f"the data directory's disk on {s.node.name} is {s.disk_used_percent:g} % full"
            yield Finding(rule.key, view.cluster.pk, _subject(s.node), severity, text,
                          s.disk_used_percent, s.node_id)  # fmt: skip


def _log_panic_fatal(view: ClusterView, rule: AlertRule) -> Iterator[Finding | Unknown]:
    for s in view.statuses:
        if s.node.service not in _DB:
            continue
        if not _up(s) or s.log_error:
            yield Unknown(rule.key, view.cluster.pk, s.node_id)
            continue
        m = view.metrics.get(s.node_id, {})
        panic, fatal = m.get("log.panic", 0.0), m.get("log.fatal", 0.0)
        if panic or fatal:
            severity, count, kind = (
                (Sev.CRITICAL, panic, "PANIC") if panic else (Sev.WARNING, fatal, "FATAL")
            )
            text = f"{count:g} new {kind} line(s) in the server log of {s.node.name}"
            yield Finding(rule.key, view.cluster.pk, _subject(s.node), severity, text,
                          count, s.node_id)  # fmt: skip


def _backup_missed(view: ClusterView, rule: AlertRule) -> Iterator[Finding | Unknown]:
    from backups.schedule import missed_check  # backups owns the check (issue 7)

    return missed_check(view, rule)


def _backup_test_restore_failed(view: ClusterView, rule: AlertRule) -> Iterator[Finding | Unknown]:
    from backups.assurance import test_restore_alert_check  # backups owns the check (issue 7)

    return test_restore_alert_check(view, rule)


def _backup_archive_gap(view: ClusterView, rule: AlertRule) -> Iterator[Finding | Unknown]:
    from backups.assurance_archive import archive_alert_check  # backups owns the check

    return archive_alert_check(view, rule)


CHECKS = {
    "replication_lag": _replication_lag,
    "no_sync_standby": _no_sync_standby,
    "node_down": _node_down,
    "pgpool_backend_down": _pgpool_backend_down,
    "archive_failures": _archive_failures,
    "wal_ready": _wal_ready,
    "disk_used": _disk_used,
    "log_panic_fatal": _log_panic_fatal,
    "backup_missed": _backup_missed,
    "backup_test_restore_failed": _backup_test_restore_failed,
    "backup_archive_gap": _backup_archive_gap,
}


# --- reading what the cycle saw ---------------------------------------------------------------


def _views(cycle) -> list[ClusterView]:
    """Every cluster with collected nodes, in three queries (statuses, samples if needed)."""
    previous = Subquery(
        Sample.objects.filter(
            node=OuterRef("node"), metric="archive.failed_count", ts__lt=OuterRef("polled")
        )
        .order_by("-ts")
        .values("value")[:1]
    )
    statuses = list(
        NodeStatus.objects.filter(node__cluster__isnull=False)
        .exclude(node__service=Node.Service.NONE)
        .select_related("node", "node__cluster")
        .annotate(previous_failed=previous)
    )
    seen = cycle.results if cycle is not None else {}
    metrics = {nid: dict(r.metrics) for nid, r in seen.items()}
    missing = [s.node_id for s in statuses if s.node_id not in metrics and s.polled]
    if missing:
        stored = Sample.objects.filter(
            node_id__in=missing, metric__in=_METRICS, ts=F("node__status__polled")
        ).values_list("node_id", "metric", "value")
        for node_id, metric, value in stored:
            metrics.setdefault(node_id, {})[metric] = value
    views: dict[int, ClusterView] = {}
    for s in statuses:
        cluster = s.node.cluster
        view = views.setdefault(cluster.pk, ClusterView(cluster, [], metrics, {}))
        view.statuses.append(s)
        if s.previous_failed is not None:
            view.previous_failed[s.node_id] = s.previous_failed
    return list(views.values())


# --- evaluation -------------------------------------------------------------------------------


def evaluate(cycle=None, *, now: datetime | None = None, job=None) -> dict:
    """Check every enabled rule after a collection cycle (a clusters.collect.CycleResult, or
    None to use the stored view), open/raise/update/clear alerts, then send the mails owed.
    Returns counts for the job's result. Never raises for a mail that cannot be sent."""
    now = now or timezone.now()
    rules = {r.key: r for r in AlertRule.objects.all()}
    enabled = {k: r for k, r in rules.items() if r.enabled and k in CHECKS}
    findings: dict[tuple, Finding] = {}
    unknown: set[tuple] = set()
    for view in _views(cycle):
        for key, rule in enabled.items():
            for found in CHECKS[key](view, rule):
                if isinstance(found, Unknown):
                    unknown.add((found.rule, found.cluster_id, found.node_id))
                else:
                    findings.setdefault((found.rule, found.cluster_id, found.subject), found)
    windows = _active_windows(now)
    counts = _reconcile(findings, unknown, rules, windows, now, job)
    counts["owed_after_maintenance"] = _owe_after_maintenance(windows)
    counts.update(notify.send_due(now=now, job=job))
    counts["firing"] = Alert.objects.filter(state=Alert.State.FIRING).count()
    return counts


def _reconcile(findings, unknown, rules, windows, now, job) -> dict:
    """Open, raise, update and clear alerts so that they match `findings`."""
    counts = dict.fromkeys(("opened", "raised", "held", "cleared"), 0)
    still_open = Alert.objects.filter(cleared__isnull=True).select_related("rule", "cluster")
    open_alerts = {(a.rule.key, a.cluster_id, a.subject): a for a in still_open}
    new_pending: list[Alert] = []
    held: list[Alert] = []
    changed: list[Alert] = []
    for key, found in findings.items():
        rule, alert = rules[found.rule], open_alerts.pop(key, None)
        if alert is None:
            alert = Alert(rule=rule, cluster_id=found.cluster_id, node_id=found.node_id,
                          subject=found.subject, first_seen=now)  # fmt: skip
        news = (found.severity, found.value, found.message)
        if alert.pk and news != (alert.severity, alert.value, alert.message):
            changed.append(alert)
        alert.severity, alert.value, alert.message = news
        alert.last_seen = now
        if alert.state == Alert.State.PENDING and _held_long_enough(alert, rule, now):
            counts["raised"] += _raise(alert, windows.get(found.cluster_id), now, job)
        elif alert.pk is None:
            new_pending.append(alert)
        else:
            held.append(alert)
    counts["opened"] = _store(new_pending, held, changed, now)
    for key, alert in open_alerts.items():
        rule = rules[key[0]]
        if rule.enabled and (rule.key, alert.cluster_id, alert.node_id) in unknown:
            continue  # cannot tell: leave it as it is
        why = "condition gone" if rule.enabled else "rule disabled"
        window = windows.get(alert.cluster_id)
        counts["cleared"] += clear_alert(alert, now=now, why=why, window=window, job=job)
    counts["held"] = len(held)
    return counts


def _held_long_enough(alert: Alert, rule: AlertRule, now: datetime) -> bool:
    return (now - alert.first_seen).total_seconds() >= rule.for_seconds


def _raise(alert: Alert, window, now: datetime, job) -> bool:
    try:
        return fire_alert(alert, now=now, window=window, job=job)
    except IntegrityError:  # another evaluation opened it meanwhile
        logger.info("alert %s/%s opened by another evaluation", alert.rule.key, alert.subject)
        return False


def _store(new_pending: list[Alert], held: list[Alert], changed: list[Alert], now) -> int:
    """Insert the new pending alerts (one statement; one that another evaluation opened
    meanwhile is skipped by the partial unique index), stamp the held ones as seen, and write
    the changed ones' severity, value and message. Returns how many were opened."""
    opened = 0
    if new_pending:
        Alert.objects.bulk_create(new_pending, ignore_conflicts=True)
        opened = len(new_pending)
    if held:
        Alert.objects.filter(pk__in=[a.pk for a in held]).update(last_seen=now)
    if changed:
        Alert.objects.bulk_update(changed, ["severity", "value", "message"], batch_size=200)
    return opened


def _owe_after_maintenance(windows: dict[int, MaintenanceWindow]) -> int:
    """Alerts raised silenced that still fire once their cluster's window is over owe their
    mail now (once: notify_due is set only while nothing was sent or tried)."""
    late = (
        Alert.objects.filter(
            state=Alert.State.FIRING,
            silenced=True,
            notified__isnull=True,
            notify_due="",
            notify_error="",
        )  # fmt: skip
        .exclude(cluster_id__in=list(windows))
        .select_related("rule")
    )
    owed = [a.pk for a in late if wants_mail(a.rule)]
    if owed:
        Alert.objects.filter(pk__in=owed, notify_due="").update(notify_due=Alert.Notify.FIRING)
    return len(owed)
