"""After a failover, every other standby follows the new primary, and the new primary is made
synchronous again as soon as one of them streams (RPO 0 again without anyone clicking).

A failover (ops.failover, started by a DBA, or pgpool-II's own, recorded by fence.reconcile)
calls `enqueue_follows`: one clusters.ha_follow job for each remaining standby backend of the
cluster that is neither the new primary nor fenced, each audited (ha.requested). Nothing long
runs where the failover is recorded (Celery beat's reconcile included): only jobs are queued.
Queuing is idempotent: no second job for a standby while one is pending or running, under a
lock on the cluster's HaSetup row so two reconciles cannot both queue.

The job (`follow_primary`) checks first, changing nothing when a check fails: the registered
primary answers out of recovery, the standby is a backend, not the primary and not fenced, and
its host is reachable. A standby already streaming from the primary is left alone (the job says
so) and only what is missing is done: attach in pgpool-II, the primary waiting for it. Else
clusters.ha.rejoin re-points it: pg_rewind from the new primary (a fresh pg_basebackup when
that fails), started as a standby, streaming, attached in pgpool-II. Then the primary waits for
the first of its streaming standbys (`FIRST 1 (...)`, synchronous_commit as the HaSetup says)
and sync_state is verified. The outcome is one ha.followed entry.

pgpool-II's follow_primary.sh stays logging only: it runs on the pgpool-II host, which has no
credentials to the database hosts.
"""

from django.db import transaction

from clusters.ha import fence, remote
from clusters.ha.prechecks import Precheck, backend_nodes, require, standby_of_primary
from clusters.ha.rejoin import SYNC_STATES, app_name, attach, data_dir, mark_sync, rejoin
from clusters.models import HaSetup, Node
from clusters.provision.standby import parse_sync_names
from console import audit, jobs
from console.executor import ExecutorError
from console.models import AuditEntry, Job

FOLLOW_KIND = "clusters.ha_follow"
ACTIVE = (Job.Status.PENDING, Job.Status.RUNNING)


def followers(setup: HaSetup, primary: Node) -> list[Node]:
    """The standby backends that must follow `primary`: not it, not fenced."""
    return [n for n in backend_nodes(setup) if n != primary and fence.open_fence(n) is None]


def active_follow(setup: HaSetup, node: Node) -> Job | None:
    return Job.objects.filter(kind=FOLLOW_KIND, status__in=ACTIVE, params__setup=setup.pk,
                              params__node=node.pk).first()  # fmt: skip


def enqueue_follows(setup: HaSetup, primary: Node, *, actor=None, job=None) -> list[Job]:
    """Queue one clusters.ha_follow job per standby that must follow `primary`, unless one is
    pending or running for it already; each audited (ha.requested). Returns the jobs queued."""
    source = job.source if job is not None else AuditEntry.Source.SCHEDULE
    cluster = setup.cluster
    queued = []
    with transaction.atomic():
        HaSetup.objects.select_for_update().filter(pk=setup.pk).first()  # one queuer at a time
        for node in followers(setup, primary):
            if active_follow(setup, node) is not None:
                continue
            title = f"{node.name} follows the new primary {primary.name} in {cluster.name}"
            new = jobs.enqueue(FOLLOW_KIND, title, user=actor, source=source, target=cluster,
                               params={"setup": setup.pk, "node": node.pk,
                                       "primary": primary.pk})  # fmt: skip
            after = f" (after job {job.pk})" if job is not None else ""
            audit.append(audit.HA_REQUESTED, actor=actor, source=source, node=node.name,
                         target=f"cluster:{cluster.name}", output=f"{title} (job {new.pk})"
                         f"{after}", job_id=job.pk if job is not None else None)  # fmt: skip
            queued.append(new)
    return queued


# --- the job ------------------------------------------------------------------------------------
def follow_precheck(setup: HaSetup, node: Node, *, actor=None, job=None) -> Precheck:
    check = Precheck("follow the new primary")
    kw = remote.call(actor, job)
    primary = standby_of_primary(
        setup, node, check, kw, "answers out of recovery (the new primary)"
    )
    if primary is None:
        return check
    f = fence.open_fence(node)
    check.add(f"{node.name} is not fenced", f is None,
              f"fenced since {f.created:%F %T}: {f.reason}" if f else "")  # fmt: skip
    try:
        found = remote.exists(node, f"{data_dir(setup, node)}/PG_VERSION", **kw)
        check.add(f"{node.name}'s host is reachable", True,
                  found="data directory there" if found else "no data directory yet")  # fmt: skip
    except ExecutorError as e:
        check.add(f"{node.name}'s host is reachable", False, str(e))
    check.plan = [
        f"nothing when {node.name} streams from {primary.name} already, but what is missing",
        f"else stop {node.name}; pg_rewind it from {primary.name} (a fresh pg_basebackup when "
        "that fails); start it as a standby; wait until it streams",
        f"attach it in pgpool-II; {primary.name} waits for the first of its streaming standbys",
    ]
    check.facts = {"primary": primary.name, "node": node.name}
    return check


def _streams(setup: HaSetup, primary: Node, node: Node, kw: dict) -> dict | None:
    row = remote.replication(primary, **kw).get(app_name(setup, node)) or {}
    return row if row.get("state") == "streaming" else None


def sync_names(setup: HaSetup, primary: Node, kw: dict) -> list[str]:
    """The application names of the primary's streaming standby backends, in backend order."""
    rows = remote.replication(primary, **kw)
    return [
        b["application_name"] for b in setup.backends
        if b["node"] != primary.pk
        and (rows.get(b["application_name"]) or {}).get("state") == "streaming"
    ]  # fmt: skip


def _synchronous(setup: HaSetup, primary: Node, node: Node, kw: dict, log) -> bool:
    """The primary waits for the first of its streaming standbys (`node` among them); verify
    sync_state. True when something was changed."""
    name = app_name(setup, node)
    _method, _count, current = parse_sync_names(
        remote.recovery(primary, **kw)["synchronous_standby_names"] or ""
    )
    rows = remote.replication(primary, **kw)
    if name in current and any(r.get("sync_state") in SYNC_STATES for r in rows.values()):
        mark_sync(setup, primary, kw)
        return False
    names = sync_names(setup, primary, kw)
    if name not in names:
        names.append(name)
    log(f"making {primary.name} wait for the first of {', '.join(names)} "
        f"(synchronous_commit = {setup.synchronous_commit})")  # fmt: skip
    remote.set_synchronous(primary, names, setup.synchronous_commit, **kw)
    remote.wait_for(lambda: any(r.get("sync_state") in SYNC_STATES
                                for r in remote.replication(primary, **kw).values()),
                    30, f"{primary.name} to have a synchronous standby")  # fmt: skip
    mark_sync(setup, primary, kw)
    return True


def follow_primary(setup: HaSetup, node: Node, *, actor=None, job=None,
                   log=lambda m: None) -> dict:  # fmt: skip
    """Re-point `node` at the registered primary (see the module docstring); safe to retry."""
    kw = remote.call(actor, job)
    check = follow_precheck(setup, node, actor=actor, job=job)
    require(check)
    primary = fence.registered_primary(setup)
    done = []
    if _streams(setup, primary, node, kw):
        method = "none"
        log(f"{node.name} streams from {primary.name} already: not re-pointed")
    else:
        method = rejoin(setup, node, primary, kw, log)
        done.append(f"re-pointed by {method}")
    number = setup.backend_id(node)
    if remote.pool_nodes(setup, **kw).get(number, {}).get("status") not in ("up", "waiting"):
        attach(setup, node, kw, log)
        done.append("attached in pgpool-II")
    if _synchronous(setup, primary, node, kw, log):
        done.append(f"{primary.name} synchronous again")
    row = remote.replication(primary, **kw).get(app_name(setup, node)) or {}
    what = "; ".join(done) if done else "it streamed from it already, nothing changed"
    text = f"{node.name} follows {primary.name} (sync_state {row.get('sync_state') or '?'}): {what}"
    remote.entry(audit.HA_FOLLOWED, actor=actor, job=job, target=f"node:{node.name}", output=text)
    log(text)
    if done:
        fence.refresh(setup, job)
    return {"node": node.name, "primary": primary.name, "method": method, "changed": done,
            "sync_state": row.get("sync_state") or ""}  # fmt: skip
