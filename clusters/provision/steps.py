"""Long jobs as a list of named steps that a re-run resumes.

A step has a name, a `check` that says whether its work is already done (on the server, read
through the executor) and an `apply` that does it. `run_steps(ctx, steps)` writes the whole plan
as `console.JobStep` rows first (the job page lists it live), then for each step in order: runs
its check and marks it `skipped` when the work is there already, else runs `apply`, runs the
check again to see that it took, and marks it `done`. The first step that fails stops the job:
it is marked `failed` with the reason, the later ones stay `pending`, and the job fails with a
message naming the step, the reason and what was already done. Re-running the job (a new job
with the same parameters, `console.jobs.rerun`) skips the finished steps by their checks and
carries on from the failed one.

    steps = [
        Step("Install postgresql-15", check=package_installed, apply=install_package),
        Step("Start the server", check=server_running, apply=start_server),
    ]
    run_steps(ctx, steps)

`ctx` is whatever the job body hands over: a `console.jobs.JobContext`, or an object of the
caller's that has its `job`, `log(message, level)` and `progress(percent)` (and carries the state
steps share, such as the OS family a first step detected). `check(ctx)` returns something falsy
when the work is still to do, and True or a short text saying what it found when it is done;
`apply(ctx)` returns a short text saying what it did (or None). Both raise an ExpectedFailure
(ExecutorError, JobFailed, StepFailed) with a message for a person when they cannot go on; any
other exception is a bug: the step is marked failed and the job ends `errored`.

Steps talk to servers through the executor, which refuses to run inside a database transaction:
run_steps writes each row in autocommit, never around a step.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Max
from django.utils import timezone

from console.errors import ExpectedFailure
from console.executor.redact import cut, redact
from console.jobs import JobFailed
from console.models import JobLogLine, JobStep

DETAIL_LIMIT = 2000


class StepFailed(ExpectedFailure):
    """Raised by a step's check or apply: the step cannot be done; the message says why."""


@dataclass(frozen=True)
class Step:
    """One named piece of a long job. `check` None means: always run `apply` (a read, such as
    detecting the OS, that later steps depend on). `verify` False skips the check after apply
    (for a check that only a later step can make true)."""

    name: str
    check: Callable[[Any], Any] | None
    apply: Callable[[Any], str | None]
    verify: bool = True


def tally(outcomes) -> dict[str, int]:
    """How many steps ended in each status: a job's short result."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


@dataclass(frozen=True)
class StepOutcome:
    name: str
    status: str
    detail: str

    def as_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def _detail(value: Any, default: str) -> str:
    if isinstance(value, str) and value.strip():
        return cut(redact(value.strip()), DETAIL_LIMIT)
    return default


def _plan(job, steps: Sequence[Step]) -> list[JobStep]:
    """Write the steps as pending rows after any the job already has (a body may run several
    step lists one after the other; each keeps its place on the page)."""
    start = (job.steps.aggregate(m=Max("position"))["m"] or 0) + 1
    return JobStep.objects.bulk_create(
        JobStep(job=job, position=start + i, name=step.name[:200]) for i, step in enumerate(steps)
    )


def _end(row: JobStep, status: str, detail: str) -> None:
    row.status, row.detail, row.ended = status, detail, timezone.now()
    JobStep.objects.filter(pk=row.pk).update(status=status, detail=detail, ended=row.ended)


def _summary(outcomes: list[StepOutcome]) -> str:
    finished = [
        o.name for o in outcomes if o.status in (JobStep.Status.DONE, JobStep.Status.SKIPPED)
    ]
    return "; ".join(finished) if finished else "nothing"


def run_steps(
    ctx, steps: Sequence[Step], *, progress: tuple[int, int] = (0, 100)
) -> list[StepOutcome]:
    """Run `steps` in order as described in the module docstring; returns each step's outcome.

    Raises JobFailed at the first step that fails (ExpectedFailure), naming it, the reason and
    what was already done; re-raises anything else after marking the step failed.
    """
    rows = _plan(ctx.job, steps)
    outcomes: list[StepOutcome] = []
    low, high = progress
    total = len(steps)
    for index, (step, row) in enumerate(zip(steps, rows, strict=True)):
        label = f"step {index + 1}/{total} ({step.name})"
        row.started = timezone.now()
        JobStep.objects.filter(pk=row.pk).update(status=JobStep.Status.RUNNING, started=row.started)
        try:
            found = step.check(ctx) if step.check is not None else None
            if found:
                detail = _detail(found, "already done")
                _end(row, JobStep.Status.SKIPPED, detail)
                ctx.log(f"{label}: already done, skipped: {detail}")
            else:
                ctx.log(f"{label}: running")
                did = step.apply(ctx)
                if step.check is not None and step.verify and not step.check(ctx):
                    raise StepFailed("it ran, but its check still finds the work not done")
                detail = _detail(did, "done")
                _end(row, JobStep.Status.DONE, detail)
                ctx.log(f"{label}: done: {detail}")
        except ExpectedFailure as e:
            reason = _detail(str(e), type(e).__name__)
            _end(row, JobStep.Status.FAILED, reason)
            done = _summary(outcomes)
            ctx.log(f"{label} failed: {reason}", JobLogLine.Level.ERROR)
            raise JobFailed(
                f'Step {index + 1} "{step.name}" failed: {reason}\n'
                f"Already done: {done}.\n"
                "Fix the cause and re-run the job: finished steps are checked and skipped."
            ) from e
        except Exception as e:
            _end(row, JobStep.Status.FAILED, f"internal error: {type(e).__name__}")
            raise
        outcomes.append(StepOutcome(step.name, row.status, row.detail))
        ctx.progress(low + (high - low) * (index + 1) // max(total, 1))
    return outcomes
