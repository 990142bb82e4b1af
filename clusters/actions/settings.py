"""Server settings: reading a node's parameters and changing one on a node or a whole cluster.

A change to a cluster goes to each database node (primary first, then standbys, so a failover
keeps it): every node is read and the value checked against each before anything is sent, and
when one node fails, the nodes already changed are put back. Every remote call is audited by the
executor (changes as setting.changed); the history rows and one setting.changed entry for the
whole request are written in one transaction.

This module is the request: which nodes, one change at a time, their order, putting back the
nodes already changed, and the record. Its parts live beside it: settings_read.py (reading a
node's settings, and the settings page's rows), settings_check.py (checking a value before
anything is sent), settings_apply.py (ALTER SYSTEM and reload, or the option file and SET
GLOBAL, on one node: applying, verifying, putting back).
"""

import uuid

from django.db import transaction

from clusters.actions.settings_apply import (
    NodeOutcome,
    apply_change,
    refused_outcome,
    undo_change,
)
from clusters.actions.settings_check import ChangeRefused, check_change, check_libraries
from clusters.actions.settings_read import read_row
from clusters.models import Cluster, Node, SettingChange
from clusters.serversettings import PG_LIST_QUOTE
from console import audit
from console.executor import ExecutorError
from console.executor.redact import redact
from console.models import AuditEntry

SERVICES = (Node.Service.POSTGRESQL, Node.Service.MARIADB)


# --- Changing ---------------------------------------------------------------------------------


def active_change(node: Node):
    """The pending or running change job on this node or its cluster, if any: one change at a
    time, so two jobs never interleave their ALTER SYSTEM, reloads and put-backs."""
    from django.db.models import Q

    from console.models import Job

    where = Q(params__node=node.pk)
    if node.cluster_id:
        where |= Q(params__cluster=node.cluster_id)
    active = (Job.Status.PENDING, Job.Status.RUNNING)
    jobs = Job.objects.filter(where, kind="clusters.change_setting", status__in=active)
    return jobs.order_by("pk").first()


def enqueue_change(node: Node, name: str, value: str | None, *, cluster_wide: bool,
                   confirmed: bool, actor, source: str = AuditEntry.Source.UI):  # fmt: skip
    """Queue the clusters.change_setting job for a change the form accepted (pages and API)."""
    from console import jobs

    target = node.cluster if cluster_wide and node.cluster is not None else node
    key = "cluster" if isinstance(target, Cluster) else "node"
    what = "Reset" if value is None else "Change"
    return jobs.enqueue(
        "clusters.change_setting", f"{what} {name} on {target}", user=actor, source=source,
        params={key: target.pk, "name": name, "value": value, "confirmed": confirmed},
        target=target,
    )  # fmt: skip


def target_nodes(target: Node | Cluster) -> list[Node]:
    """The database nodes a change goes to: the node itself, or the cluster's primary first,
    then its standbys and replicas."""
    if isinstance(target, Node):
        return [target]
    nodes = list(target.nodes.filter(service__in=SERVICES))
    return sorted(nodes, key=lambda n: (n.role != Node.Role.PRIMARY, n.name))


def change_setting(target: Node | Cluster, name: str, value: str | None, *, actor,
                   job=None, confirmed: bool = False,
                   source: str = AuditEntry.Source.UI) -> list[SettingChange]:  # fmt: skip
    """Set parameter `name` to `value` (None: reset it to its default) on a node or on every
    database node of a cluster; return the history rows written (one per node).

    Guarantees: nothing is sent unless every node was read and the value checked against its
    row (ChangeRefused/AccessWouldBeLost otherwise, with a failed history row per node and a
    failed audit entry); a node whose server refuses the value, or does not reload, is put back
    as it was, and so are the nodes changed before it; every remote call is audited by the
    executor; the history rows and the request's setting.changed entry commit together.
    """
    nodes = target_nodes(target)
    if not nodes:
        raise ChangeRefused(f"{target} has no database node to change.", field="name")
    request_id = uuid.uuid4()
    rows: dict = {}
    try:
        _read_and_check(nodes, name, value, rows, confirmed=confirmed, actor=actor, job=job)
    except (ExecutorError, ChangeRefused) as e:
        message = f"Nothing was changed: {e}"
        outcomes = [refused_outcome(node, rows.get(node.pk), message) for node in nodes]
        _record(target, name, value, outcomes, actor=actor, job=job, source=source,
                request_id=request_id)  # fmt: skip
        if isinstance(e, ChangeRefused):
            raise
        raise ChangeRefused(message, field="") from None
    outcomes = _apply_in_order(nodes, rows, name, value, actor=actor, job=job)
    return _record(target, name, value, outcomes, actor=actor, job=job, source=source,
                   request_id=request_id)  # fmt: skip


def _read_and_check(nodes: list[Node], name: str, value: str | None, rows: dict, *,
                    confirmed: bool, actor, job) -> None:  # fmt: skip
    """Read each node's row for `name` into `rows` (by node pk) and check the value against
    it, and the libraries a *_libraries list names; raises at the first node that fails."""
    for node in nodes:
        rows[node.pk] = read_row(node, name, actor=actor, job=job)
        checked = check_change(node, rows[node.pk], name, value, confirmed=confirmed)
        if name in PG_LIST_QUOTE and name.endswith("_libraries") and checked is not None:
            check_libraries(node, checked.literals, actor=actor, job=job)


def _apply_in_order(nodes: list[Node], rows: dict, name: str, value: str | None, *, actor,
                    job) -> list[NodeOutcome]:  # fmt: skip
    """Apply the change node after node; when one fails, the nodes changed before it are put
    back and the rest are not tried. One outcome per node."""
    log = _logger(job)
    outcomes: list[NodeOutcome] = []
    for node in nodes:
        log(f"{node.name}: {'resetting' if value is None else 'setting'} {name}")
        outcome = apply_change(node, rows[node.pk], name, value, actor=actor, job=job)
        outcomes.append(outcome)
        log(f"{node.name}: {outcome.status}{': ' + outcome.error if outcome.error else ''}")
        if outcome.status == SettingChange.Status.FAILED:
            for done in reversed(outcomes[:-1]):
                undo_change(done, name, actor=actor, job=job)
                done.status = SettingChange.Status.FAILED
                done.error = (f"put back as it was because {node.name} failed: "
                              f"{outcome.error}{done.error}")  # fmt: skip
            break
    for node in nodes[len(outcomes) :]:
        outcomes.append(refused_outcome(node, rows[node.pk], "not tried: an earlier node failed"))
    return outcomes


def _logger(job):
    if job is None:
        return lambda message: None
    from console.models import JobLogLine

    return lambda message: JobLogLine.objects.create(job=job, message=redact(message))


# --- The record -------------------------------------------------------------------------------


def _record(target, name: str, value: str | None, outcomes: list[NodeOutcome], *, actor, job,
            source: str, request_id) -> list[SettingChange]:  # fmt: skip
    scope = SettingChange.Scope.CLUSTER if isinstance(target, Cluster) else SettingChange.Scope.NODE
    actor = actor if getattr(actor, "is_authenticated", False) else None
    failed = any(o.status == SettingChange.Status.FAILED for o in outcomes)
    shown = "reset to default" if value is None else f"= {redact(value)}"
    with transaction.atomic():
        rows = [
            SettingChange.objects.create(
                request_id=request_id,
                scope=scope,
                node=o.node,
                node_name=o.node.name,
                cluster=o.node.cluster,
                engine=o.node.service,
                name=name,
                operation=SettingChange.Operation.RESET if value is None else "set",
                old_value=o.old_value,
                new_value=o.new_value,
                unit=o.unit,
                context=o.context,
                config_file=o.config_file,
                backup_file=o.backup_file,
                status=o.status,
                error=redact(o.error),
                actor=actor,
                actor_name=actor.get_username() if actor else "",
                job=job,
            )  # fmt: skip
            for o in outcomes
        ]
        audit.append(
            audit.SETTING_CHANGED, actor=actor, source=source,
            target=f"{scope}:{target}", node=", ".join(o.node.name for o in outcomes),
            command=f"{name} {shown}",
            status=AuditEntry.Status.FAILED if failed else AuditEntry.Status.SUCCEEDED,
            output="; ".join(f"{o.node.name}: {o.status}" for o in outcomes),
            error="; ".join(f"{o.node.name}: {redact(o.error)}" for o in outcomes if o.error),
            job_id=job.pk if job else None,
        )  # fmt: skip
    return rows
