"""Job bodies used by the job tests; a test worker loads them with --include."""

import time
from pathlib import Path

from console.jobs import JobContext, JobFailed, job_task


@job_task("tests.echo")
def echo(ctx: JobContext) -> dict:
    ctx.log(f"echo {ctx.job.params.get('text', '')}")
    ctx.progress(50)
    return {"text": ctx.job.params.get("text", "")}


@job_task("tests.refuse")
def refuse(ctx: JobContext) -> None:
    raise JobFailed("the target refused: nothing was changed")


@job_task("tests.crash")
def crash(ctx: JobContext) -> None:
    raise ZeroDivisionError("a bug")


@job_task("tests.wait_for_file")
def wait_for_file(ctx: JobContext) -> dict:
    """Runs until the file named in params exists (or 120 s pass): a job to kill mid-run."""
    path = Path(ctx.job.params["path"])
    ctx.log("waiting")
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            raise JobFailed("file never appeared")
        time.sleep(0.05)
    return {"seen": True}
