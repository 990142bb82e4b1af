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


@job_task("tests.full_flow")
def full_flow(ctx: JobContext) -> dict:
    """Reaches every lab server with stored credentials, as a real job would, and fails once."""
    from dataclasses import replace

    from console.executor import (
        CommandFailed,
        MysqlTarget,
        PgTarget,
        SshTarget,
        run_command,
        run_sql,
    )
    from console.models import Credential

    p = ctx.job.params
    creds = {c.name: c for c in Credential.objects.filter(name__in=p["credentials"])}
    ssh = SshTarget(
        name="lab-ssh",
        host=p["ssh_host"],
        port=p["ssh_port"],
        known_hosts=p["known_hosts"],
        private_key=creds["ssh"].reveal(),
    )
    pg = PgTarget(
        name="lab-pg",
        host=p["pg_host"],
        port=p["pg_port"],
        username=creds["pg"].username,
        password=creds["pg"].reveal(),
        sslmode="disable",
    )
    my = MysqlTarget(
        name="lab-mariadb",
        host=p["my_host"],
        port=p["my_port"],
        username=creds["mysql"].username,
        password=creds["mysql"].reveal(),
    )
    who = run_command(ssh, ["id", "-un"], job=ctx.job).stdout.strip()
    ctx.progress(30)
    pg_user = run_sql(pg, "SELECT current_user", job=ctx.job).rows[0][0]
    my_user = run_sql(my, "SELECT CURRENT_USER()", job=ctx.job).rows[0][0]
    ctx.progress(60)
    # A command that fails and echoes a secret it was given: the failure is audited, redacted.
    try:
        run_command(
            ssh,
            ["sh", "-c", 'echo "$1" >&2; exit 3', "sh", creds["pg"].reveal()],
            job=ctx.job,
            secrets=[creds["pg"].reveal()],
        )
    except CommandFailed:
        ctx.log("the failing command failed, as it should")
    # A wrong password: the server's refusal is recorded, the password is not.
    try:
        run_sql(replace(pg, password=creds["pg"].reveal() + "-wrong"), "SELECT 1", job=ctx.job)
    except Exception as e:  # noqa: BLE001 - any refusal will do; its message is logged below
        ctx.log(f"wrong password refused: {type(e).__name__}")
    ctx.progress(90)
    return {"ssh_user": who, "pg_user": pg_user, "mysql_user": my_user}
