"""Fencing a former primary, and finding the failovers pgpool-II made by itself.

A failover leaves the old primary behind, perhaps only cut off, perhaps coming back. It must
never accept a write again. What stops it, in order:
1. Synchronous replication: the old primary waits for its synchronous standby before it
   acknowledges a commit. That standby is now the primary and no longer streams from it, so
   the old primary cannot acknowledge any commit, even while the console cannot reach it.
2. pgpool-II detached it (auto_failback off) and the console never attaches a fenced node.
3. The console records it fenced (FencedNode) and, each time it can reach the host, puts
   standby.signal in its data directory (any later start comes up read-only) and stops the
   server (`enforce`). The record stays open until a rebuild makes it a standby of the new
   primary (clear_fence).

`reconcile` (every few seconds from Celery beat, and at the end of each HA job) compares
pgpool-II's view with the registered roles: when pgpool-II's failover_command promoted a standby,
the console records the failover (ha.failover), fences the old primary, updates the roles and
the cluster page's statuses at once, queues a follow job for each other standby
(clusters.ha.follow), then enforces every open fence it can reach.
"""

import posixpath

from django.db import transaction
from django.utils import timezone

from clusters import status as cluster_status
from clusters.collect import collect_cycle
from clusters.ha import remote
from clusters.models import FencedNode, HaSetup, Node
from console import audit
from console.executor import ExecutorError, run_command
from console.models import AuditEntry


def open_fence(node: Node) -> FencedNode | None:
    return FencedNode.objects.filter(node=node, cleared__isnull=True).first()


def fence_node(setup: HaSetup, node: Node, reason: str, *, actor=None, job=None) -> FencedNode:
    """Record `node` fenced (idempotent: an open fence is returned as it is); audited."""
    source = job.source if job is not None else AuditEntry.Source.SCHEDULE
    with transaction.atomic():
        fence = FencedNode.objects.select_for_update().filter(node=node, cleared__isnull=True)
        if fence.exists():
            return fence.get()
        fence = FencedNode.objects.create(node=node, cluster=setup.cluster, reason=reason[:255])
        audit.append(audit.HA_FENCED, actor=actor, source=source, target=f"node:{node.name}",
                     node=node.name, output=f"fenced: {reason}",
                     job_id=job.pk if job else None)  # fmt: skip
    return fence


def enforce(fence: FencedNode, setup: HaSetup, *, actor=None, job=None) -> bool:
    """Reach the fenced node's host: standby.signal in its data directory, then the server
    stopped. True when done (or already so); False when the host cannot be reached (retried
    at the next reconcile). Each call is audited by the executor; a change by ha.fenced."""
    node = fence.node
    backend = setup.backend_of(node) or {}
    data = backend.get("data_directory") or node.data_directory
    kw = remote.call(actor, job, timeout=60)
    now = timezone.now()
    try:
        if not remote.exists(node, posixpath.join(data, "PG_VERSION"), **kw):
            note = f"no data directory at {data}: nothing can start there"
        else:
            signal = posixpath.join(data, "standby.signal")
            run_command(node, ["install", "-m", "600", "-o", "postgres", "-g", "postgres",
                               "/dev/null", signal], **kw)  # fmt: skip
            running = remote.pg_running(node, setup, data, **kw)
            remote.pg_stop(node, setup, data, mode="fast", **kw)
            note = (
                "stopped, standby.signal in place"
                if running
                else "was stopped; standby.signal in place"
            )
    except ExecutorError as e:
        FencedNode.objects.filter(pk=fence.pk).update(checked=now, note=f"not reached: {e}"[:2000])
        return False
    first = fence.state != FencedNode.State.ENFORCED
    FencedNode.objects.filter(pk=fence.pk).update(
        checked=now, note=note, state=FencedNode.State.ENFORCED,
        enforced=fence.enforced or now,
    )  # fmt: skip
    if first or "was stopped" not in note:
        remote.entry(audit.HA_FENCED, actor=actor, job=job, target=f"node:{node.name}",
                     output=f"fence enforced on {node.name}: {note}")  # fmt: skip
    return True


def clear_fence(node: Node, *, actor=None, job=None) -> None:
    """The node was rebuilt as a standby of the current primary: its fence ends; audited."""
    source = job.source if job is not None else AuditEntry.Source.SCHEDULE
    with transaction.atomic():
        updated = FencedNode.objects.filter(node=node, cleared__isnull=True).update(
            cleared=timezone.now(), state=FencedNode.State.CLEARED
        )
        if updated:
            audit.append(audit.HA_FENCED, actor=actor, source=source,
                         target=f"node:{node.name}", node=node.name,
                         output=f"fence cleared: {node.name} was rebuilt as a standby",
                         job_id=job.pk if job else None)  # fmt: skip


def set_roles(setup: HaSetup, primary: Node, action: str, output: str, *, actor=None, job=None):
    """The registered roles follow the new primary (the others are standbys); the entry
    `action` (ha.switchover, ha.failover) in the same transaction; then the cluster's nodes are
    collected at once so the cluster page and the dashboard show the new topology."""
    source = job.source if job is not None else AuditEntry.Source.SCHEDULE
    ids = [b["node"] for b in setup.backends]
    with transaction.atomic():
        Node.objects.filter(pk__in=ids).exclude(pk=primary.pk).update(role=Node.Role.STANDBY)
        Node.objects.filter(pk=primary.pk).update(role=Node.Role.PRIMARY)
        audit.append(action, actor=actor, source=source, target=f"cluster:{setup.cluster.name}",
                     node=primary.name, output=output, job_id=job.pk if job else None)  # fmt: skip
    refresh(setup, job)


def refresh(setup: HaSetup, job=None) -> None:
    nodes = [b["node"] for b in setup.backends] + [setup.pgpool_id]
    collect_cycle(nodes, job=job, timeout_per_node=3, disk=False, logs_=False)
    cluster_status.refresh_cluster_status([setup.cluster])


def registered_primary(setup: HaSetup) -> Node | None:
    ids = [b["node"] for b in setup.backends]
    return Node.objects.filter(pk__in=ids, role=Node.Role.PRIMARY).first()


def reconcile(setup: HaSetup, *, actor=None, job=None) -> dict:
    """Record a failover pgpool-II made by itself, then enforce the cluster's open fences."""
    kw = remote.call(actor, job, job_log=False)
    found: dict = {"failover": None, "fences": []}
    try:
        pool = remote.pool_nodes(setup, **kw)
    except ExecutorError as e:
        pool, found["pgpool_error"] = {}, str(e)
    old = registered_primary(setup)
    new_id = next((i for i, b in pool.items() if b.get("role") == "primary"
                   and b.get("status") in ("up", "waiting")), None)  # fmt: skip
    if old is not None and new_id is not None and new_id < len(setup.backends):
        new = Node.objects.get(pk=setup.backends[new_id]["node"])
        old_id = setup.backend_id(old)
        if new != old and pool.get(old_id, {}).get("status") == "down":
            found["failover"] = _record_pgpool_failover(setup, old, new, actor=actor, job=job)
    for fence in FencedNode.objects.filter(cluster=setup.cluster, cleared__isnull=True):
        done = enforce(fence, setup, actor=actor, job=job)
        found["fences"].append({"node": fence.node.name, "enforced": done})
    return found


def _record_pgpool_failover(setup: HaSetup, old: Node, new: Node, *, actor, job) -> str:
    kw = remote.call(actor, job)
    state = remote.recovery(new, **kw)
    if state["in_recovery"]:
        return f"pgpool-II names {new.name} primary but it is still in recovery: nothing recorded"
    if state["synchronous_standby_names"]:
        remote.set_synchronous(new, [], setup.synchronous_commit, **kw)  # nobody to wait for
    _forget_sync(setup)
    fence_node(setup, old, f"failed primary; pgpool-II promoted {new.name}", actor=actor, job=job)
    text = (
        f"pgpool-II failed over from {old.name} to {new.name} (its failover_command "
        f"promoted {new.name}); {old.name} fenced; the console recorded the new roles"
    )
    set_roles(setup, new, audit.HA_FAILOVER, text, actor=actor, job=job)
    from clusters.ha.follow import enqueue_follows  # (follow uses this module)

    queued = enqueue_follows(setup, new, actor=actor, job=job)
    if queued:
        text += "; follow jobs queued: " + ", ".join(f"#{j.pk}" for j in queued)
    return text


def _forget_sync(setup: HaSetup) -> None:
    for backend in setup.backends:
        backend["synchronous"] = False
    setup.save(update_fields=["backends"])


def reconcile_all() -> list[dict]:
    """Every deployed HA setup (Celery beat)."""
    setups = HaSetup.objects.filter(deployed__isnull=False).select_related("cluster", "pgpool")
    return [{"cluster": s.cluster.name, **reconcile(s)} for s in setups]
