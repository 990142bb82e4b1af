"""pgpool-II's files for a cluster, rendered from an HaSetup (pure: no network, no database).

pgpool.conf follows what was measured on pgpool-II 4.3 (../shared/LAB.md): streaming
replication mode, backend_application_name equal to each standby's application_name (else
SHOW POOL_NODES has no sync state), load balancing, sr_check and delay_threshold, a health check
every `health_check_period` s, failover_command and follow_primary_command scripts, PCP on the
pgpool host's address. Placeholders of failover_command: %d failed id, %h failed host, %p its
port, %m new main id, %H new main host, %P old primary id, %r new main port. (%M is the old
main id, not a directory.)

The failover script promotes with pg_promote() over libpq, but only when no other backend is a
primary already: the console may have promoted one itself (a switchover, a failover started by a
DBA), and a second promotion would make two primaries.
"""

import hashlib
import re
import shlex

PCP_NODE_FIELDS = [
    "hostname", "port", "status_code", "lb_weight", "status", "pg_status", "role", "pg_role",
    "replication_delay", "replication_state", "replication_sync_state",
]  # fmt: skip
_NAME = re.compile(r"[^a-z0-9_]")


def conf_string(value: str) -> str:
    """A pgpool.conf / postgresql.conf string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def slot_name(name: str) -> str:
    """A replication slot name for a node name (lower case letters, digits, underscores)."""
    return _NAME.sub("_", name.lower())[:63]


def md5_hex(text: str) -> str:
    """What pg_md5 prints for a password: pcp.conf's format."""
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def paths(directory: str) -> dict[str, str]:
    """Where each file of a deployment lives on the pgpool host."""
    names = {
        "conf": "pgpool.conf", "hba": "pool_hba.conf", "pcp": "pcp.conf", "key": "pgpoolkey",
        "pool_passwd": "pool_passwd", "pcppass": "pcppass", "pgpass": "pgpass",
        "failover": "failover.sh", "follow": "follow_primary.sh", "pid": "pgpool.pid",
        "log": "pgpool.log", "run": "run", "status": "pgpool_status",
    }  # fmt: skip
    return {key: f"{directory.rstrip('/')}/{name}" for key, name in names.items()}


def render_conf(setup, address: str, port: int) -> str:
    """pgpool.conf for `setup` (an HaSetup), listening on address:port."""
    q = conf_string
    p = paths(setup.directory)
    settings = {
        "backend_clustering_mode": q("streaming_replication"),
        "listen_addresses": q(address),
        "port": port,
        "socket_dir": q(p["run"]),
        "pcp_listen_addresses": q(address),
        "pcp_port": setup.pcp_port,
        "pcp_socket_dir": q(p["run"]),
        "pid_file_name": q(p["pid"]),
        "logdir": q(setup.directory),
        "num_init_children": 32,
        "max_pool": 2,
        "enable_pool_hba": "on",
        "pool_passwd": q("pool_passwd"),
        "load_balance_mode": "on",
        "allow_sql_comments": "on",  # else a leading comment sends every statement to the primary
        "sr_check_period": 1,
        "sr_check_user": q("postgres"),
        "sr_check_password": q(""),
        "sr_check_database": q("postgres"),
        "delay_threshold": setup.delay_threshold,
        "health_check_period": setup.health_check_period,
        "health_check_timeout": setup.health_check_timeout,
        "health_check_user": q("postgres"),
        "health_check_password": q(""),
        "health_check_database": q("postgres"),
        "health_check_max_retries": setup.health_check_max_retries,
        "health_check_retry_delay": 1,
        "connect_timeout": setup.health_check_timeout * 1000,
        "failover_command": q(f"{p['failover']} %d %h %p %D %m %H %P %r %R"),
        "follow_primary_command": q(f"{p['follow']} %d %h %p %D %m %H %M %P %r %R"),
        "failover_on_backend_error": "on",
        "search_primary_node_timeout": 30,
        "auto_failback": "off",  # a node pgpool detached comes back only by pcp_attach_node
        "log_line_prefix": q("%m: %a pid %p: "),
    }
    for number, backend in enumerate(setup.backends):
        settings[f"backend_hostname{number}"] = q(backend["address"])
        settings[f"backend_port{number}"] = backend["port"]
        settings[f"backend_weight{number}"] = backend["weight"]
        settings[f"backend_data_directory{number}"] = q(backend["data_directory"])
        settings[f"backend_flag{number}"] = q("ALLOW_TO_FAILOVER")
        settings[f"backend_application_name{number}"] = q(backend["application_name"])
    lines = [f"# pgpool-II for cluster {setup.cluster.name}, written by dbconsole"]
    lines += [f"{name} = {value}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def render_hba(networks: list[str]) -> str:
    """pool_hba.conf: SCRAM from the given networks and the local socket, nothing else."""
    lines = ["# TYPE  DATABASE  USER  ADDRESS  METHOD", "local   all   all   scram-sha-256"]
    lines += [f"host    all   all   {network}   scram-sha-256" for network in networks]
    return "\n".join(lines) + "\n"


FAILOVER_SCRIPT = """\
#!/bin/bash
# failover_command of pgpool-II, written by dbconsole: failover.sh %d %h %p %D %m %H %P %r %R
# When the primary failed, promote the new main node with pg_promote() over libpq, unless a
# backend is a primary already (the console promoted it). A failed standby: nothing to do.
set -u
failed_id=$1 failed_host=$2 failed_port=$3 new_id=$5 new_host=$6 old_primary_id=$7 new_port=$8
export PGPASSFILE={pgpass} PGCONNECT_TIMEOUT=3
log() {{ echo "$(date '+%F %T') failover.sh: $*" >&2; }}
ask() {{ {psql} -X -A -t -w -h "$1" -p "$2" -U postgres -d postgres -c "$3" 2>/dev/null; }}
if [ "$failed_id" != "$old_primary_id" ]; then
    log "node $failed_id ($failed_host:$failed_port) is not the primary: nothing to promote"
    exit 0
fi
for backend in {backends}; do
    host=${{backend%:*}} port=${{backend##*:}}
    [ "$host:$port" = "$failed_host:$failed_port" ] && continue
    if [ "$(ask "$host" "$port" 'SELECT pg_is_in_recovery()')" = "f" ]; then
        log "$host:$port is a primary already: nothing to promote"
        exit 0
    fi
done
if [ "$new_id" -lt 0 ]; then
    log "primary $failed_id failed and no node is left to promote"
    exit 1
fi
log "primary $failed_id ($failed_host:$failed_port) failed: promoting $new_host:$new_port"
promoted=$(ask "$new_host" "$new_port" "SELECT pg_promote(true, 30)")
recovery=$(ask "$new_host" "$new_port" 'SELECT pg_is_in_recovery()')
if [ "$promoted" != "t" ] && [ "$recovery" != "f" ]; then
    log "promoting $new_host:$new_port failed: ${{promoted:-no answer}}"
    exit 1
fi
log "node $new_id ($new_host:$new_port) is the new primary"
"""

FOLLOW_SCRIPT = """\
#!/bin/bash
# follow_primary_command of pgpool-II, written by dbconsole: %d %h %p %D %m %H %M %P %r %R
# Run for each other standby after a failover. Re-pointing a standby at the new primary needs
# pg_rewind or a base backup on its host: the console does it (cluster page, Rebuild) and then
# attaches the node again through PCP. Here only the fact is logged.
echo "$(date '+%F %T') follow_primary.sh: standby $1 ($2:$3) must follow node $5 ($6:$9): \\
rebuild it from the console" >&2
exit 0
"""


def render_failover(setup) -> str:
    p = paths(setup.directory)
    backends = " ".join(shlex.quote(f"{b['address']}:{b['port']}") for b in setup.backends)
    return FAILOVER_SCRIPT.format(pgpass=p["pgpass"], psql=f"{setup.pg_bin}/psql",
                                  backends=backends)  # fmt: skip


def parse_pcp_node_info(output: str) -> dict[int, dict[str, str]]:
    """pcp_node_info (all nodes, not verbose) as node id -> SHOW POOL_NODES's column names."""
    nodes = {}
    for number, line in enumerate(line for line in output.splitlines() if line.strip()):
        nodes[number] = dict(zip(PCP_NODE_FIELDS, line.split(), strict=False))
    return nodes
