"""Offboarding a person (issue 6 part 4): lock every personal account they have on every
server, end their sessions, keep their objects, list the functional accounts they own for
hand-over, and verify on every server that each lock holds.

- `start_offboarding(person, *, actor, confirmation)`: a helpdesk user or DBA typed the person's
  uid; creates the run (or approves one waiting for approval) and queues its job. Idempotent:
  a person with a run that is not undone gets that run back, and nothing more happens.
- `request_offboarding(person, *, job)`: the directory sync found the person left; the run
  starts by itself, or waits for approval when PEOPLE_OFFBOARD_APPROVAL is on.
- `run_offboarding(run, *, job)`: the job body; every cluster at once (a bounded thread pool,
  each worker on its own console connection, each statement under PEOPLE_OFFBOARD_SERVER_TIMEOUT
  through the executor). A server that cannot be done leaves the run `incomplete` with the
  reason and a `next_retry_at`; `retry_offboardings` (Celery beat) queues it again until done.
- `undo_offboarding(run, *, actor, confirmation)`: unlock what this offboarding locked (never
  an account that was locked before), audited.

Verification is an independent read on every database server of the account's cluster
(primary and standbys): the lock (PostgreSQL rolcanlogin false, MariaDB ACCOUNT LOCK) and no
session left. It is not a login attempt: the console does not know people's passwords, and both
engines check the lock only after the password (see docs/offboarding.md, measured on the lab).
"""

import queue
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from clusters.models import Node
from console import audit, jobs
from console.errors import ExpectedFailure
from console.models import AuditEntry, Job
from users import dbops
from users.models import DatabaseAccount, OffboardingRun, OffboardingStep, Person

JOB_KIND = "users.offboard_person"
WORKERS = 32  # clusters done at once; a server that does not answer delays only its own
VERIFY_SECONDS = 10.0  # how long verification waits for a standby to replay / a kill to land
_OPEN = (OffboardingRun.State.REQUESTED, OffboardingRun.State.RUNNING)


class OffboardingRefused(ExpectedFailure):
    """The request cannot be done; the message is for the person who asked (`field` names the
    form field at fault)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def current_run(person: Person) -> OffboardingRun | None:
    """The person's run that is not undone, if any (at most one: a constraint)."""
    return person.offboardings.exclude(state=OffboardingRun.State.UNDONE).first()


def _check_confirmation(person: Person, confirmation: str | None) -> None:
    if (confirmation or "").strip() != person.uid:
        raise OffboardingRefused(
            f"type the person's uid, {person.uid}, to confirm", field="confirmation"
        )


def _user_name(actor) -> str:
    return actor.get_username() if getattr(actor, "is_authenticated", False) else ""


def _queue(run: OffboardingRun, *, actor, source: str) -> None:
    """Queue the run's job (after commit); the caller holds the transaction."""
    job = jobs.enqueue(JOB_KIND, f"Offboard {run.person.uid}", user=actor, source=source,
                       params={"run": run.pk}, target=run.person)  # fmt: skip
    run.state, run.job, run.next_retry_at = OffboardingRun.State.REQUESTED, job, None
    run.save(update_fields=["state", "job", "next_retry_at"])


def start_offboarding(
    person: Person, *, actor, confirmation: str | None, source: str = AuditEntry.Source.UI
) -> OffboardingRun:
    """Offboard `person` on the word of `actor`, who typed the person's uid. Creates the run and
    queues its job, audited; approves a run waiting for approval. Returns the person's current
    run unchanged when there is one already (requested, running, incomplete or offboarded)."""
    _check_confirmation(person, confirmation)
    with transaction.atomic():
        Person.objects.select_for_update().get(pk=person.pk)
        run = current_run(person)
        if run is not None and run.state != OffboardingRun.State.AWAITING_APPROVAL:
            return run
        if run is not None:
            run.approved_by, run.approved_by_name = actor, _user_name(actor)
            run.approved_at = timezone.now()
            run.save(update_fields=["approved_by", "approved_by_name", "approved_at"])
            action, output = audit.OFFBOARDING_APPROVED, "approved; the offboarding job is queued"
        else:
            run = OffboardingRun.objects.create(
                person=person, state=OffboardingRun.State.REQUESTED, source=source,
                requested_by=actor, requested_by_name=_user_name(actor),
            )  # fmt: skip
            action, output = audit.OFFBOARDING_REQUESTED, "requested; the offboarding job is queued"
        _queue(run, actor=actor, source=source)
        audit.append(action, actor=actor, source=source, target=f"person:{person.uid}",
                     output=output, job_id=run.job_id)  # fmt: skip
    return run


def request_offboarding(person: Person, *, job=None) -> OffboardingRun:
    """The directory sync found `person` left: start their offboarding, or record it waiting
    for approval when PEOPLE_OFFBOARD_APPROVAL is on. Runs in the sync's transaction; returns
    the current run when there is one already."""
    run = current_run(person)
    if run is not None:
        return run
    approval = settings.PEOPLE_OFFBOARD_APPROVAL
    state = OffboardingRun.State
    run = OffboardingRun.objects.create(
        person=person, source=AuditEntry.Source.LDAP_SYNC, approval_required=approval,
        state=state.AWAITING_APPROVAL if approval else state.REQUESTED,
        reason=f"the directory sync found them {person.left_reason or 'left'}",
    )  # fmt: skip
    if not approval:
        _queue(run, actor=None, source=AuditEntry.Source.LDAP_SYNC)
    audit.append(
        audit.OFFBOARDING_REQUESTED, source=AuditEntry.Source.LDAP_SYNC,
        target=f"person:{person.uid}", job_id=job.pk if job else None,
        output="requested by the directory sync; "
        + ("waiting for approval" if approval else "the offboarding job is queued"),
    )  # fmt: skip
    return run


# --- the job ---------------------------------------------------------------------------------


def _plan_steps(run: OffboardingRun) -> list[OffboardingStep]:
    """Add a step for every live personal account and owned functional account of the person
    not in the run yet (an import may have found one since the last attempt)."""
    person = run.person
    known = set(run.steps.values_list("account_id", flat=True))
    live = DatabaseAccount.objects.select_related("cluster").filter(gone_at__isnull=True)
    wanted = [(a, OffboardingStep.Kind.LOCK) for a in live.filter(
        person=person, kind=DatabaseAccount.Kind.PERSONAL)]  # fmt: skip
    wanted += [(a, OffboardingStep.Kind.HANDOVER) for a in live.filter(
        owner_person=person, kind=DatabaseAccount.Kind.FUNCTIONAL)]  # fmt: skip
    OffboardingStep.objects.bulk_create(
        OffboardingStep(
            run=run,
            account=a,
            kind=kind,
            cluster_name=a.cluster.name,
            engine=a.cluster.kind,
            login=a.login,
            result="listed" if kind == "handover" else "pending",
        )  # fmt: skip
        for a, kind in wanted
        if a.pk not in known
    )
    return list(run.steps.select_related("account__cluster", "account__node__db_credential"))


def _database_nodes(account: DatabaseAccount, first: Node) -> list[Node]:
    """Every server of the account's cluster where a login could happen: `first`, the one that
    changes it, then the others of its engine (standbys and replicas receive the lock)."""
    service = Node.Service.POSTGRESQL if dbops.is_postgres(account) else Node.Service.MARIADB
    others = account.cluster.nodes.select_related("db_credential").filter(service=service)
    return [first, *others.exclude(pk=first.pk).order_by("name")]


def _verify(step: OffboardingStep, first: Node, *, job) -> tuple[bool, str, list[str]]:
    """Read the lock and the sessions on every server of the cluster; if any session is left,
    end the account's sessions (every server) and read again, waiting up to VERIFY_SECONDS for
    a standby to replay the lock and killed sessions to go. Returns (holds, evidence, servers).

    The reads come after the lock is committed, so a session they do not see cannot start any
    more: terminating only when one is seen ends the same sessions as terminating always, and
    saves a statement per account (the reads stay out of the job's log: one line per account
    is written by run_offboarding)."""
    account = step.account
    lines, servers, holds = [], [], True
    engine_fact = "rolcanlogin" if dbops.is_postgres(account) else "account_locked"
    nodes = _database_nodes(account, first)
    read = {n.pk: dbops.account_state(account, job=job, node=n, job_log=False) for n in nodes}
    if any(s["exists"] and s["sessions"] for s in read.values()):
        step.sessions_ended += dbops.terminate_sessions(account, job=job)
        read = {}  # read again below
    for node in nodes:
        deadline = time.monotonic() + VERIFY_SECONDS
        state = read.get(node.pk)
        while True:
            state = state or dbops.account_state(account, job=job, node=node, job_log=False)
            done = not state["exists"] or (state["locked"] and state["sessions"] == 0)
            if done or time.monotonic() >= deadline:
                break
            time.sleep(0.2)  # polling the server with a deadline, not synchronising on time
            state = None
        servers.append(node.name)
        if not state["exists"]:
            lines.append(f"{node.name}: no such account (nobody can log in as it)")
            continue
        value = (not state["locked"]) if engine_fact == "rolcanlogin" else state["locked"]
        lines.append(f"{node.name}: {engine_fact}={str(value).lower()}, "
                     f"{state['sessions']} session(s)")  # fmt: skip
        holds = holds and state["locked"] and state["sessions"] == 0
    return holds, "; ".join(lines), servers


def _offboard_account(step: OffboardingStep, *, job) -> OffboardingStep:
    """Read, lock, verify (ending the sessions verification finds): each part idempotent, so a
    retry redoes only what is missing. Saves the step; an unreachable server leaves it failed
    with the error. One read serves both `locked_before` and the lock's own check."""
    account, now = step.account, timezone.now()
    step.attempts += 1
    try:
        node = dbops.server_node(account)
        state = dbops.account_state(account, job=job, node=node, job_log=False)
        if step.locked_before is None:
            step.locked_before = bool(state["exists"] and state["locked"])
        # A missing account (dropped meanwhile) is not locked: verification records that
        # nobody can log in as it.
        if state["exists"] and dbops.lock_account(account, job=job, node=node, state=state).changed:
            step.locked_at = now
        holds, step.evidence, servers = _verify(step, node, job=job)
        step.servers = ", ".join(servers)
        step.verified_at = timezone.now()
        step.result = OffboardingStep.Result.VERIFIED if holds else OffboardingStep.Result.FAILED
        step.error = "" if holds else "the lock does not hold on every server: " + step.evidence
    except ExpectedFailure as e:  # a server not reachable or refusing, a cluster with no primary
        step.result, step.error = OffboardingStep.Result.FAILED, str(e)
    step.save()
    verified = step.result == OffboardingStep.Result.VERIFIED
    audit.append(
        audit.OFFBOARDING_ACCOUNT, source=AuditEntry.Source.JOB, job_id=job.pk if job else None,
        target=f"person:{step.run.person.uid}", node=step.servers,
        status=AuditEntry.Status.SUCCEEDED if verified else AuditEntry.Status.FAILED,
        output=f"{step.login} on {step.cluster_name}: {step.sessions_ended} session(s) ended; "
        f"verified: {step.evidence or '-'}",
        error=step.error,
    )  # fmt: skip
    return step


def _offboard_clusters(clusters: queue.SimpleQueue, done: queue.SimpleQueue, *, job) -> None:
    """One worker: takes the next cluster's steps until none is left and puts each cluster's
    done steps (or the exception that stopped it) on `done`. The worker's console connection is
    closed once, when it has no cluster left: closing it after every cluster cost the metadata
    database a new connection per cluster (200 of them for 200 clusters, more of its CPU than
    the offboarding's own writes)."""
    try:
        while True:
            try:
                steps = clusters.get_nowait()
            except queue.Empty:
                return
            try:
                done.put([_offboard_account(step, job=job) for step in steps])
            except BaseException as e:
                done.put(e)
                raise
    finally:
        connection.close()  # the thread's own console connection


def run_offboarding(run: OffboardingRun, *, job=None, log=None) -> OffboardingRun:
    """The offboarding job: every cluster at once; returns the run, offboarded only when every
    personal account is locked and verified, else incomplete with the reason and a retry
    time. Running it again over a done run does nothing remote."""
    log = log or (lambda message, level="info": None)
    with transaction.atomic():
        run = OffboardingRun.objects.select_for_update().select_related("person").get(pk=run.pk)
        if run.state not in _OPEN + (OffboardingRun.State.INCOMPLETE,):
            log(f"the offboarding of {run.person.uid} is {run.get_state_display()}; nothing to do")
            return run
        run.state, run.attempts = OffboardingRun.State.RUNNING, run.attempts + 1
        run.last_attempt_at, run.job = timezone.now(), job or run.job
        run.save(update_fields=["state", "attempts", "last_attempt_at", "job"])
        steps = _plan_steps(run)
    todo: dict[int, list[OffboardingStep]] = {}
    for step in steps:
        if step.kind == OffboardingStep.Kind.LOCK and step.result != "verified":
            todo.setdefault(step.account.cluster_id, []).append(step)
    handover = sum(s.kind == OffboardingStep.Kind.HANDOVER for s in steps)
    log(f"{sum(map(len, todo.values()))} account(s) to lock on {len(todo)} cluster(s); "
        f"{handover} functional account(s) to hand over")  # fmt: skip
    if todo:
        clusters, done = queue.SimpleQueue(), queue.SimpleQueue()
        for group in todo.values():
            clusters.put(group)
        workers = min(WORKERS, len(todo))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="offboard") as pool:
            for _ in range(workers):
                pool.submit(_offboard_clusters, clusters, done, job=job)
            for _ in range(len(todo)):
                steps = done.get()
                if isinstance(steps, BaseException):
                    raise steps
                for step in steps:
                    level = "info" if step.result == "verified" else "error"
                    log(f"{step.login} on {step.cluster_name}: {step.result}; "
                        f"{step.error or step.evidence}", level)  # fmt: skip
    return _conclude(run, job=job)


def _conclude(run: OffboardingRun, *, job) -> OffboardingRun:
    failed = list(run.steps.filter(kind=OffboardingStep.Kind.LOCK).exclude(result="verified"))
    now = timezone.now()
    with transaction.atomic():
        if failed:
            run.state = OffboardingRun.State.INCOMPLETE
            run.reason = "; ".join(f"{s.login} on {s.cluster_name}: {s.error}" for s in failed)
            run.next_retry_at = now + timedelta(seconds=settings.PEOPLE_OFFBOARD_RETRY_SECONDS)
            action, status = audit.OFFBOARDING_INCOMPLETE, AuditEntry.Status.FAILED
        else:
            run.state, run.reason, run.next_retry_at = OffboardingRun.State.OFFBOARDED, "", None
            run.completed_at = now
            action, status = audit.OFFBOARDING_COMPLETED, AuditEntry.Status.SUCCEEDED
        run.save(update_fields=["state", "reason", "next_retry_at", "completed_at"])
        locked = run.steps.filter(kind="lock", result="verified").count()
        audit.append(
            action, source=AuditEntry.Source.JOB, status=status, job_id=job.pk if job else None,
            target=f"person:{run.person.uid}", error=run.reason,
            output=f"{locked} account(s) locked and verified, {len(failed)} not; attempt "
            f"{run.attempts}",
        )  # fmt: skip
    return run


def retry_offboardings() -> list[OffboardingRun]:
    """Celery beat: queue again every incomplete run whose retry time has come, and every
    requested or running run whose job ended without ending it (a worker that died)."""
    now = timezone.now()
    queued = []
    with transaction.atomic():
        due = OffboardingRun.objects.select_for_update(of=("self",)).select_related("person", "job")
        for run in due.filter(state__in=(*_OPEN, OffboardingRun.State.INCOMPLETE)):
            if run.state == OffboardingRun.State.INCOMPLETE:
                if run.next_retry_at and run.next_retry_at > now:
                    continue
            elif run.job is None or run.job.status in (Job.Status.PENDING, Job.Status.RUNNING):
                continue
            _queue(run, actor=None, source=AuditEntry.Source.SCHEDULE)
            queued.append(run)
    return queued


# --- undo ------------------------------------------------------------------------------------


def undo_offboarding(run: OffboardingRun, *, actor, confirmation: str | None,
                     source: str = AuditEntry.Source.UI) -> OffboardingRun:  # fmt: skip
    """Unlock the accounts this offboarding locked (an account locked before it stays locked)
    and mark the run undone, audited. Refused while its job is queued or running. Safe to
    retry: an undone run is returned as it is; an unlock that fails leaves the run as it was,
    with the accounts already unlocked recorded on their steps."""
    run = OffboardingRun.objects.select_related("person").get(pk=run.pk)
    _check_confirmation(run.person, confirmation)
    if run.state == OffboardingRun.State.UNDONE:
        return run
    if run.state in _OPEN:
        raise OffboardingRefused("the offboarding is still queued or running; undo it after")
    steps = run.steps.select_related("account__cluster", "account__node").filter(
        kind=OffboardingStep.Kind.LOCK, locked_before=False, unlocked_at__isnull=True
    )
    errors = []
    for step in steps:
        try:
            dbops.unlock_account(step.account, actor=actor)
        except ExpectedFailure as e:  # not reachable, refused, or dropped meanwhile
            errors.append(f"{step.login} on {step.cluster_name}: {e}")
            continue
        step.result, step.unlocked_at = OffboardingStep.Result.UNLOCKED, timezone.now()
        step.save(update_fields=["result", "unlocked_at"])
    if errors:
        raise OffboardingRefused("could not unlock every account: " + "; ".join(errors))
    with transaction.atomic():
        run.state, run.next_retry_at = OffboardingRun.State.UNDONE, None
        run.undone_by, run.undone_by_name, run.undone_at = actor, _user_name(actor), timezone.now()
        run.save(update_fields=["state", "next_retry_at", "undone_by", "undone_by_name",
                                "undone_at"])  # fmt: skip
        unlocked = run.steps.filter(result=OffboardingStep.Result.UNLOCKED).count()
        audit.append(audit.OFFBOARDING_UNDONE, actor=actor, source=source,
                     target=f"person:{run.person.uid}",
                     output=f"undone: {unlocked} account(s) unlocked")  # fmt: skip
    return run
