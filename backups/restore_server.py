"""The restored server: how the console reaches it, starting it, and waiting for its recovery.

- `restored_target(plan)`: the node's address and the plan's port, with the cluster primary's
  credential.
- `start_server(plan, ...)`: `pg_ctl start -w` over the restored data directory (on another
  host with its own port, address and socket, no archiving, no synchronous standby:
  `start_options`, whose address `check_listen_address` vets first); a server that does not
  start fails with PostgreSQL's FATAL line.
- `wait_for_recovery(plan, target, timeout, ...)`: polls with a deadline until recovery reached
  the target (promoted, paused or shut down as asked).
- `keep_clone_settings(plan, target, ...)`: ALTER SYSTEM on a promoted clone so a restart keeps
  its own settings.

Steps of backups.restore's job (backups/restore.py), apart because they speak to the restored
PostgreSQL server (pg_ctl, its start log, its recovery state) rather than to the console's
records. A test restore's scratch instance (backups.assurance, backups.actions.scratch) is
started and waited for by the same functions, with what differs as parameters: less time to
start (`SCRATCH_START_TIMEOUT`), and `log_kept=False` since its log goes away with its
directory (a failure then carries the log's last lines rather than pointing to it). Every
command and statement goes through console.executor, audited as audit.BACKUP_COMMAND.
"""

import re
import time
from dataclasses import replace

from psycopg import sql

from backups.restore_checks import PG_BIN, run_as_postgres, server_status
from backups.restore_plan import RestorePlan
from clusters.models import Node
from console import audit
from console.errors import ExpectedFailure
from console.executor import ExecutorError, PgTarget, run_sql

START_TIMEOUT = 300  # pg_ctl start -t
SCRATCH_START_TIMEOUT = 120  # pg_ctl start -t of a test restore's scratch instance
_ADDRESS_RE = re.compile(r"[A-Za-z0-9.:\-]+")


def restored_target(plan: RestorePlan) -> PgTarget:
    """How the console reaches the restored server: the node's address and the plan's port,
    with the cluster primary's credential (the restored server has the cluster's roles)."""
    primary = plan.cluster.nodes.filter(role=Node.Role.PRIMARY).exclude(db_credential=None).first()
    base = (primary or plan.node).pg_target()
    name = plan.node.name if plan.in_place else f"{plan.node.name}:{plan.port}"
    return replace(base, name=name, host=plan.node.address, port=plan.port)


def check_listen_address(node: Node) -> None:
    """The node's address goes into pg_ctl's -o (a string its shell reads): plain characters
    only, checked before anything is touched."""
    if not _ADDRESS_RE.fullmatch(node.address):
        raise ExpectedFailure(f"{node.name}'s address {node.address!r} cannot be listened on.")


def start_options(plan: RestorePlan) -> str:
    """pg_ctl -o for a server on another host: its own port, address and socket directory,
    no archiving into the cluster's repository, no synchronous standby to wait for."""
    return (
        f"-c port={plan.port} -c listen_addresses='{plan.node.address}' "
        f"-c unix_socket_directories='{plan.data_directory}' -c archive_mode=off "
        f"-c synchronous_standby_names=''"
    )


def start_server(
    plan: RestorePlan, *, actor, job, timeout: int = START_TIMEOUT, log_kept: bool = True
) -> None:
    """`pg_ctl start -w -t timeout` over the restored data directory, its log in restore.log
    there (with `start_options` on another host). A server that does not start fails the
    restore with PostgreSQL's FATAL line and where its log is, unless it was asked to shut
    down at the target. With `log_kept=False` (a scratch instance, always promoted, whose
    directory and log are removed afterwards) the failure is pg_ctl's own message followed by
    the log's last lines."""
    argv = [
        f"{PG_BIN}/pg_ctl",
        "-D",
        plan.data_directory,
        "-l",
        f"{plan.data_directory}/restore.log",
    ]
    if not plan.in_place:
        argv += ["-o", start_options(plan)]
    argv += ["-w", "-t", str(timeout), "start"]
    if not log_kept:
        try:
            run_as_postgres(plan, argv, actor=actor, job=job, timeout=timeout + 30, check=True)
        except ExecutorError as exc:
            tail = _start_log(plan, 5, actor=actor, job=job).strip()
            raise ExpectedFailure(f"{exc} Server log: {tail or '(empty)'}") from None
        return
    # A server told to shut down at the target may be gone before pg_ctl sees it ready.
    waits = plan.target.action != "shutdown" or plan.target.kind in ("latest", "timeline")
    started = run_as_postgres(plan, argv, actor=actor, job=job, timeout=timeout + 30)
    if waits and started.exit_code != 0:
        raise ExpectedFailure(
            f"PostgreSQL did not start on {plan.node.name}: "
            f"{_why_it_stopped(plan, actor=actor, job=job)} (its log: "
            f"{plan.data_directory}/restore.log)."
        )


def _server_stopped(plan: RestorePlan, *, actor, job) -> bool:
    return server_status(plan, actor=actor, job=job, job_log=False).exit_code == 3


def _start_log(plan: RestorePlan, lines: int, *, actor, job) -> str:
    """The last `lines` lines of the server's start log (pg_ctl -l)."""
    argv = ["tail", "-n", str(lines), "--", f"{plan.data_directory}/restore.log"]
    return run_as_postgres(plan, argv, actor=actor, job=job).stdout


def _why_it_stopped(plan: RestorePlan, *, actor, job) -> str:
    """PostgreSQL's own FATAL/PANIC lines from the start log (pg_ctl -l)."""
    fatal = [
        line.split(":  ", 1)[-1]
        for line in _start_log(plan, 20, actor=actor, job=job).splitlines()
        if "FATAL:" in line or "PANIC:" in line
    ]
    return "; ".join(fatal) or "see restore.log"


def wait_for_recovery(
    plan: RestorePlan, target: PgTarget, timeout: float, *, actor, job, log_kept: bool = True
) -> str:
    """Poll the restored server (with a deadline) until recovery reached the target and the
    server did what was asked: `promoted` (out of recovery), `paused`, or `shut down`. A
    server that stops on its own while asked to promote or pause failed its recovery (for
    example, the archived WAL ends before the target time): its FATAL line is the message.
    The messages name the server's log unless it is not kept (`log_kept=False`, a scratch
    instance removed afterwards)."""
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
                    where = f" (its log: {plan.data_directory}/restore.log)" if log_kept else ""
                    raise ExpectedFailure(
                        f"PostgreSQL stopped during recovery on {plan.node.name}: "
                        f"{_why_it_stopped(plan, actor=actor, job=job)}{where}."
                    ) from None
                in_recovery, pause = True, ""  # still starting up: try again until the deadline
            if wanted == "promote" and in_recovery is False:
                return "promoted"
            if wanted == "pause" and pause == "paused":
                return "paused"
        if time.monotonic() > deadline:
            where = f"; see {plan.data_directory}/restore.log on {plan.node.name}"
            raise ExpectedFailure(
                f"Recovery did not reach its target within {timeout:.0f} s"
                f"{where if log_kept else ''}."
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
