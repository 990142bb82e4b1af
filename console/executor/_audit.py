"""Intent and outcome: the audit pair every remote call of the executor writes.

`remote_call()` is the one place ssh.py and sql.py record what they do:

    with remote_call(action=..., node=..., command=..., secrets=..., ...) as call:
        ... touch the host, then set call.exit_code / call.output / call.failed(...)
    result = ...(audit_id=call.outcome_id)

It refuses to start inside a database transaction, appends the `started` entry before the body
runs, and appends the outcome entry (pointing at it) in `finally`, also when the body raises.
Both entries, and the job log lines, are redacted with the call's secrets.
"""

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from console import audit
from console.executor.redact import cut, redact
from console.models import AuditEntry, JobLogLine


class RemoteCallInTransaction(RuntimeError):
    """A remote call was made inside a database transaction: a bug in the caller."""


@dataclass
class Call:
    """What the body of `remote_call` reports; read back `outcome_id` after the block."""

    secrets: tuple[str, ...]
    intent_id: int
    exit_code: int | None = None
    output: str = ""
    error: str = ""
    failed: bool = False
    outcome_id: int | None = None
    started: float = field(default_factory=time.monotonic)
    recorded_ms: int | None = None  # the duration written in the outcome entry
    keep_output: bool = True  # False: the outcome records the output's size, not its text

    def fail(self, error: str) -> None:
        self.failed = True
        self.error = error

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    @property
    def duration_ms(self) -> int:
        if self.recorded_ms is not None:
            return self.recorded_ms
        return int((time.monotonic() - self.started) * 1000)


def ensure_outside_transaction() -> None:
    """Raise unless the current thread's database connection is in autocommit.

    Holding a transaction across a remote call keeps locks for as long as the host takes, and
    a rollback would erase the record of a change the host already made.
    """
    if connection.in_atomic_block:
        raise RemoteCallInTransaction("remote calls must not run inside a database transaction")


def _job_log(job, message: str, level: str = JobLogLine.Level.INFO) -> None:
    if job is not None:
        JobLogLine.objects.create(job_id=job.pk, level=level, message=message)


@contextmanager
def remote_call(
    *,
    action: str,
    node: str,
    command: str,
    actor=None,
    job=None,
    source: str | None = None,
    label: str = "",
    secrets: Iterable[str] = (),
    keep_output: bool = True,
    job_log: bool = True,
) -> Iterator[Call]:
    """Record intent, run the body, record its outcome; see the module docstring.

    `job_log=False` keeps the call out of the job's log (its audit entries still name the job),
    for jobs that make calls by the hundred, like the collector's polls."""
    ensure_outside_transaction()
    secrets = tuple(s for s in secrets if s)
    if actor is None and job is not None:
        actor = job.user
    source = AuditEntry.Source.JOB if job is not None else (source or AuditEntry.Source.CLI)
    command = redact(command, secrets)
    common = {
        "actor": actor,
        "actor_name": job.user_name if actor is None and job is not None else None,
        "source": source,
        "target": label or node,
        "node": node,
        "command": command,
        "job_id": job.pk if job is not None else None,
    }
    intent = audit.append(action, status=AuditEntry.Status.STARTED, **common)
    log_job = job if job_log else None
    _job_log(log_job, f"[{node}] $ {command}")
    call = Call(secrets=secrets, intent_id=intent.pk, keep_output=keep_output)
    try:
        yield call
    except BaseException as e:
        if not call.failed:
            call.fail(_describe(e))
        raise
    finally:
        _record_outcome(action, call, common, log_job)


def _describe(exc: BaseException) -> str:
    from console.executor import ExecutorError

    if isinstance(exc, ExecutorError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def _record_outcome(action: str, call: Call, common: dict, job) -> None:
    limit = settings.EXECUTOR_OUTPUT_LIMIT
    call.recorded_ms = call.duration_ms
    error = cut(call.redact(call.error), limit)
    status = AuditEntry.Status.FAILED if call.failed else AuditEntry.Status.SUCCEEDED
    outcome = audit.append(
        action,
        status=status,
        exit_code=call.exit_code,
        output=(
            cut(call.redact(call.output), limit)
            if call.keep_output
            else f"({len(call.output)} characters of output, not kept)"
        ),
        error=error,
        duration_ms=call.duration_ms,
        intent_id=call.intent_id,
        **common,
    )
    call.outcome_id = outcome.pk
    summary = f"[{common['node']}] {status}"
    if call.exit_code is not None:
        summary += f", exit code {call.exit_code}"
        if call.exit_code != 0 and not call.failed:
            summary += " (an expected answer)"  # run_command's ok_exits
    summary += f", {call.duration_ms} ms"
    if error:
        summary += f": {error}"
    _job_log(job, summary, JobLogLine.Level.ERROR if call.failed else JobLogLine.Level.INFO)
