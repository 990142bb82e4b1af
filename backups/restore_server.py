"""The restored server: how the console reaches it, starting it, and waiting for its recovery.

- `restored_target(plan)`: the node's address and the plan's port, with the cluster primary's
  credential.
- `start_server(plan, ...)`: `pg_ctl start -w` over the restored data directory (on another
  host with its own port, address and socket, no archiving, no synchronous standby:
  `start_options`); a server that does not start fails with PostgreSQL's FATAL line.
- `wait_for_recovery(plan, target, timeout, ...)`: polls with a deadline until recovery reached
  the target (promoted, paused or shut down as asked).
- `keep_clone_settings(plan, target, ...)`: ALTER SYSTEM on a promoted clone so a restart keeps
  its own settings.

Steps of backups.restore's job (backups/restore.py), apart because they speak to the restored
PostgreSQL server (pg_ctl, its start log, its recovery state) rather than to the console's
records. Every command and statement goes through console.executor, audited as
audit.BACKUP_COMMAND.
"""

import time
from dataclasses import replace

from psycopg import sql

from backups.restore_checks import OS_USER, PG_BIN
from backups.restore_plan import RestorePlan
from clusters.models import Node
from console import audit
from console.errors import ExpectedFailure
from console.executor import ExecutorError, PgTarget, run_command, run_sql

START_TIMEOUT = 300  # pg_ctl start -t


def restored_target(plan: RestorePlan) -> PgTarget:
    """How the console reaches the restored server: the node's address and the plan's port,
    with the cluster primary's credential (the restored server has the cluster's roles)."""
    primary = plan.cluster.nodes.filter(role=Node.Role.PRIMARY).exclude(db_credential=None).first()
    base = (primary or plan.node).pg_target()
    name = plan.node.name if plan.in_place else f"{plan.node.name}:{plan.port}"
    return replace(base, name=name, host=plan.node.address, port=plan.port)


def start_options(plan: RestorePlan) -> str:
    """pg_ctl -o for a server on another host: its own port, address and socket directory,
    no archiving into the cluster's repository, no synchronous standby to wait for."""
    return (
        f"-c port={plan.port} -c listen_addresses='{plan.node.address}' "
        f"-c unix_socket_directories='{plan.data_directory}' -c archive_mode=off "
        f"-c synchronous_standby_names=''"
    )


def start_server(plan: RestorePlan, *, actor, job) -> None:
    """`pg_ctl start -w` over the restored data directory, its log in restore.log there (with
    `start_options` on another host). A server that does not start fails the restore with
    PostgreSQL's FATAL line, unless it was asked to shut down at the target."""
    argv = [
        f"{PG_BIN}/pg_ctl",
        "-D",
        plan.data_directory,
        "-l",
        f"{plan.data_directory}/restore.log",
    ]
    if not plan.in_place:
        argv += ["-o", start_options(plan)]
    # A server told to shut down at the target may be gone before pg_ctl sees it ready.
    waits = plan.target.action != "shutdown" or plan.target.kind in ("latest", "timeline")
    started = run_command(
        plan.node,
        argv + ["-w", "-t", str(START_TIMEOUT), "start"],
        actor=actor,
        job=job,
        action=audit.BACKUP_COMMAND,
        sudo_user=OS_USER,
        timeout=START_TIMEOUT + 30,
        check=False,
    )
    if waits and started.exit_code != 0:
        raise ExpectedFailure(
            f"PostgreSQL did not start on {plan.node.name}: "
            f"{_why_it_stopped(plan, actor=actor, job=job)} (its log: "
            f"{plan.data_directory}/restore.log)."
        )


def _server_stopped(plan: RestorePlan, *, actor, job) -> bool:
    status = run_command(
        plan.node,
        [f"{PG_BIN}/pg_ctl", "status", "-D", plan.data_directory],
        actor=actor,
        job=job,
        action=audit.BACKUP_COMMAND,
        sudo_user=OS_USER,
        check=False,
        job_log=False,
    )
    return status.exit_code == 3


def _why_it_stopped(plan: RestorePlan, *, actor, job) -> str:
    """PostgreSQL's own FATAL/PANIC lines from the start log (pg_ctl -l)."""
    tail = run_command(
        plan.node,
        ["tail", "-n", "20", "--", f"{plan.data_directory}/restore.log"],
        actor=actor,
        job=job,
        action=audit.BACKUP_COMMAND,
        sudo_user=OS_USER,
        check=False,
    )
    fatal = [
        line.split(":  ", 1)[-1]
        for line in tail.stdout.splitlines()
        if "FATAL:" in line or "PANIC:" in line
    ]
    return "; ".join(fatal) or "see restore.log"


def wait_for_recovery(plan: RestorePlan, target: PgTarget, timeout: float, *, actor, job) -> str:
    """Poll the restored server (with a deadline) until recovery reached the target and the
    server did what was asked: `promoted` (out of recovery), `paused`, or `shut down`. A
    server that stops on its own while asked to promote or pause failed its recovery (for
    example, the archived WAL ends before the target time): its FATAL line is the message."""
    deadline = time.monotonic() + timeout
    wanted = plan.target.action if plan.target.kind in ("time", "xid") else "promote"
    while True:
        if wanted == "shutdown":
            if _server_stopped(plan, actor=actor, job=job):
                return "shut down"
        else:
            try:
                in_recovery, pause = run_sql(
                    target,
                    "backups:restore-state",
                    actor=actor,
                    job=job,
                    action=audit.BACKUP_COMMAND,
                    job_log=False,
                ).rows[0]
            except ExecutorError:
                if _server_stopped(plan, actor=actor, job=job):
                    raise ExpectedFailure(
                        f"PostgreSQL stopped during recovery on {plan.node.name}: "
                        f"{_why_it_stopped(plan, actor=actor, job=job)} (its log: "
                        f"{plan.data_directory}/restore.log)."
                    ) from None
                in_recovery, pause = True, ""  # still starting up: try again until the deadline
            if wanted == "promote" and in_recovery is False:
                return "promoted"
            if wanted == "pause" and pause == "paused":
                return "paused"
        if time.monotonic() > deadline:
            raise ExpectedFailure(
                f"Recovery did not reach its target within {timeout:.0f} s; "
                f"see {plan.data_directory}/restore.log on {plan.node.name}."
            )
        time.sleep(0.5)  # polling interval; the deadline decides


def keep_clone_settings(plan: RestorePlan, target: PgTarget, *, actor, job) -> None:
    """A clone keeps its own port, address and socket, archives nothing into the cluster's
    repository and waits for no standby after a restart too (ALTER SYSTEM on the clone)."""
    values = {
        "port": str(plan.port),
        "listen_addresses": plan.node.address,
        "unix_socket_directories": plan.data_directory,
        "archive_mode": "off",
        "synchronous_standby_names": "",
    }
    for name, value in values.items():
        statement = sql.SQL("ALTER SYSTEM SET {} = {}").format(
            sql.Identifier(name), sql.Literal(value)
        )
        run_sql(target, statement, actor=actor, job=job, action=audit.BACKUP_COMMAND)
