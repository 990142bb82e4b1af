"""The steps of HA operations on hosts, each one executor call (audited there, naming the job).

Files are written atomically: an empty file with the wanted owner and mode is created next to
the target (`install`), filled from stdin (`dd`, so the text is never in an argv or an audit
entry), then renamed over the target. PostgreSQL is driven with its own tools as the postgres OS
user (pg_ctl, pg_controldata, pg_rewind, pg_basebackup); pgpool-II with pcp_* commands run on its
host with the deployment's PCPPASSFILE (`-w`, never a prompt).
"""

import posixpath
import secrets
import time
from collections.abc import Callable, Sequence

from psycopg import sql

from clusters.ha import config
from clusters.models import HaSetup, Node
from clusters.provision.standby import render_sync_names
from console import audit
from console.errors import ExpectedFailure
from console.executor import ExecutorError, run_command, run_sql

LABEL = "ha"
SQL_TIMEOUT = 15
PG_CTL_TIMEOUT = 60


class StepFailed(ExpectedFailure):
    """A step did not reach its goal; the message says which and why."""


def call(actor=None, job=None, **extra) -> dict:
    return {"actor": actor, "job": job, "label": LABEL, **extra}


def wait_for(check: Callable[[], object], timeout: float, what: str, step: float = 0.25):
    """Poll `check` until it returns something true; StepFailed after `timeout` seconds. An
    executor error while polling counts as "not yet" (its last message is reported)."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            found = check()
            if found:
                return found
        except ExecutorError as e:
            last = f": {e}"
        if time.monotonic() > deadline:
            raise StepFailed(f"{what} did not happen within {timeout:g} s{last}")
        time.sleep(step)


# --- files --------------------------------------------------------------------------------------
def write_file(
    node: Node, path: str, text: str, *, owner: str = "postgres", mode: str = "600", **kw
) -> None:
    """Write `text` to `path` on the node's host atomically (same directory, rename)."""
    directory, name = posixpath.split(path)
    temp = f"{directory}/.{name}.dbconsole-{secrets.token_hex(4)}"
    run_command(node, ["install", "-m", mode, "-o", owner, "-g", owner, "/dev/null", temp], **kw)
    try:
        if text:  # (an empty stdin is never closed: dd would wait for it)
            run_command(node, ["dd", f"of={temp}", "status=none"], input=text, **kw)
        run_command(node, ["mv", "-f", "-T", "--", temp, path], **kw)
    except ExecutorError:
        run_command(node, ["rm", "-f", "--", temp], check=False, **kw)
        raise


def append_file(node: Node, path: str, text: str, **kw) -> None:
    """Append `text` to an existing file of the postgres user (owner and mode kept)."""
    argv = ["dd", f"of={path}", "oflag=append", "conv=notrunc", "status=none"]
    run_command(node, argv, input=text, sudo_user="postgres", **kw)


def make_dir(node: Node, path: str, *, owner: str = "postgres", mode: str = "700", **kw) -> None:
    run_command(node, ["install", "-d", "-m", mode, "-o", owner, "-g", owner, path], **kw)


def exists(node: Node, path: str, **kw) -> bool:
    result = run_command(node, ["test", "-e", path], check=False, ok_exits=(0, 1), **kw)
    return result.exit_code == 0


# --- SQL ----------------------------------------------------------------------------------------
def rows(node: Node, query, params=None, **kw) -> list[dict]:
    kw.setdefault("timeout", SQL_TIMEOUT)
    result = run_sql(node, query, params, **kw)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def recovery(node: Node, **kw) -> dict:
    """ha-recovery.sql on the node: in_recovery, receive/replay/current LSN, data_directory."""
    return rows(node, "clusters:ha-recovery", **kw)[0]


def replication(node: Node, **kw) -> dict[str, dict]:
    """The primary's pg_stat_replication by application_name."""
    return {r["application_name"]: r for r in rows(node, "clusters:ha-replication", **kw)}


def sync_names_value(names: Sequence[str]) -> str:
    """synchronous_standby_names waiting for the first of `names` (application names), each
    quoted as provisioning writes them: `FIRST 1 ("sales-db2")` (a bare `-` is a syntax error)."""
    return render_sync_names("FIRST", 1, list(names))


def set_synchronous(node: Node, names: Sequence[str], commit: str, **kw) -> None:
    """ALTER SYSTEM synchronous_standby_names (and synchronous_commit) on `node`, then reload:
    the server waits for the first of `names` (application names, quoted by sync_names_value);
    `names` empty resets both: the server no longer waits for any standby."""
    if isinstance(names, str):
        raise TypeError("set_synchronous takes a list of application names, not a string")
    if names:
        value = sync_names_value(names)
        statements = [
            sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(sql.Literal(value)),
            sql.SQL("ALTER SYSTEM SET synchronous_commit = {}").format(sql.Literal(commit)),
        ]
    else:
        statements = [sql.SQL("ALTER SYSTEM RESET synchronous_standby_names"),
                      sql.SQL("ALTER SYSTEM RESET synchronous_commit")]  # fmt: skip
    for statement in statements:
        run_sql(node, statement, timeout=SQL_TIMEOUT, **kw)
    run_sql(node, "clusters:ha-reload", timeout=SQL_TIMEOUT, **kw)


def lsn(text: str | None) -> int:
    """An LSN ('16/B374D848') as a number, to compare; -1 for none."""
    if not text:
        return -1
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


# --- PostgreSQL on its host ---------------------------------------------------------------------
def pg_tool(setup: HaSetup, name: str) -> str:
    return f"{setup.pg_bin}/{name}"


def pg_log_path(node: Node, data_directory: str) -> str:
    """Where pg_ctl writes the server's output: the node's own log file when it has one (the
    file provisioning made and gave to postgres, or the one discovery found behind the
    server's stderr), else postgres.log beside the data directory. A logging collector's
    file name pattern (`postgresql-%a.log`) is not a file pg_ctl can write to: the default."""
    if node.log_path and posixpath.isabs(node.log_path) and "%" not in node.log_path:
        return node.log_path
    return posixpath.join(posixpath.dirname(data_directory.rstrip("/")), "postgres.log")


def pg_running(node: Node, setup: HaSetup, data: str, **kw) -> bool:
    argv = [pg_tool(setup, "pg_ctl"), "status", "-D", data]
    # pg_ctl status: 0 running, 3 not running, 4 no data directory: each an answer.
    result = run_command(node, argv, sudo_user="postgres", check=False, ok_exits=(0, 3, 4), **kw)
    return result.exit_code == 0


def pg_stop(node: Node, setup: HaSetup, data: str, mode: str = "fast", **kw) -> None:
    """Stop the server (nothing when it is not running); immediate if `mode` did not do it."""
    if not pg_running(node, setup, data, **kw):
        return
    argv = [pg_tool(setup, "pg_ctl"), "stop", "-D", data, "-m", mode, "-w", "-t", "30"]
    result = run_command(node, argv, sudo_user="postgres", check=False, **kw)
    if result.exit_code != 0 and mode != "immediate":
        argv[5] = "immediate"
        run_command(node, argv, sudo_user="postgres", **kw)


def pg_start(node: Node, setup: HaSetup, data: str, **kw) -> None:
    argv = [pg_tool(setup, "pg_ctl"), "start", "-D", data, "-l", pg_log_path(node, data), "-w"]
    argv += ["-t", str(PG_CTL_TIMEOUT)]
    run_command(node, argv, sudo_user="postgres", timeout=PG_CTL_TIMEOUT + 10, **kw)


def checkpoint_lsn(node: Node, setup: HaSetup, data: str, **kw) -> int:
    """The latest checkpoint location of a stopped server (pg_controldata)."""
    out = run_command(node, [pg_tool(setup, "pg_controldata"), "-D", data],
                      sudo_user="postgres", **kw).stdout  # fmt: skip
    for line in out.splitlines():
        if line.startswith("Latest checkpoint location:"):
            return lsn(line.split(":", 1)[1].strip())
    raise StepFailed(f"pg_controldata on {node.name} shows no latest checkpoint location")


# --- pgpool-II through PCP ----------------------------------------------------------------------
def pcp(setup: HaSetup, command: str, *args: str, **kw):
    """Run pcp_<command> on the pgpool-II host, non-interactively (PCPPASSFILE, -w)."""
    p = config.paths(setup.directory)
    user = setup.pcp_credential.username if setup.pcp_credential else "pcpadmin"
    argv = ["env", f"PCPPASSFILE={p['pcppass']}", f"/usr/sbin/pcp_{command}"]
    argv += ["-h", setup.pgpool.address, "-p", str(setup.pcp_port), "-U", user, "-w", *args]
    kw.setdefault("timeout", 30)
    return run_command(setup.pgpool, argv, **kw)


def pool_nodes(setup: HaSetup, **kw) -> dict[int, dict[str, str]]:
    """pcp_node_info of every backend: what pgpool-II itself decided (no client session)."""
    return config.parse_pcp_node_info(pcp(setup, "node_info", **kw).stdout)


def wait_pgpool(setup: HaSetup, number: int, expect: Callable[[dict], bool], what: str, kw):
    """Poll pcp_node_info until backend `number` is as `expect` wants (StepFailed after 45 s)."""
    return wait_for(lambda: expect(pool_nodes(setup, **kw).get(number, {})), 45, what)


def pgpool_primary(setup: HaSetup, **kw) -> int | None:
    for number, backend in pool_nodes(setup, **kw).items():
        if backend.get("role") == "primary" and backend.get("status") in ("up", "waiting"):
            return number
    return None


def entry(
    action: str,
    *,
    actor=None,
    job=None,
    target: str = "",
    output: str = "",
    status=None,
    error: str = "",
) -> None:
    """One ha.* entry for a decision or an outcome (remote calls have their own, by the
    executor). Written on its own, outside any transaction."""
    from console.models import AuditEntry

    source = job.source if job is not None else AuditEntry.Source.SCHEDULE
    audit.append(action, actor=actor, source=source, target=target, output=output,
                 status=status or AuditEntry.Status.SUCCEEDED, error=error,
                 job_id=job.pk if job is not None else None)  # fmt: skip
