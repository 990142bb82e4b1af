"""Offboarding a person (issue 6 part 4): lock every personal account they have on every
server, end their sessions, keep their objects, list the functional accounts they own for
hand-over, and verify on every server that each lock holds.

- `start_offboarding(person, *, actor, confirmation)`: a helpdesk user or DBA typed the person's
  uid; creates the run (or approves one waiting for approval) and queues its job. Idempotent:
  a person with a run that is not undone gets that run back, and nothing more happens.
- `request_offboarding(person, *, job)`: the directory sync found the person left; the run
  starts by itself, or waits for approval when PEOPLE_OFFBOARD_APPROVAL is on.
- `run_offboarding(run, *, job)`: the job body; every cluster at once (a bounded
  thread pool, each worker on its own console connection; per account and server one executor
  session, its statements under the executor's timeouts and a SERVER_SECONDS deadline; the
  remote half is offboarding_remote.py). A server that cannot be done leaves the run
  `incomplete` with the reason and a `next_retry_at`; `retry_offboardings` (Celery beat) queues
  it again until done. The steps, the inventory's `locked` and the job's log lines are written
  in batches by the calling thread as the workers finish accounts.
- `undo_offboarding(run, *, actor, confirmation)`: unlock what this offboarding locked (never
  an account that was locked before), audited; the same pool and deadline.

Verification is a read on every database server of the account's cluster (primary and
standbys), after the lock is committed: the lock (PostgreSQL rolcanlogin false, MariaDB ACCOUNT
LOCK) and no session left. It is not a login attempt: the console does not know people's
passwords, and both engines check the lock only after the password (see docs/offboarding.md,
measured on the lab).
"""

import queue
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from console import audit, jobs
from console.errors import ExpectedFailure
from console.executor.redact import redact
from console.models import AuditEntry, Job, JobLogLine
from users.actions import offboarding_remote as remote
from users.models import DatabaseAccount, OffboardingRun, OffboardingStep, Person

JOB_KIND = "users.offboard_person"
WORKERS = 32  # clusters done at once; a server that does not answer delays only its own
SERVER_SECONDS = 30.0  # per account and server: no statement is sent after this deadline
SAVE_SECONDS, SAVE_BATCH = 0.5, 50  # a finished step waits at most this long to be saved
_STEP_FIELDS = ["attempts", "locked_before", "locked_at", "sessions_ended", "verified_at",
                "servers", "evidence", "result", "error"]  # fmt: skip
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
    return list(run.steps.select_related("account__cluster"))


def _in_parallel(groups: list[list], work, save) -> None:
    """`work(item)` for every item of every group: the groups (a cluster's items each) at once,
    by a bounded pool of WORKERS threads that each take the next group until none is left, the
    items of a group one after another. Each thread has its own console connection, closed once
    when it has no group left (closing it after every cluster cost the metadata database a new
    connection per cluster). `save(results)` runs in the calling thread with what has finished,
    every SAVE_SECONDS or SAVE_BATCH results and at the end: the steps are written together
    rather than one UPDATE per account (a step not saved yet when the process dies is redone by
    the retry). An exception in a worker is raised here once the results that did finish are
    saved."""
    todo, done = queue.SimpleQueue(), queue.SimpleQueue()
    for group in groups:
        todo.put(group)

    def worker() -> None:
        try:
            while True:
                try:
                    group = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    done.put([work(item) for item in group])
                except BaseException as e:
                    done.put(e)
                    raise
        finally:
            connection.close()  # the thread's own console connection

    workers, remaining = min(WORKERS, len(groups)), len(groups)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="offboard") as pool:
        for _ in range(workers):
            pool.submit(worker)
        finished, failure, first_at = [], None, 0.0
        while remaining:
            wait = max(0.0, first_at + SAVE_SECONDS - time.monotonic()) if finished else None
            try:
                batch = done.get(timeout=wait)
            except queue.Empty:
                batch = []
            else:
                remaining -= 1
                if isinstance(batch, BaseException):
                    failure, batch = failure or batch, []
            if batch and not finished:
                first_at = time.monotonic()
            finished += batch
            due = len(finished) >= SAVE_BATCH or time.monotonic() >= first_at + SAVE_SECONDS
            if finished and (due or not remaining or failure):
                save(finished)
                finished = []
            if failure is not None:
                raise failure


def _by_cluster(steps: list[OffboardingStep]) -> list[list[OffboardingStep]]:
    groups: dict[int, list[OffboardingStep]] = {}
    for step in steps:
        groups.setdefault(step.account.cluster_id, []).append(step)
    return list(groups.values())


def _save_steps(steps: list[OffboardingStep], fields: list[str]) -> None:
    """UPDATE each step's `fields`, in one executemany (psycopg sends it as one pipeline).
    Django's bulk_update builds a CASE per field with a WHEN per row: 2.3 CPU-seconds of the
    console for 200 steps in the benchmark's profile, more than the whole remote work."""
    if not steps:
        return
    meta, quote = OffboardingStep._meta, connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{quote(c.column)} = %s" for c in columns)
    # Built from the model's own table and column names only, quoted; values are bound.
    query = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608, E501
    rows = [[c.get_db_prep_save(getattr(step, c.attname), connection) for c in columns]
            + [step.pk] for step in steps]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.executemany(query, rows)


def _mirror_locked(outcomes: list[remote.Outcome]) -> None:
    """What the servers said of `locked`, on the inventory rows: one UPDATE per value."""
    for value in (True, False):
        ids = [o.step.account_id for o in outcomes if o.locked is value]
        if ids:
            DatabaseAccount.objects.filter(pk__in=ids).update(locked=value)


def _log_lines(job, log, lines: list[tuple[str, str]]) -> None:
    """The job's log lines of a batch of accounts, in one INSERT (ctx.log writes one each)."""
    if job is None:
        for message, level in lines:
            log(message, level)
        return
    JobLogLine.objects.bulk_create(
        JobLogLine(job_id=job.pk, level=level, message=redact(message)) for message, level in lines
    )


def _offboarded(job, log, totals: dict):
    """The `save` of the offboarding's workers: the steps, the inventory's `locked`, the log."""

    def save(outcomes: list[remote.Outcome]) -> None:
        if not outcomes:
            return
        _save_steps([o.step for o in outcomes], _STEP_FIELDS)
        _mirror_locked(outcomes)
        _log_lines(job, log, [(line, "info" if o.step.result == "verified" else "error")
                              for o in outcomes for line in o.lines])  # fmt: skip
        totals["connections"] += sum(o.connections for o in outcomes)
        totals["statements"] += sum(o.statements for o in outcomes)

    return save


def run_offboarding(run: OffboardingRun, *, job=None, log=None) -> OffboardingRun:
    """The offboarding job: every cluster at once; returns the run, offboarded only when every
    personal account is locked and verified, else incomplete with the reason and a retry
    time. Running it again over a done run does nothing remote. With WORKERS = 1 the very same
    code does one account after another (the benchmark's sequential baseline)."""
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
    todo = [s for s in steps if s.kind == OffboardingStep.Kind.LOCK and s.result != "verified"]
    groups = _by_cluster(todo)
    handover = sum(s.kind == OffboardingStep.Kind.HANDOVER for s in steps)
    log(f"{len(todo)} account(s) to lock on {len(groups)} cluster(s); "
        f"{handover} functional account(s) to hand over")  # fmt: skip
    if todo:
        nodes = remote.cluster_nodes(s.account.cluster_id for s in todo)

        def work(step: OffboardingStep) -> remote.Outcome:
            deadline = time.monotonic() + SERVER_SECONDS
            return remote.offboard_account(step, nodes.get(step.account.cluster_id, []),
                                           job=job, deadline=deadline)  # fmt: skip

        totals = {"connections": 0, "statements": 0}
        _in_parallel(groups, work, _offboarded(job, log, totals))
        log(f"{totals['statements']} statement(s) over {totals['connections']} connection(s) "
            f"to the servers")  # fmt: skip
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
    and mark the run undone, audited. Every cluster at once, as the offboarding (a bounded
    pool; per account one executor session, read then `ALTER … LOGIN` when locked, under a
    SERVER_SECONDS deadline). Refused while its job is queued or running. Safe to retry: an
    undone run is returned as it is; when an unlock fails the run stays as it was, the accounts
    unlocked meanwhile are recorded on their steps, and the refusal names what failed, so the
    next undo unlocks only the rest."""
    run = OffboardingRun.objects.select_related("person").get(pk=run.pk)
    _check_confirmation(run.person, confirmation)
    if run.state == OffboardingRun.State.UNDONE:
        return run
    if run.state in _OPEN:
        raise OffboardingRefused("the offboarding is still queued or running; undo it after")
    steps = list(run.steps.select_related("account__cluster").filter(
        kind=OffboardingStep.Kind.LOCK, locked_before=False, unlocked_at__isnull=True
    ))  # fmt: skip
    errors: list[str] = []
    if steps:
        nodes = remote.cluster_nodes(s.account.cluster_id for s in steps)

        def work(step: OffboardingStep) -> remote.Outcome:
            deadline = time.monotonic() + SERVER_SECONDS
            return remote.unlock_account(step, nodes.get(step.account.cluster_id, []),
                                         actor=actor, source=source, deadline=deadline)  # fmt: skip

        def save(outcomes: list[remote.Outcome]) -> None:
            unlocked = [o for o in outcomes if o.step.unlocked_at is not None]
            _save_steps([o.step for o in unlocked], ["result", "unlocked_at"])
            _mirror_locked(unlocked)
            errors.extend(line for o in outcomes for line in o.lines)

        _in_parallel(_by_cluster(steps), work, save)
    if errors:
        raise OffboardingRefused("could not unlock every account: " + "; ".join(sorted(errors)))
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
