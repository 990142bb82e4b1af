"""Prechecks of the HA operations: what each one reads before it changes anything, and its plan.

Each precheck only reads (every read audited by the executor) and returns its checks and plan
(a Precheck); the pages show it before the typed confirmation (clusters.ha.actions), and the
operation runs it again first and changes nothing when it fails (`require`). Separate from
the operations (clusters.ha.ops) because the pages call the prechecks alone.
"""

from dataclasses import dataclass, field

from clusters.ha import fence, remote
from clusters.ha.rejoin import KEEP_FILES, SYNC_STATES, app_name
from clusters.ha.remote import StepFailed
from clusters.models import HaSetup, Node
from console.executor import ExecutorError


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
        _sync_at_zero(check, setup, primary, standby, kw)
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


def _sync_at_zero(check: Precheck, setup: HaSetup, primary: Node, standby: Node,
                  kw: dict) -> None:  # fmt: skip
    """The standby is synchronous with zero replay lag in the primary's pg_stat_replication
    (polled for up to 3 s)."""

    def in_sync_at_zero():
        row = remote.replication(primary, **kw).get(app_name(setup, standby))
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
        row = remote.replication(primary, **kw).get(app_name(setup, standby)) or {}
        check.add(f"{standby.name} synchronous with zero replay lag", False,
                  f"{row.get('state', 'not streaming')}, {row.get('sync_state', '-')}, "
                  f"replay lag {row.get('replay_lag_bytes', '?')} bytes")  # fmt: skip


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
    chosen, promoted = _new_primary(check, setup, old, candidate, pool, kw)
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


def _new_primary(check: Precheck, setup: HaSetup, old: Node, candidate: Node | None,
                 pool: dict, kw: dict) -> tuple[Node | None, list[Node]]:  # fmt: skip
    """(the standby to promote or already promoted, the standbys that answer as primaries):
    the one pgpool-II's failover_command promoted, else the most advanced synchronous standby
    that answers (only `candidate`, when given)."""
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
    return chosen, promoted


def _known_sync(setup: HaSetup, node: Node, pool: dict) -> bool:
    backend = setup.backend_of(node) or {}
    pool_state = pool.get(setup.backend_id(node), {}).get("replication_sync_state")
    return bool(backend.get("synchronous")) or pool_state in SYNC_STATES


def standby_of_primary(setup: HaSetup, node: Node, check: Precheck, kw: dict,
                       primary_says: str) -> Node | None:  # fmt: skip
    """The checks a rebuild and a follow share: a registered primary, `node` one of its standby
    backends, the primary answering out of recovery (`primary_says` names that check). Returns
    the primary, or None when there is none or `node` is not a standby backend."""
    primary = fence.registered_primary(setup)
    if not check.add("a registered primary", primary is not None, "none"):
        return None
    if not check.add(f"{node.name} is a standby backend", setup.backend_of(node) is not None
                     and node != primary, "not a backend, or the primary itself"):  # fmt: skip
        return None
    p = _state(primary, kw)
    check.add(f"{primary.name} {primary_says}", p.get("in_recovery") is False,
              p.get("error") or "in recovery")  # fmt: skip
    return primary


def rebuild_precheck(setup: HaSetup, node: Node, *, actor=None, job=None) -> Precheck:
    check = Precheck("rebuild")
    kw = remote.call(actor, job)
    primary = standby_of_primary(setup, node, check, kw, "answers as the primary")
    if primary is None:
        return check
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


def require(check: Precheck) -> None:
    """Refuse the operation (StepFailed, nothing changed) when its precheck failed."""
    if not check.ok:
        raise StepFailed(f"{check.operation} refused, nothing changed: {check.failures()}")
