"""pgpool-II 4.3 on lb1, in front of the primary (node 0, db1) and the standby (node 1, db2).

Streaming-replication mode with load balancing (reads of a session go to either node), a health
check every second, and a failover_command that promotes the standby when the primary fails.

The failover script promotes with `SELECT pg_promote()` over libpq, as the postgres superuser
whose password pgpool already holds. Production scripts often use `ssh postgres@standby pg_ctl
promote` instead; pg_promote needs no ssh key for pgpool's OS user and works the same on a real
network and in the lab (a plain `ip netns exec` would work only because the lab is one machine).
Like the ssh variant it does not fence the old primary: a real deployment must make sure the
failed primary cannot come back as a second primary (here it is dead or rebuilt from nothing).

Every user connecting through pgpool with SCRAM needs a pool_passwd entry: postgres and the
functional roles of pgha_seed, stored AES-encrypted (pg_enc) with a key file given by -k. PCP
listens on lb1's address; `pcp()` runs a pcp_* command non-interactively through PCPPASSFILE.
"""

import hashlib
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from console.lab import proc, seed
from console.lab.part import Part, new_password
from console.lab.parts import pgha, pgha_seed

PGPOOL = "/usr/sbin/pgpool"  # setpriv --reset-env leaves /usr/sbin off PATH
PGPOOL_PORT = 9999
PCP_PORT = 9898
PCP_USER = "pcpadmin"

FAILOVER_SCRIPT = """\
#!/bin/bash
# failover_command of the lab's pgpool: failover.sh %d %h %p %D %m %H %P %r %R
# When the primary failed, promote the new main node with pg_promote() over libpq.
# When a standby failed, pgpool has detached it: nothing to do.
set -u
failed_id=$1 failed_host=$2 failed_port=$3 new_id=$5 new_host=$6 old_primary_id=$7 new_port=$8
log() {{ echo "$(date '+%F %T') failover.sh: $*" >&2; }}
if [ "$failed_id" != "$old_primary_id" ]; then
    log "node $failed_id ($failed_host:$failed_port) is not the primary: nothing to promote"
    exit 0
fi
if [ "$new_id" -lt 0 ]; then
    log "primary $failed_id failed and no node is left to promote"
    exit 1
fi
log "primary $failed_id ($failed_host:$failed_port) failed: promoting $new_host:$new_port"
promoted=$(PGPASSFILE={passfile} PGCONNECT_TIMEOUT=5 {psql} -X -A -t -w -h "$new_host" \\
    -p "$new_port" -U postgres -d postgres -c "SELECT pg_promote(true, 30)")
if [ "$promoted" != "t" ]; then
    log "promoting $new_host:$new_port failed: ${{promoted:-no answer}}"
    exit 1
fi
log "node $new_id ($new_host:$new_port) is the new primary"
"""


class Pgpool(Part):
    """pgpool-II run by the postgres OS user on lb1, with its files in LAB_DIR/pgpool."""

    name = "pgpool"
    comm = "pgpool"
    description = "pgpool-II"
    port = PGPOOL_PORT  # on a namespaced host; a free port on loopback
    upstream = ("primary", "standby")

    @property
    def pid_file(self) -> Path:
        return self.dir / "pgpool.pid"

    @property
    def conf(self) -> Path:
        return self.dir / "pgpool.conf"

    @property
    def log(self) -> Path:
        return self.dir / "pgpool.log"

    @property
    def pcppass(self) -> Path:
        return self.dir / "pcppass"

    def running(self) -> bool:
        upstream = [self.lab.parts[name] for name in self.upstream]
        return super().running() and pgha.built_on_current(self, upstream)

    def new_record(self, old: dict, taken: set[int]) -> dict:
        rec = super().new_record(old, taken)
        if self.host.in_namespace:
            rec["pcp_port"] = PCP_PORT
        else:
            rec["pcp_port"] = proc.free_port(old.get("pcp_port"), taken | {rec["port"]})
        rec["pcp_password"] = old.get("pcp_password") or new_password()
        rec["aes_key"] = old.get("aes_key") or new_password()
        return rec

    def build(self, rec: dict) -> None:
        state = self.lab.load()["parts"]
        for name in self.upstream:
            if not self.lab.parts[name].running():
                raise proc.LabError(f"{name} is not running; build it first (lab up {name})")
        proc.make_dir(self.dir, owner="postgres", mode=0o700)
        proc.make_dir(self.dir / "run", owner="postgres", mode=0o755)
        self.write_files(rec, state["primary"], state["standby"])
        self.start(rec)
        wait_for_pool_nodes(self.target(rec), NORMAL_NODES, timeout=20)
        pgha.write_build_id(self, [self.lab.parts[name] for name in self.upstream])

    def start(self, rec: dict) -> None:
        """Start pgpool (again, after `stop`) with its node states discarded (-D); return once
        it accepts connections."""
        argv = [PGPOOL, "-n", "-D", "-f", str(self.conf), "-F", str(self.dir / "pcp.conf")]
        argv += ["-a", str(self.dir / "pool_hba.conf"), "-k", str(self.dir / "pgpoolkey")]
        daemon = proc.spawn(self.host.argv(argv, user="postgres"), log=self.log)

        def serving() -> bool:
            if daemon.poll() is not None:
                raise proc.LabError(f"pgpool exited with status {daemon.returncode}")
            return proc.alive(self.pid(), self.comm) and self.host.port_open(rec["port"])

        try:
            proc.wait_for(serving, 20, "pgpool to accept connections")
        except proc.LabError as e:
            raise proc.LabError(f"{e}\n{proc.tail(self.log)}") from None

    def write_files(self, rec: dict, primary: dict, standby: dict) -> None:
        """pgpool.conf, pool_hba.conf, pool_passwd, pcp.conf, the key, the failover script."""
        files = {
            "pgpool.conf": self.render_conf(rec, primary, standby),
            "pool_hba.conf": self.render_hba(),
            "pcp.conf": f"{PCP_USER}:{md5_hex(rec['pcp_password'])}\n",
            "pgpoolkey": rec["aes_key"] + "\n",
            "pgpass": f"*:*:*:postgres:{primary['superuser_password']}\n",
        }
        for name, text in files.items():
            proc.write_file(self.dir / name, text, owner="postgres", mode=0o600)
        script = FAILOVER_SCRIPT.format(passfile=self.dir / "pgpass", psql=f"{pgha.PG_BIN}/psql")
        proc.write_file(self.dir / "failover.sh", script, owner="postgres", mode=0o700)
        pcppass = f"{rec['host']}:{rec['pcp_port']}:{PCP_USER}:{rec['pcp_password']}\n"
        proc.write_file(self.pcppass, pcppass, mode=0o600)  # root's, for pcp()
        self.write_pool_passwd(primary["superuser_password"])

    def write_pool_passwd(self, superuser_password: str) -> None:
        """AES entries (pg_enc) for postgres and the seed's functional accounts, made from a
        user:password file that is deleted at once."""
        passwords = {"postgres": superuser_password}
        passwords |= {user: seed.SEED_DB_PASSWORDS[user] for user in pgha_seed.pool_passwd_users()}
        pairs = "".join(f"{user}:{password}\n" for user, password in passwords.items())
        pairs_file = proc.write_file(self.dir / "pool_passwd.in", pairs, mode=0o600)
        try:
            argv = ["pg_enc", "-m", "-f", str(self.conf), "-k", str(self.dir / "pgpoolkey")]
            proc.run([*argv, "-i", str(pairs_file)], timeout=30)
        finally:
            pairs_file.unlink()
        proc.chown(self.dir / "pool_passwd", "postgres")
        (self.dir / "pool_passwd").chmod(0o600)

    def render_conf(self, rec: dict, primary: dict, standby: dict) -> str:
        q = pgha.conf_string
        settings: dict[str, Any] = {
            "backend_clustering_mode": q("streaming_replication"),
            "listen_addresses": q(rec["host"]),
            "port": rec["port"],
            "socket_dir": q(str(self.dir / "run")),
            "pcp_listen_addresses": q(rec["host"]),
            "pcp_port": rec["pcp_port"],
            "pcp_socket_dir": q(str(self.dir / "run")),
            "pid_file_name": q(str(self.pid_file)),
            "logdir": q(str(self.dir)),
            "num_init_children": 24,
            "max_pool": 2,
            "enable_pool_hba": "on",
            "pool_passwd": q("pool_passwd"),
            "load_balance_mode": "on",
            "sr_check_period": 1,
            "sr_check_user": q("postgres"),
            "sr_check_password": q(""),
            "sr_check_database": q("postgres"),
            "health_check_period": 1,
            "health_check_timeout": 3,
            "health_check_user": q("postgres"),
            "health_check_password": q(""),
            "health_check_database": q("postgres"),
            "health_check_max_retries": 1,
            "health_check_retry_delay": 1,
            "connect_timeout": 3000,
            "failover_command": q(f"{self.dir}/failover.sh %d %h %p %D %m %H %P %r %R"),
            "failover_on_backend_error": "on",
            "search_primary_node_timeout": 30,
            "log_line_prefix": q("%m: %a pid %p: "),
        }
        nodes = [
            (self.lab.parts["primary"], primary, "db1"),
            (self.lab.parts["standby"], standby, standby["application_name"]),
        ]
        for number, (part, node, application_name) in enumerate(nodes):
            settings[f"backend_hostname{number}"] = q(node["host"])
            settings[f"backend_port{number}"] = node["port"]
            settings[f"backend_weight{number}"] = 1
            settings[f"backend_data_directory{number}"] = q(str(part.data))  # type: ignore[attr-defined]
            settings[f"backend_flag{number}"] = q("ALLOW_TO_FAILOVER")
            settings[f"backend_application_name{number}"] = q(application_name)
        return "".join(f"{name} = {value}\n" for name, value in settings.items())

    def render_hba(self) -> str:
        network = str(self.lab.net.network) if self.host.in_namespace else "127.0.0.1/32"
        return (
            "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
            "local   all       all            scram-sha-256\n"
            f"host    all       all   {network}  scram-sha-256\n"
        )

    def stop(self, rec: dict) -> None:
        """Fast shutdown: SIGINT, as `pgpool -m fast stop` sends, but waiting only until the
        process is gone or a zombie (`pgpool stop` polls until PID 1 reaps it: seconds here)."""
        pid = self.pid()
        if not proc.alive(pid, self.comm):
            return
        proc.signal_quietly(pid, signal.SIGINT)
        try:
            proc.wait_for(lambda: not proc.alive(pid), 10, f"pgpool (pid {pid}) to stop")
        except proc.LabError:
            proc.terminate(pid, self.comm, self.name)  # SIGTERM, then SIGKILL

    def target(self, rec: dict, dbname: str = "postgres") -> dict:
        """How to log in through pgpool as postgres, for pgha.query."""
        password = self.lab.load()["parts"]["primary"]["superuser_password"]
        return {"host": rec["host"], "port": rec["port"], "user": "postgres",
                "password": password, "dbname": dbname}  # fmt: skip

    def pcp(self, rec: dict, command: str, *args: str, timeout: float = 20) -> str:
        """Run pcp_<command> against this pgpool without a prompt; return its output."""
        argv = ["env", f"PCPPASSFILE={self.pcppass}", f"/usr/sbin/pcp_{command}"]
        argv += ["-h", rec["host"], "-p", str(rec["pcp_port"]), "-U", PCP_USER, "-w", *args]
        return proc.run(argv, timeout=timeout).stdout

    def env(self, rec: dict) -> dict[str, str]:
        return {
            "LAB_PGPOOL_HOST": rec["host"],
            "LAB_PGPOOL_PORT": str(rec["port"]),
            "LAB_PGPOOL_PCP_PORT": str(rec["pcp_port"]),
            "LAB_PGPOOL_PCP_USER": PCP_USER,
            "LAB_PGPOOL_PCP_PASSWORD": rec["pcp_password"],
        }


def md5_hex(text: str) -> str:
    """What pg_md5 prints for a password (pcp.conf's format)."""
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


# --- SHOW POOL_NODES --------------------------------------------------------------------------
NORMAL_NODES = {0: {"status": "up", "role": "primary"}, 1: {"status": "up", "role": "standby"}}


def pool_nodes(target: dict) -> dict[int, dict[str, str]]:
    """SHOW POOL_NODES through pgpool: node id -> column -> value."""
    with pgha.connect(target, target.get("dbname", "postgres"), autocommit=True) as conn:
        cur = conn.execute("SHOW POOL_NODES")
        names = [column.name for column in cur.description or []]
        return {int(row[0]): dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def wait_for_pool_nodes(
    target: dict, expected: dict[int, dict[str, str]], timeout: float = 20
) -> dict[int, dict[str, str]]:
    """Poll SHOW POOL_NODES through pgpool until every node has the expected column values
    (e.g. status up, role primary); return the nodes. LabError after `timeout`. A client
    session makes pgpool connect to the backends: use wait_for_pcp_nodes to watch pgpool
    without causing a failover on a backend error."""
    return wait_for_nodes(lambda: pool_nodes(target), expected, timeout)


def pcp_nodes(part: Pgpool, rec: dict) -> dict[int, dict[str, str]]:
    """pcp_node_info of every node, with SHOW POOL_NODES's column names."""
    nodes = {}
    for number, line in enumerate(part.pcp(rec, "node_info").splitlines()):
        fields = line.split()
        nodes[number] = dict(zip(PCP_NODE_FIELDS, fields, strict=False))
    return nodes


PCP_NODE_FIELDS = ["hostname", "port", "status_code", "lb_weight", "status", "pg_status", "role"]
PCP_NODE_FIELDS += ["pg_role", "replication_delay", "replication_state", "replication_sync_state"]


def wait_for_pcp_nodes(
    part: Pgpool, rec: dict, expected: dict[int, dict[str, str]], timeout: float = 20
) -> dict[int, dict[str, str]]:
    """As wait_for_pool_nodes, but asking pcp_node_info (no client session, no backend
    connection: what pgpool itself decided, e.g. after a health check)."""
    return wait_for_nodes(lambda: pcp_nodes(part, rec), expected, timeout)


def wait_for_nodes(
    read: Callable[[], dict[int, dict[str, str]]],
    expected: dict[int, dict[str, str]],
    timeout: float,
) -> dict[int, dict[str, str]]:
    seen: dict[int, dict[str, str]] | str = "nothing"
    deadline = time.monotonic() + timeout
    while True:
        try:
            seen = read()
            if all(
                all(seen.get(node, {}).get(k) == v for k, v in columns.items())
                for node, columns in expected.items()
            ):
                return seen
        except (psycopg.Error, proc.LabError) as e:
            seen = f"error: {e}"
        if time.monotonic() > deadline:
            raise proc.LabError(f"pgpool nodes not as expected after {timeout:g} s: {seen}")
        time.sleep(0.1)
