"""Making a node a synchronous standby of the primary: rejoin (stop it, rewind it from the
primary, else a fresh base backup, keeping its own host files; start it as a standby and wait
until it streams), attach it in pgpool-II, and make the primary wait for it synchronously.

The second half of a switchover (the old primary) and the whole of a rebuild (a failed,
diverged or fenced standby) in clusters.ha.ops. Separate because it is the longest series of
steps on one host, with its own fallback (pg_rewind refused: a fresh pg_basebackup into the
emptied data directory) and its own retry (an interrupted base backup: the kept copies are the
host's files).
"""

import posixpath

from psycopg.conninfo import make_conninfo

from clusters.ha import config, remote
from clusters.ha.remote import StepFailed
from clusters.models import HaSetup, Node
from clusters.provision.pg import CONF_NAME
from console.executor import CommandFailed, run_command

# A server's host-specific configuration files: pg_rewind copies the source's over them and a
# fresh pg_basebackup brings the source's, so rejoin keeps them aside and puts them back.
# dbconsole.conf is provisioning's include file (listen_addresses, port, socket directory).
KEEP_FILES = ("postgresql.conf", "pg_hba.conf", "pg_ident.conf", CONF_NAME)
STREAM_TIMEOUT = 90.0
SYNC_STATES = ("sync", "quorum")


def app_name(setup: HaSetup, node: Node) -> str:
    """The node's application_name, as its backend records it (pg_stat_replication's name)."""
    return setup.backend_of(node)["application_name"]


def data_dir(setup: HaSetup, node: Node) -> str:
    data = setup.backend_of(node)["data_directory"]
    if not data or not posixpath.isabs(data) or data.rstrip("/").count("/") < 2:
        raise StepFailed(f"no safe data directory recorded for {node.name}: {data!r}")
    return data.rstrip("/")


def _beside(data: str, name: str) -> str:
    return posixpath.join(posixpath.dirname(data), name)


# --- rejoin: make a node a standby of the primary -----------------------------------------------
def rejoin(setup: HaSetup, node: Node, primary: Node, kw: dict, log) -> str:
    """Stop `node`, rewind it from `primary` (else a fresh base backup), start it as a standby;
    return the method used once it streams."""
    data, pb = data_dir(setup, node), setup.backend_of(primary)
    repl = setup.replication_credential
    superuser = primary.db_credential
    secrets = tuple(c.reveal() for c in (repl, superuser) if c)
    skw = {**kw, "secrets": secrets}
    log(f"stopping {node.name} if it runs")
    remote.pg_stop(node, setup, data, mode="fast", **kw)
    keep, kept = _set_aside(node, data, kw)
    run_command(node, ["rm", "-f", "--", f"{data}/standby.signal", f"{data}/recovery.signal"], **kw)
    rewind_pass = _beside(data, ".dbconsole-rewind.pgpass")
    remote.write_file(
        node, rewind_pass, f"*:*:*:{superuser.username or 'postgres'}:{superuser.reveal()}\n", **skw
    )
    source = make_conninfo(host=pb["address"], port=pb["port"],
                           user=superuser.username or "postgres",
                           dbname="postgres", passfile=rewind_pass, connect_timeout=5)  # fmt: skip
    repl_pass = _beside(data, f"dbconsole-{config.slot_name(node.name)}.pgpass")
    remote.write_file(node, repl_pass, f"*:*:*:{repl.username}:{repl.reveal()}\n", **skw)
    # The base backup's connection and the standby's primary_conninfo.
    conninfo = make_conninfo(host=pb["address"], port=pb["port"], user=repl.username,
                             passfile=repl_pass, application_name=app_name(setup, node),
                             connect_timeout=5)  # fmt: skip
    try:
        log(f"pg_rewind {node.name} from {primary.name}")
        method = _rewind_or_copy(setup, node, data, source, conninfo, kw, log)
    finally:
        run_command(node, ["rm", "-f", "--", rewind_pass], check=False, **kw)
    for name in kept:
        run_command(node, ["cp", "-p", "--", f"{keep}/{name}", f"{data}/{name}"], **kw)
    _start_standby(setup, node, primary, data, conninfo, kw, log)
    return method


def _set_aside(node: Node, data: str, kw: dict) -> tuple[str, list[str]]:
    """Copy the host's own files (KEEP_FILES) into dbconsole-conf-<node>/ beside the data
    directory; return that directory and the files kept there."""
    keep = _beside(data, f"dbconsole-conf-{config.slot_name(node.name)}")
    remote.make_dir(node, keep, **kw)
    # A data directory without PG_VERSION was emptied by an earlier attempt that failed before
    # its base backup ended: the copies that attempt kept are the host's own files.
    origin = data if remote.exists(node, f"{data}/PG_VERSION", **kw) else keep
    kept = [f for f in KEEP_FILES if remote.exists(node, f"{origin}/{f}", **kw)]
    for name in kept if origin == data else ():
        run_command(node, ["cp", "-p", "--", f"{data}/{name}", f"{keep}/{name}"], **kw)
    return keep, kept


def _rewind_or_copy(setup: HaSetup, node: Node, data: str, source: str, conninfo: str,
                    kw: dict, log) -> str:  # fmt: skip
    """pg_rewind from `source`; when it fails, a fresh pg_basebackup over `conninfo` into the
    emptied data directory. Return the method used."""
    try:
        # --restore-target-wal: WAL from before the divergence may be archived already.
        argv = [remote.pg_tool(setup, "pg_rewind"), "-D", data, "--restore-target-wal",
                f"--source-server={source}"]  # fmt: skip
        out = run_command(node, argv, sudo_user="postgres", timeout=600, **kw)
        method = "pg_rewind" + (
            " (no rewind required)" if "no rewind required" in out.stdout + out.stderr else ""
        )
    except CommandFailed as e:
        log(f"pg_rewind failed ({str(e)[-300:]}); taking a fresh base backup instead")
        # Emptied, not left missing: its parent may be root's (provisioning), where
        # pg_basebackup, run as postgres, could not create it again.
        run_command(node, ["rm", "-rf", "--", data], **kw)
        remote.make_dir(node, data, **kw)
        argv = [remote.pg_tool(setup, "pg_basebackup"), "-D", data, "-X", "stream",
                "-c", "fast",
                "--no-password", "-d", conninfo]  # fmt: skip
        run_command(node, argv, sudo_user="postgres", timeout=1800, **kw)
        method = "pg_basebackup"
    return method


def _start_standby(setup: HaSetup, node: Node, primary: Node, data: str, conninfo: str,
                   kw: dict, log) -> None:  # fmt: skip
    """A slot on the primary, primary_conninfo and standby.signal; start the node, drop the
    slots it kept, and wait until it streams from the primary."""
    slot = config.slot_name(node.name)
    remote.rows(primary, "clusters:ha-slot-create", {"slot": slot}, **kw)
    q = config.conf_string
    settings = (f"\n# dbconsole: a standby of {primary.name}\nprimary_conninfo = {q(conninfo)}\n"
                f"primary_slot_name = {q(slot)}\nsynchronous_standby_names = ''\n"
                "recovery_target_timeline = 'latest'\n")  # fmt: skip
    remote.append_file(node, f"{data}/postgresql.auto.conf", settings, **kw)
    run_command(node, ["install", "-m", "600", "-o", "postgres", "-g", "postgres", "/dev/null",
                       f"{data}/standby.signal"], **kw)  # fmt: skip
    log(f"starting {node.name} as a standby of {primary.name}")
    remote.pg_start(node, setup, data, **kw)
    name = app_name(setup, node)
    # Slots this node kept from its time as a primary hold WAL on a standby for nobody.
    for backend in setup.backends:
        remote.rows(node, "clusters:ha-slot-drop",
                    {"slot": config.slot_name(backend["application_name"])}, **kw)  # fmt: skip
    remote.wait_for(lambda: (remote.replication(primary, **kw).get(name) or {}).get("state")
                    == "streaming", STREAM_TIMEOUT,
                    f"{name} to stream from {primary.name}")  # fmt: skip


# --- then in pgpool-II and synchronous ---------------------------------------------------------
def attach(setup: HaSetup, node: Node, kw: dict, log) -> None:
    """Attach the node in pgpool-II through PCP (unless it is up there already), then wait
    until pgpool-II has it up."""
    number = setup.backend_id(node)
    if remote.pool_nodes(setup, **kw).get(number, {}).get("status") in ("up", "waiting"):
        return
    log(f"attaching {node.name} (node {number}) in pgpool-II")
    remote.pcp(setup, "attach_node", "-n", str(number), **kw)
    remote.wait_pgpool(setup, number, lambda b: b.get("status") in ("up", "waiting"),
                       f"{node.name} attached in pgpool-II", kw)  # fmt: skip


def mark_sync(setup: HaSetup, primary: Node, kw: dict) -> None:
    """Record which backends the primary now waits for (backends[i]["synchronous"])."""
    rows = remote.replication(primary, **kw)
    for backend in setup.backends:
        row = rows.get(backend["application_name"]) or {}
        backend["synchronous"] = row.get("sync_state") in SYNC_STATES
    setup.save(update_fields=["backends"])


def restore_sync(setup: HaSetup, primary: Node, standby: Node, kw: dict, log) -> None:
    """The primary waits for `standby` (synchronous_commit as set up), once it streams."""
    name = app_name(setup, standby)
    log(f"making {primary.name} wait for {name} (synchronous_commit = {setup.synchronous_commit})")
    remote.set_synchronous(primary, [name], setup.synchronous_commit, **kw)
    remote.wait_for(lambda: (remote.replication(primary, **kw).get(name) or {}).get("sync_state")
                    in SYNC_STATES, 30, f"{name} to be synchronous")  # fmt: skip
    mark_sync(setup, primary, kw)
