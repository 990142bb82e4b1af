"""HA operations on a cluster with an HaSetup: prechecks, switchover, failover, rebuild, PCP.

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
standby until a rebuild gives it one.
"""

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from psycopg.conninfo import make_conninfo

from clusters.ha import config, fence, remote
from clusters.ha.remote import StepFailed
from clusters.models import HaSetup, Node
from clusters.provision.pg import CONF_NAME
from console import audit
from console.executor import CommandFailed, ExecutorError, run_command
from console.models import AuditEntry

# A server's host-specific configuration files: pg_rewind copies the source's over them and a
# fresh pg_basebackup brings the source's, so rejoin keeps them aside and puts them back.
# dbconsole.conf is provisioning's include file (listen_addresses, port, socket directory).
KEEP_FILES = ("postgresql.conf", "pg_hba.conf", "pg_ident.conf", CONF_NAME)
STREAM_TIMEOUT = 90.0
SYNC_STATES = ("sync", "quorum")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Precheck:
    """What an operation found before changing anything: every check, and the plan."""

    operation: str
    checks: list[Check] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, failure: str = "", *, found: str = "") -> bool:
        """One check; `failure` is shown when it fails, `found` when it passes."""
        self.checks.append(Check(name, bool(ok), failure if not ok else found))
        return bool(ok)

    def failures(self) -> str:
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if not c.ok)

    def as_dict(self) -> dict:
        return {"operation": self.operation, "ok": self.ok, "plan": self.plan,
                "checks": [c.__dict__ for c in self.checks]}  # fmt: skip


def backend_nodes(setup: HaSetup) -> list[Node]:
    nodes = {n.pk: n for n in Node.objects.filter(pk__in=[b["node"] for b in setup.backends])}
    return [nodes[b["node"]] for b in setup.backends]


def _state(node: Node, kw: dict) -> dict | None:
    try:
        return remote.recovery(node, **kw)
    except ExecutorError as e:
        return {"error": str(e)}


def _pool(setup: HaSetup, check: Precheck, kw: dict) -> dict[int, dict]:
    try:
        pool = remote.pool_nodes(setup, **kw)
    except ExecutorError as e:
        check.add("pgpool-II answers PCP", False, str(e))
        return {}
    check.add("pgpool-II answers PCP", True, found=f"{len(pool)} backends")
    return pool


def _fenced(check: Precheck, node: Node) -> None:
    f = fence.open_fence(node)
    check.add(
        f"{node.name} is not fenced",
        f is None,
        f"fenced since {f.created:%F %T}: {f.reason}" if f else "",
    )


# --- prechecks ----------------------------------------------------------------------------------
def switchover_precheck(setup: HaSetup, standby: Node, *, actor=None, job=None) -> Precheck:
    check = Precheck("switchover")
    kw = remote.call(actor, job)
    primary = fence.registered_primary(setup)
    check.add("pgpool-II deployed by the console", setup.deployed is not None)
    if not check.add("a registered primary", primary is not None, "none"):
        return check
    if not check.add(f"{standby.name} is a standby backend", setup.backend_of(standby) is not None
                     and standby != primary, "not a backend, or the primary itself"):  # fmt: skip
        return check
    _fenced(check, standby)
    p, s = _state(primary, kw), _state(standby, kw)
    check.add(f"{primary.name} answers as the primary", p.get("in_recovery") is False,
              p.get("error") or "in recovery")  # fmt: skip
    check.add(f"{standby.name} answers as a standby", s.get("in_recovery") is True,
              s.get("error") or "not in recovery")  # fmt: skip
    if p.get("in_recovery") is False:

        def in_sync_at_zero():
            row = remote.replication(primary, **kw).get(_app(setup, standby))
            return (
                row
                if row and row["sync_state"] in SYNC_STATES and row["replay_lag_bytes"] == 0
                else None
            )

        try:
            row = remote.wait_for(in_sync_at_zero, 3, "zero replay lag", step=0.2)
            check.add(f"{standby.name} synchronous with zero replay lag", True,
                      found=f"{row['state']}, {row['sync_state']}, replay lag 0 bytes")  # fmt: skip
        except StepFailed:
            row = remote.replication(primary, **kw).get(_app(setup, standby)) or {}
            check.add(f"{standby.name} synchronous with zero replay lag", False,
                      f"{row.get('state', 'not streaming')}, {row.get('sync_state', '-')}, "
                      f"replay lag {row.get('replay_lag_bytes', '?')} bytes")  # fmt: skip
    pool = _pool(setup, check, kw)
    if pool:
        down = [setup.backends[i]["name"] for i, b in pool.items() if b.get("status") == "down"]
        check.add("every pgpool-II backend up", not down, f"down: {', '.join(down)}")
    check.plan = [
        f"stop {primary.name} cleanly (writes stop; its last WAL reaches {standby.name})",
        f"wait until {standby.name} has replayed {primary.name}'s shutdown checkpoint",
        f"promote {standby.name}; pgpool-II detaches {primary.name}, writes go to {standby.name}",
        f"rewind {primary.name} (pg_rewind, else pg_basebackup), start it as a standby",
        f"attach {primary.name} in pgpool-II; make {standby.name} wait for it synchronously",
    ]  # fmt: skip
    check.facts = {"primary": primary.name, "standby": standby.name}
    return check


def failover_precheck(
    setup: HaSetup, candidate: Node | None = None, *, actor=None, job=None
) -> Precheck:
    check = Precheck("failover")
    kw = remote.call(actor, job)
    old = fence.registered_primary(setup)
    check.add("pgpool-II deployed by the console", setup.deployed is not None)
    if not check.add("a registered primary", old is not None, "none"):
        return check
    pool = _pool(setup, check, kw)
    old_id = setup.backend_id(old)
    pool_says_down = pool.get(old_id, {}).get("status") == "down"
    state = {"error": "pgpool-II detached it"} if pool_says_down else _state(old, kw)
    check.add(f"{old.name} (the primary) is gone", state.get("in_recovery") is not False,
              "it answers as a primary: use a switchover",
              found=(state.get("error") or "in recovery")[:300])  # fmt: skip
    standbys = [n for n in backend_nodes(setup) if n != old and fence.open_fence(n) is None]
    states = {n.name: _state(n, kw) for n in standbys}
    promoted = [n for n in standbys if states[n.name].get("in_recovery") is False]
    if promoted:  # pgpool-II's failover_command already did it
        chosen = promoted[0]
        check.add(f"{chosen.name} already promoted", len(promoted) == 1,
                  f"{len(promoted)} standbys answer as primaries")  # fmt: skip
    else:
        sync = [n for n in standbys if _known_sync(setup, n, pool)]
        alive = [n for n in sync if states[n.name].get("in_recovery") is True]
        if candidate is not None:
            alive = [n for n in alive if n == candidate]
        chosen = max(alive, key=lambda n: remote.lsn(states[n.name].get("receive_lsn")
                                                      or states[n.name].get("replay_lsn")),
                     default=None)  # fmt: skip
        received = (
            f"{chosen.name}, WAL received up to {states[chosen.name].get('receive_lsn')}"
            if chosen
            else ""
        )
        check.add("a synchronous standby answers", chosen is not None,
                  "no standby known to be synchronous answers: promoting another could lose "
                  "acknowledged commits" if candidate is None
                  else f"{candidate.name} is not one",
                  found=received)  # fmt: skip
    if chosen is None:
        return check
    check.plan = [
        f"promote {chosen.name} (the most advanced synchronous standby)" if not promoted
        else f"{chosen.name} was promoted by pgpool-II: record it",
        f"detach {old.name} in pgpool-II and fence it: it never accepts a write again",
        f"{chosen.name} commits without a synchronous standby until a rebuild gives it one",
    ]  # fmt: skip
    check.facts = {"old": old.name, "new": chosen.name, "promoted_already": bool(promoted)}
    return check


def _known_sync(setup: HaSetup, node: Node, pool: dict) -> bool:
    backend = setup.backend_of(node) or {}
    pool_state = pool.get(setup.backend_id(node), {}).get("replication_sync_state")
    return bool(backend.get("synchronous")) or pool_state in SYNC_STATES


def rebuild_precheck(setup: HaSetup, node: Node, *, actor=None, job=None) -> Precheck:
    check = Precheck("rebuild")
    kw = remote.call(actor, job)
    primary = fence.registered_primary(setup)
    if not check.add("a registered primary", primary is not None, "none"):
        return check
    if not check.add(f"{node.name} is a standby backend", setup.backend_of(node) is not None
                     and node != primary, "not a backend, or the primary itself"):  # fmt: skip
        return check
    p = _state(primary, kw)
    check.add(f"{primary.name} answers as the primary", p.get("in_recovery") is False,
              p.get("error") or "in recovery")  # fmt: skip
    _pool(setup, check, kw)
    check.plan = [
        f"stop {node.name} if it runs; keep its own {', '.join(KEEP_FILES)}",
        f"pg_rewind {node.name} from {primary.name}; if that fails, a fresh pg_basebackup",
        f"start it as a standby of {primary.name} (slot, standby.signal), wait until it streams",
        f"attach it in pgpool-II; make {primary.name} wait for it synchronously; end its fence",
    ]
    check.facts = {"primary": primary.name, "node": node.name}
    return check


PCP_OPERATIONS = {"detach": "detach_node", "attach": "attach_node", "promote": "promote_node"}


def pcp_precheck(setup: HaSetup, operation: str, node: Node, *, actor=None, job=None) -> Precheck:
    check = Precheck(f"pcp {operation}")
    kw = remote.call(actor, job)
    if not check.add("a known PCP operation", operation in PCP_OPERATIONS, operation):
        return check
    if not check.add(f"{node.name} is a backend", setup.backend_of(node) is not None):
        return check
    pool = _pool(setup, check, kw)
    number = setup.backend_id(node)
    mine = pool.get(number, {})
    if operation == "detach":
        check.add(f"{node.name} is not pgpool-II's primary", mine.get("role") != "primary",
                  "detaching the primary fails over: use Failover or Switchover")  # fmt: skip
    elif operation == "attach":
        _fenced(check, node)
        s = _state(node, kw)
        check.add(f"{node.name} answers as a standby", s.get("in_recovery") is True,
                  s.get("error")
                  or "it is not in recovery: attaching it would make two primaries")  # fmt: skip
    else:
        s = _state(node, kw)
        check.add(f"{node.name} answers as a primary", s.get("in_recovery") is False,
                  s.get("error")
                  or "in recovery: pcp_promote_node only changes pgpool-II's view")  # fmt: skip
    check.plan = [f"pcp_{PCP_OPERATIONS.get(operation, '?')} -n {number} on {setup.pgpool.name}"]
    check.facts = {"node": node.name, "node_id": number}
    return check


# --- helpers ------------------------------------------------------------------------------------
def _app(setup: HaSetup, node: Node) -> str:
    return setup.backend_of(node)["application_name"]


def _data(setup: HaSetup, node: Node) -> str:
    data = setup.backend_of(node)["data_directory"]
    if not data or not posixpath.isabs(data) or data.rstrip("/").count("/") < 2:
        raise StepFailed(f"no safe data directory recorded for {node.name}: {data!r}")
    return data.rstrip("/")


def _beside(data: str, name: str) -> str:
    return posixpath.join(posixpath.dirname(data), name)


def _require(check: Precheck) -> None:
    if not check.ok:
        raise StepFailed(f"{check.operation} refused, nothing changed: {check.failures()}")


def _wait_pgpool(setup: HaSetup, number: int, expect: Callable[[dict], bool], what: str, kw):
    return remote.wait_for(lambda: expect(remote.pool_nodes(setup, **kw).get(number, {})), 45, what)


def mark_sync(setup: HaSetup, primary: Node, kw: dict) -> None:
    """Record which backends the primary now waits for (backends[i]["synchronous"])."""
    rows = remote.replication(primary, **kw)
    for backend in setup.backends:
        row = rows.get(backend["application_name"]) or {}
        backend["synchronous"] = row.get("sync_state") in SYNC_STATES
    setup.save(update_fields=["backends"])


def restore_sync(setup: HaSetup, primary: Node, standby: Node, kw: dict, log) -> None:
    """The primary waits for `standby` (synchronous_commit as set up), once it streams."""
    name = _app(setup, standby)
    log(f"making {primary.name} wait for {name} (synchronous_commit = {setup.synchronous_commit})")
    remote.set_synchronous(primary, [name], setup.synchronous_commit, **kw)
    remote.wait_for(lambda: (remote.replication(primary, **kw).get(name) or {}).get("sync_state")
                    in SYNC_STATES, 30, f"{name} to be synchronous")  # fmt: skip
    mark_sync(setup, primary, kw)


# --- rejoin: make a node a standby of the primary -----------------------------------------------
def rejoin(setup: HaSetup, node: Node, primary: Node, kw: dict, log) -> str:
    """Stop `node`, rewind it from `primary` (else a fresh base backup), start it as a standby;
    return the method used once it streams."""
    data, pb = _data(setup, node), setup.backend_of(primary)
    repl = setup.replication_credential
    superuser = primary.db_credential
    secrets = tuple(c.reveal() for c in (repl, superuser) if c)
    skw = {**kw, "secrets": secrets}
    log(f"stopping {node.name} if it runs")
    remote.pg_stop(node, setup, data, mode="fast", **kw)
    keep = _beside(data, f"dbconsole-conf-{config.slot_name(node.name)}")
    remote.make_dir(node, keep, **kw)
    # A data directory without PG_VERSION was emptied by an earlier attempt that failed before
    # its base backup ended: the copies that attempt kept are the host's own files.
    origin = data if remote.exists(node, f"{data}/PG_VERSION", **kw) else keep
    kept = [f for f in KEEP_FILES if remote.exists(node, f"{origin}/{f}", **kw)]
    for name in kept if origin == data else ():
        run_command(node, ["cp", "-p", "--", f"{data}/{name}", f"{keep}/{name}"], **kw)
    run_command(node, ["rm", "-f", "--", f"{data}/standby.signal", f"{data}/recovery.signal"], **kw)
    rewind_pass = _beside(data, ".dbconsole-rewind.pgpass")
    remote.write_file(
        node, rewind_pass, f"*:*:*:{superuser.username or 'postgres'}:{superuser.reveal()}\n", **skw
    )
    source = make_conninfo(host=pb["address"], port=pb["port"],
                           user=superuser.username or "postgres",
                           dbname="postgres", passfile=rewind_pass, connect_timeout=5)  # fmt: skip
    repl_pass = _beside(data, f"dbconsole-{config.slot_name(node.name)}.pgpass")
    remote.write_file(node, repl_pass, f"*:*:*:{repl.username}:{repl.reveal()}\n", **skw)
    try:
        log(f"pg_rewind {node.name} from {primary.name}")
        try:
            # --restore-target-wal: WAL from before the divergence may be archived already.
            argv = [remote.pg_tool(setup, "pg_rewind"), "-D", data, "--restore-target-wal",
                    f"--source-server={source}"]  # fmt: skip
            out = run_command(node, argv, sudo_user="postgres", timeout=600, **kw)
            method = "pg_rewind" + (
                " (no rewind required)" if "no rewind required" in out.stdout + out.stderr else ""
            )
        except CommandFailed as e:
            log(f"pg_rewind failed ({str(e)[-300:]}); taking a fresh base backup instead")
            # Emptied, not left missing: its parent may be root's (provisioning), where
            # pg_basebackup, run as postgres, could not create it again.
            run_command(node, ["rm", "-rf", "--", data], **kw)
            remote.make_dir(node, data, **kw)
            conninfo = make_conninfo(host=pb["address"], port=pb["port"], user=repl.username,
                                     passfile=repl_pass, application_name=_app(setup, node),
                                     connect_timeout=5)  # fmt: skip
            argv = [remote.pg_tool(setup, "pg_basebackup"), "-D", data, "-X", "stream",
                    "-c", "fast",
                    "--no-password", "-d", conninfo]  # fmt: skip
            run_command(node, argv, sudo_user="postgres", timeout=1800, **kw)
            method = "pg_basebackup"
    finally:
        run_command(node, ["rm", "-f", "--", rewind_pass], check=False, **kw)
    for name in kept:
        run_command(node, ["cp", "-p", "--", f"{keep}/{name}", f"{data}/{name}"], **kw)
    slot = config.slot_name(node.name)
    remote.rows(primary, "clusters:ha-slot-create", {"slot": slot}, **kw)
    conninfo = make_conninfo(host=pb["address"], port=pb["port"], user=repl.username,
                             passfile=repl_pass, application_name=_app(setup, node),
                             connect_timeout=5)  # fmt: skip
    q = config.conf_string
    settings = (f"\n# dbconsole: a standby of {primary.name}\nprimary_conninfo = {q(conninfo)}\n"
                f"primary_slot_name = {q(slot)}\nsynchronous_standby_names = ''\n"
                "recovery_target_timeline = 'latest'\n")  # fmt: skip
    remote.append_file(node, f"{data}/postgresql.auto.conf", settings, **kw)
    run_command(node, ["install", "-m", "600", "-o", "postgres", "-g", "postgres", "/dev/null",
                       f"{data}/standby.signal"], **kw)  # fmt: skip
    log(f"starting {node.name} as a standby of {primary.name}")
    remote.pg_start(node, setup, data, **kw)
    name = _app(setup, node)
    # Slots this node kept from its time as a primary hold WAL on a standby for nobody.
    for backend in setup.backends:
        remote.rows(node, "clusters:ha-slot-drop",
                    {"slot": config.slot_name(backend["application_name"])}, **kw)  # fmt: skip
    remote.wait_for(lambda: (remote.replication(primary, **kw).get(name) or {}).get("state")
                    == "streaming", STREAM_TIMEOUT,
                    f"{name} to stream from {primary.name}")  # fmt: skip
    return method


def _attach(setup: HaSetup, node: Node, kw: dict, log) -> None:
    number = setup.backend_id(node)
    if remote.pool_nodes(setup, **kw).get(number, {}).get("status") in ("up", "waiting"):
        return
    log(f"attaching {node.name} (node {number}) in pgpool-II")
    remote.pcp(setup, "attach_node", "-n", str(number), **kw)
    _wait_pgpool(setup, number, lambda b: b.get("status") in ("up", "waiting"),
                 f"{node.name} attached in pgpool-II", kw)  # fmt: skip


# --- the operations -----------------------------------------------------------------------------
def switchover(setup: HaSetup, standby: Node, *, actor=None, job=None, log=lambda m: None) -> dict:
    """Planned change of primary to `standby` with no commit lost (see the module docstring)."""
    kw = remote.call(actor, job)
    check = switchover_precheck(setup, standby, actor=actor, job=job)
    _require(check)
    primary = fence.registered_primary(setup)
    old_data = _data(setup, primary)
    log(f"stopping {primary.name} cleanly: writes stop")
    remote.pg_stop(primary, setup, old_data, mode="fast", **kw)
    target = remote.checkpoint_lsn(primary, setup, old_data, **kw)
    log(f"waiting until {standby.name} has replayed {primary.name}'s shutdown checkpoint")
    remote.wait_for(lambda: remote.lsn(remote.recovery(standby, **kw)["replay_lsn"]) >= target
                    or not remote.recovery(standby, **kw)["in_recovery"], 60,
                    f"{standby.name} to replay the old primary's last checkpoint")  # fmt: skip
    _promote(setup, primary, standby, kw, log)
    method = rejoin(setup, primary, standby, kw, log)
    _attach(setup, primary, kw, log)
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
    _wait_pgpool(setup, new_id,
                 lambda b: b.get("role") == "primary" and b.get("status") in ("up", "waiting"),
                 f"pgpool-II to see {new.name} as its primary", kw)  # fmt: skip


def failover(setup: HaSetup, candidate: Node | None = None, *, actor=None, job=None,
             log=lambda m: None) -> dict:  # fmt: skip
    """The primary is gone: promote the most advanced synchronous standby (or record the one
    pgpool-II promoted), detach and fence the old primary (see fence.py)."""
    kw = remote.call(actor, job)
    check = failover_precheck(setup, candidate, actor=actor, job=job)
    _require(check)
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
    return {"primary": new.name, "fenced": old.name, "fence_enforced": reached}


def rebuild(setup: HaSetup, node: Node, *, actor=None, job=None, log=lambda m: None) -> dict:
    """A failed, diverged or fenced standby rewound (else re-copied) from the primary,
    streaming, attached in pgpool-II and synchronous again; its fence cleared."""
    kw = remote.call(actor, job)
    check = rebuild_precheck(setup, node, actor=actor, job=job)
    _require(check)
    primary = fence.registered_primary(setup)
    method = rejoin(setup, node, primary, kw, log)
    fence.clear_fence(node, actor=actor, job=job)
    _attach(setup, node, kw, log)
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
    _require(check)
    number = check.facts["node_id"]
    out = remote.pcp(setup, PCP_OPERATIONS[operation], "-n", str(number), **remote.call(actor, job))
    text = (
        f"pcp_{PCP_OPERATIONS[operation]} -n {number} ({node.name}): {out.stdout.strip() or 'done'}"
    )
    remote.entry(audit.HA_PCP, actor=actor, job=job, target=f"node:{node.name}", output=text)
    log(text)
    return text


__all__ = ["AuditEntry", "failover", "pcp_operation", "rebuild", "switchover"]
