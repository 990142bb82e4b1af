"""HA operations on a cluster with an HaSetup: switchover, failover, rebuild, PCP.

Each operation has a precheck that only reads (every read audited by the executor) and returns
its checks and plan; the operation runs the precheck again first and changes nothing when it
fails. Every step is one executor call; the outcome is one ha.* entry (ha.switchover,
ha.failover, ha.rebuilt, ha.pcp) and the registered roles follow (fence.set_roles), so the
cluster page shows the new topology as soon as the job ends.

Switchover (planned, no commit lost): the chosen standby must be synchronous with zero replay
lag. The old primary is stopped cleanly (writes stop; its last WAL, the shutdown checkpoint,
is streamed to the standby), the standby replays up to that checkpoint and is promoted, pgpool
detaches the old primary (its failover_command sees a primary already and promotes nothing),
the old primary is rewound (pg_rewind; a fresh pg_basebackup if that fails), started as a
standby of the new primary, attached again through PCP, and the new primary made synchronous
with it.

Failover (the primary is gone): refused while the primary answers as a primary. The most
advanced standby known to be synchronous (the console made it so, or pgpool-II says so) is
promoted (or found promoted by pgpool-II's own failover_command), the old primary detached in
pgpool-II and fenced (clusters.ha.fence), and the new primary stops waiting for a synchronous
standby until one of the others follows it: a follow job is queued for each (clusters.ha.follow).

The steps live beside it: prechecks.py (each operation's checks and plan, reads only),
rejoin.py (a node made a synchronous standby of the primary: rewind or base backup, start,
attach in pgpool-II, synchronous), remote.py (each step on a host), fence.py.
"""

from clusters.ha import fence, remote
from clusters.ha.follow import enqueue_follows
from clusters.ha.prechecks import (
    PCP_OPERATIONS,
    failover_precheck,
    pcp_precheck,
    rebuild_precheck,
    require,
    switchover_precheck,
)
from clusters.ha.rejoin import attach, data_dir, rejoin, restore_sync
from clusters.models import HaSetup, Node
from console import audit
from console.executor import CommandFailed, ExecutorError


# --- the operations -----------------------------------------------------------------------------
def switchover(setup: HaSetup, standby: Node, *, actor=None, job=None, log=lambda m: None) -> dict:
    """Planned change of primary to `standby` with no commit lost (see the module docstring)."""
    kw = remote.call(actor, job)
    check = switchover_precheck(setup, standby, actor=actor, job=job)
    require(check)
    primary = fence.registered_primary(setup)
    old_data = data_dir(setup, primary)
    log(f"stopping {primary.name} cleanly: writes stop")
    remote.pg_stop(primary, setup, old_data, mode="fast", **kw)
    target = remote.checkpoint_lsn(primary, setup, old_data, **kw)
    log(f"waiting until {standby.name} has replayed {primary.name}'s shutdown checkpoint")
    remote.wait_for(lambda: remote.lsn(remote.recovery(standby, **kw)["replay_lsn"]) >= target
                    or not remote.recovery(standby, **kw)["in_recovery"], 60,
                    f"{standby.name} to replay the old primary's last checkpoint")  # fmt: skip
    _promote(setup, primary, standby, kw, log)
    method = rejoin(setup, primary, standby, kw, log)
    attach(setup, primary, kw, log)
    restore_sync(setup, standby, primary, kw, log)
    text = (f"switchover: {standby.name} is the primary, {primary.name} its synchronous standby "
            f"({method})")  # fmt: skip
    fence.set_roles(setup, standby, audit.HA_SWITCHOVER, text, actor=actor, job=job)
    log(text)
    return {"primary": standby.name, "standby": primary.name, "method": method}


def _promote(setup: HaSetup, old: Node, new: Node, kw: dict, log) -> None:
    """Promote `new` (unless pgpool-II's failover_command did), let it commit without a
    synchronous standby, and make pgpool-II route writes to it."""
    if remote.recovery(new, **kw)["in_recovery"]:
        log(f"promoting {new.name}")
        try:
            remote.rows(new, "clusters:ha-promote", timeout=45, **kw)
        except ExecutorError:
            if remote.recovery(new, **kw)["in_recovery"]:  # not promoted by pgpool meanwhile
                raise
    remote.wait_for(
        lambda: not remote.recovery(new, **kw)["in_recovery"], 30, f"{new.name} to accept writes"
    )
    if remote.recovery(new, **kw)["synchronous_standby_names"]:
        remote.set_synchronous(new, [], setup.synchronous_commit, **kw)
    old_id, new_id = setup.backend_id(old), setup.backend_id(new)
    if remote.pool_nodes(setup, **kw).get(old_id, {}).get("status") != "down":
        log(f"detaching {old.name} (node {old_id}) in pgpool-II")
        try:
            remote.pcp(setup, "detach_node", "-n", str(old_id), **kw)
        except CommandFailed:
            if remote.pool_nodes(setup, **kw).get(old_id, {}).get("status") != "down":
                raise
    log(f"waiting until pgpool-II routes writes to {new.name}")
    remote.wait_pgpool(
        setup, new_id,
        lambda b: b.get("role") == "primary" and b.get("status") in ("up", "waiting"),
        f"pgpool-II to see {new.name} as its primary", kw,
    )  # fmt: skip


def failover(setup: HaSetup, candidate: Node | None = None, *, actor=None, job=None,
             log=lambda m: None) -> dict:  # fmt: skip
    """The primary is gone: promote the most advanced synchronous standby (or record the one
    pgpool-II promoted), detach and fence the old primary (see fence.py)."""
    kw = remote.call(actor, job)
    check = failover_precheck(setup, candidate, actor=actor, job=job)
    require(check)
    old = Node.objects.get(name=check.facts["old"])
    new = Node.objects.get(name=check.facts["new"])
    fence.fence_node(setup, old, f"failed primary; {new.name} promoted", actor=actor, job=job)
    _promote(setup, old, new, kw, log)
    for backend in setup.backends:
        backend["synchronous"] = False
    setup.save(update_fields=["backends"])
    text = (f"failover: {new.name} is the primary"
            + (" (promoted by pgpool-II)" if check.facts["promoted_already"] else "")
            + f"; {old.name} detached in pgpool-II and fenced")  # fmt: skip
    fence.set_roles(setup, new, audit.HA_FAILOVER, text, actor=actor, job=job)
    log(text)
    reached = fence.enforce(fence.open_fence(old), setup, actor=actor, job=job)
    log(f"fence on {old.name}: " + ("enforced (stopped, standby.signal)" if reached
                                    else "host not reached; enforced when it is"))  # fmt: skip
    queued = enqueue_follows(setup, new, actor=actor, job=job)
    for follow_job in queued:
        log(f"queued job {follow_job.pk}: {follow_job.title}")
    return {"primary": new.name, "fenced": old.name, "fence_enforced": reached}


def rebuild(setup: HaSetup, node: Node, *, actor=None, job=None, log=lambda m: None) -> dict:
    """A failed, diverged or fenced standby rewound (else re-copied) from the primary,
    streaming, attached in pgpool-II and synchronous again; its fence cleared."""
    kw = remote.call(actor, job)
    check = rebuild_precheck(setup, node, actor=actor, job=job)
    require(check)
    primary = fence.registered_primary(setup)
    method = rejoin(setup, node, primary, kw, log)
    fence.clear_fence(node, actor=actor, job=job)
    attach(setup, node, kw, log)
    restore_sync(setup, primary, node, kw, log)
    remote.entry(audit.HA_REBUILT, actor=actor, job=job, target=f"node:{node.name}",
                 output=f"{node.name} rebuilt by {method} as a synchronous standby of "
                 f"{primary.name}")  # fmt: skip
    fence.refresh(setup, job)
    return {"node": node.name, "method": method, "primary": primary.name}


def pcp_operation(setup: HaSetup, operation: str, node: Node, *, actor=None, job=None,
                  log=lambda m: None) -> str:  # fmt: skip
    """pcp_detach_node / pcp_attach_node / pcp_promote_node for `node`, after its precheck."""
    check = pcp_precheck(setup, operation, node, actor=actor, job=job)
    require(check)
    number = check.facts["node_id"]
    out = remote.pcp(setup, PCP_OPERATIONS[operation], "-n", str(number), **remote.call(actor, job))
    text = (
        f"pcp_{PCP_OPERATIONS[operation]} -n {number} ({node.name}): {out.stdout.strip() or 'done'}"
    )
    remote.entry(audit.HA_PCP, actor=actor, job=job, target=f"node:{node.name}", output=text)
    log(text)
    return text


__all__ = ["failover", "pcp_operation", "rebuild", "switchover"]
