"""The remote half of an offboarding and of its undo: one account, on the servers of its cluster,
over one connection per server (console.executor.session), every statement audited.

Per personal account, on the server that changes it (PostgreSQL: the primary; MariaDB: the
account's server), in one session:

    read the account          -> locked_before, and whether to lock
    ALTER ROLE … NOLOGIN      (MariaDB: ALTER USER … ACCOUNT LOCK), only when not locked
    read it again             -> the verification; when it sees sessions (the lock is
                                 committed, so no new one can start), end them and read again

then, on every other server of the cluster where a login could happen (PostgreSQL standbys), in
a session of its own: read until the lock has replayed and no session is left (ending the
sessions it sees once the lock is there), for up to VERIFY_SECONDS.

Before, each of these statements opened its own connection (three per account, and more with
standbys): for a PostgreSQL account that is three backend forks and three SCRAM exchanges, whose
client side (PBKDF2, 4096 rounds) runs in the console with the GIL held. Same statements, same
audit entries, one connection per server.

Nothing here writes to the console's database but the executor's audit entries: the caller
saves the steps and mirrors `locked` on the accounts, in batches (see offboarding.py).
"""

import time
from dataclasses import dataclass, field

from django.utils import timezone
from psycopg import sql

from clusters.models import Node
from console import audit
from console.errors import ExpectedFailure
from console.executor import SqlFailed
from console.executor.session import SqlSession, sql_session
from console.models import AuditEntry
from users import dbops
from users.models import DatabaseAccount, OffboardingStep

VERIFY_SECONDS = 10.0  # how long verification waits for a standby to replay / a kill to land
POLL_SECONDS = 0.2
MYSQL_UNKNOWN_THREAD = 1094


@dataclass
class Outcome:
    """What the remote work did to one step's account, for the caller's batched writes."""

    step: OffboardingStep
    locked: bool | None = None  # the account's `locked` to mirror, when it was read or changed
    connections: int = 0
    statements: int = 0
    lines: list[str] = field(default_factory=list)  # for the job's log


# --- the cluster's servers, loaded once for a whole run ----------------------------------------


def cluster_nodes(cluster_ids) -> dict[int, list[Node]]:
    """The database servers of these clusters, with their credentials, in one query."""
    nodes: dict[int, list[Node]] = {}
    services = (Node.Service.POSTGRESQL, Node.Service.MARIADB)
    query = Node.objects.select_related("db_credential").filter(
        cluster_id__in=set(cluster_ids), service__in=services
    )
    for node in query.order_by("name"):
        nodes.setdefault(node.cluster_id, []).append(node)
    return nodes


def server_node(account: DatabaseAccount, nodes: list[Node]) -> Node:
    """dbops.server_node, from the cluster's nodes already loaded: PostgreSQL the primary;
    MariaDB the account's node, else the primary, else the only server."""
    cluster = account.cluster
    if dbops.is_postgres(account):
        for node in nodes:
            if node.service == Node.Service.POSTGRESQL and node.role == Node.Role.PRIMARY:
                return node
        raise ExpectedFailure(f"cluster {cluster.name} has no primary to change roles on")
    mine = [n for n in nodes if n.service == Node.Service.MARIADB]
    for node in mine:
        if node.pk == account.node_id:
            return node
    primary = [n for n in mine if n.role == Node.Role.PRIMARY]
    if primary:
        return primary[0]
    if len(mine) == 1:
        return mine[0]
    raise ExpectedFailure(f"cluster {cluster.name} has no MariaDB primary to change accounts on")


def login_nodes(account: DatabaseAccount, first: Node, nodes: list[Node]) -> list[Node]:
    """Every server of the cluster where a login could happen: `first`, then the others of its
    engine (standbys and replicas receive the lock), by name."""
    service = Node.Service.POSTGRESQL if dbops.is_postgres(account) else Node.Service.MARIADB
    return [first, *(n for n in nodes if n.service == service and n.pk != first.pk)]


# --- statements ---------------------------------------------------------------------------------


def _target(account: DatabaseAccount, node: Node):
    return node.pg_target() if dbops.is_postgres(account) else node.mysql_target()


def read_state(s: SqlSession, account: DatabaseAccount) -> dict:
    """{"exists", "locked", "sessions"} as the server has them now (dbops.account_state's
    queries; audited, kept out of the job's log)."""
    kw = {"action": audit.ACCOUNT_STATE_READ, "label": account.login, "job_log": False}
    if dbops.is_postgres(account):
        dbops.check_account_name(account.name, "postgresql")
        result = s.run("users:account-pg-state", {"role": account.name}, **kw)
        if not result.rows:
            return {"exists": False, "locked": False, "sessions": 0}
        row = dict(zip(result.columns, result.rows[0], strict=True))
        return {"exists": True, "locked": not row["can_login"], "sessions": int(row["sessions"])}
    dbops.mysql_account(account)  # refuses a name the helper cannot quote, before anything is sent
    host = account.host or "%"
    result = s.run("users:account-mariadb-state", (account.name, host, account.name, host), **kw)
    if not result.rows:
        return {"exists": False, "locked": False, "sessions": 0}
    row = dict(zip(result.columns, result.rows[0], strict=True))
    return {"exists": True, "locked": bool(row["locked"]), "sessions": int(row["sessions"])}


def set_lock(s: SqlSession, account: DatabaseAccount, lock: bool) -> None:
    """The statement of dbops.lock_account / unlock_account (identifiers composed, never
    pasted). Audited; kept out of the job's log, whose line for the account says what changed
    (two lines per statement, 400 INSERTs for 200 accounts, were a sixth of the job's CPU)."""
    kw = {"action": audit.ACCOUNT_LOCKED if lock else audit.ACCOUNT_UNLOCKED,
          "label": account.login, "job_log": False}  # fmt: skip
    if dbops.is_postgres(account):
        query = sql.SQL("ALTER ROLE {} {}").format(
            dbops.role_identifier(account), sql.SQL("NOLOGIN" if lock else "LOGIN")
        )
        s.run(query, **kw)
    else:
        clause = "ACCOUNT LOCK" if lock else "ACCOUNT UNLOCK"
        s.run(f"ALTER USER {dbops.mysql_account(account)} {clause}", **kw)


def end_sessions(s: SqlSession, account: DatabaseAccount, node: Node) -> int:
    """End the account's sessions on this server (dbops.terminate_sessions' statements, on the
    session's server only); returns how many ended (the job's log line of the account says it)."""
    kw = {"action": audit.ACCOUNT_SESSIONS_TERMINATED, "label": account.login, "job_log": False}
    if dbops.is_postgres(account):
        old = node.version_num and node.version_num < 140000
        name = "users:account-pg-terminate-nowait" if old else "users:account-pg-terminate"
        result = s.run(name, {"role": account.name}, **kw)
        return sum(1 for _pid, ended in result.rows if ended)
    result = s.run("users:account-mariadb-sessions", (account.name, account.host or "%"), **kw)
    ended = 0
    for thread_id, _client in result.rows:
        try:
            s.run("KILL CONNECTION %s", (int(thread_id),), **kw)
            ended += 1
        except SqlFailed as e:
            if f"error {MYSQL_UNKNOWN_THREAD}:" not in str(e):
                raise  # otherwise it ended meanwhile: nothing to do
    return ended


def verify_on(s: SqlSession, account: DatabaseAccount, node: Node, state: dict | None = None):
    """Read until the lock holds on this server with no session left, ending the sessions a read
    sees once the lock is there (none can start after it), for up to VERIFY_SECONDS (a standby
    replaying the lock, a killed session going). Returns (state, sessions ended)."""
    deadline, ended = time.monotonic() + VERIFY_SECONDS, 0
    while True:
        state = state or read_state(s, account)
        if not state["exists"] or (state["locked"] and state["sessions"] == 0):
            return state, ended
        if time.monotonic() >= deadline:
            return state, ended
        if state["locked"]:
            ended += end_sessions(s, account, node)
        else:
            time.sleep(POLL_SECONDS)  # polling a standby with a deadline, not synchronising
        state = None


def _evidence(account: DatabaseAccount, node: Node, state: dict) -> str:
    if not state["exists"]:
        return f"{node.name}: no such account (nobody can log in as it)"
    if dbops.is_postgres(account):
        return f"{node.name}: rolcanlogin={str(not state['locked']).lower()}, " \
               f"{state['sessions']} session(s)"  # fmt: skip
    return f"{node.name}: account_locked={str(state['locked']).lower()}, " \
           f"{state['sessions']} session(s)"  # fmt: skip


# --- one account --------------------------------------------------------------------------------


def offboard_account(step: OffboardingStep, nodes: list[Node], *, job, deadline: float) -> Outcome:
    """Read, lock, verify one personal account (ending the sessions verification finds) on the
    servers of its cluster, one session each. Each part is idempotent, so a retry redoes only
    what is missing. Sets the step's fields (the caller saves them); a server that cannot be
    reached or answers too late leaves the step failed with the error."""
    account, out = step.account, Outcome(step)
    step.attempts += 1
    sessions: list[SqlSession] = []

    def session(node: Node) -> SqlSession:
        sessions.append(SqlSession(_target(account, node), job=job, deadline=deadline))
        return sessions[-1]

    try:
        first = server_node(account, nodes)
        s = session(first)
        state = read_state(s, account)
        if step.locked_before is None:
            step.locked_before = bool(state["exists"] and state["locked"])
        out.locked = state["locked"] if state["exists"] else None
        changed = False
        if state["exists"] and not state["locked"]:
            set_lock(s, account, True)
            step.locked_at, out.locked, changed = timezone.now(), True, True
        evidence, servers, holds, ended = [], [], True, 0
        for node in login_nodes(account, first, nodes):
            state, n = verify_on(s if node is first else session(node), account, node)
            ended += n
            servers.append(node.name)
            evidence.append(_evidence(account, node, state))
            holds = holds and (not state["exists"] or (state["locked"] and not state["sessions"]))
        step.sessions_ended += ended
        step.evidence, step.servers = "; ".join(evidence), ", ".join(servers)
        step.verified_at = timezone.now()
        step.result = OffboardingStep.Result.VERIFIED if holds else OffboardingStep.Result.FAILED
        step.error = "" if holds else "the lock does not hold on every server: " + step.evidence
        did = (f"locked on {first.name}" if changed else "already locked") \
            + (f", {ended} session(s) ended" if ended else "")  # fmt: skip
    except ExpectedFailure as e:  # a server not reachable or refusing, a cluster with no primary
        step.result, step.error, did = OffboardingStep.Result.FAILED, str(e), "not done"
    finally:
        for s in sessions:
            s.close()
            out.connections += s.connections
            out.statements += s.statements
    verified = step.result == OffboardingStep.Result.VERIFIED
    out.lines.append(f"{step.login} on {step.cluster_name}: {step.result} ({did}); "
                     f"{step.error or step.evidence}")  # fmt: skip
    audit.append(
        audit.OFFBOARDING_ACCOUNT, source=AuditEntry.Source.JOB,
        job_id=job.pk if job else None, target=f"person:{step.run.person.uid}", node=step.servers,
        status=AuditEntry.Status.SUCCEEDED if verified else AuditEntry.Status.FAILED,
        output=f"{step.login} on {step.cluster_name}: {step.sessions_ended} session(s) ended; "
        f"verified: {step.evidence or '-'}",
        error=step.error,
    )  # fmt: skip
    return out


def unlock_account(step: OffboardingStep, nodes: list[Node], *, actor, source,
                   deadline: float) -> Outcome:  # fmt: skip
    """Undo one step's lock in one session: read, and `ALTER ROLE … LOGIN` (MariaDB `ACCOUNT
    UNLOCK`) when it is locked; an account already unlocked is left alone. Sets `result` and
    `unlocked_at` on success, else puts the error in `lines`; the caller saves."""
    account, out = step.account, Outcome(step)
    try:
        node = server_node(account, nodes)
        with sql_session(_target(account, node), actor=actor, source=source,
                         deadline=deadline) as s:  # fmt: skip
            state = read_state(s, account)
            if not state["exists"]:
                raise dbops.AccountMissing(f"{account.login} does not exist on {node.name}")
            if state["locked"]:
                set_lock(s, account, False)
            out.connections, out.statements = s.connections, s.statements
        out.locked = False
        step.result, step.unlocked_at = OffboardingStep.Result.UNLOCKED, timezone.now()
    except ExpectedFailure as e:  # not reachable, refused, or dropped meanwhile
        out.lines.append(f"{step.login} on {step.cluster_name}: {e}")
    return out
