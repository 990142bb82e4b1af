"""Faults for tests, done for real to the lab's hosts, and waits with deadlines.

    crash_host(lab, "db1")          SIGKILL every process in db1's namespace, wait until reaped
                                    (or zombies): connections to db1 are then refused at once
    cut_link(lab, "db1")            the host's link down: connections to and from it time out
    restore_link(lab, "db1")
    partition(lab, "db1", "db2")    drop traffic between two hosts only (nftables in db1's
    heal(lab, "db1", "db2")         namespace); heal(lab, "db1") heals all of db1's partitions
    stop_server(lab, "mariadb")     the server's clean stop / start, its data kept
    start_server(lab, "mariadb")
    connect_result(address, port, from_host=None, timeout=1.0) -> "open" | "refused" |
        "timeout" | "unreachable": one TCP connect, from the root namespace or inside a host
    wait_port_open / wait_port_closed(address, port, timeout, from_host=None)
    wait_until(check, timeout, what)    poll with a deadline (proc.wait_for)

cut_link and partition are also context managers (`with cut(lab, "db1"):`) that restore on
exit. A crashed host's parts are rebuilt by `lab.up(...)` (tests: the rebuild_parts fixture).
PostgreSQL-specific waits (replication in sync, pgpool node state) are in parts/pgha.py and
parts/pgpool.py.
"""

import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

from console.lab import proc
from console.lab.lab import Lab
from console.lab.net import Host
from console.lab.parts.network import ip, namespace_pids

PARTITION_TABLE = "dbclab_partition"
# Run inside a namespace by connect_result: one TCP connect, its outcome as one word.
CONNECT_SCRIPT = """\
import errno, socket, sys
s = socket.socket()
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except socket.timeout:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print("timeout" if e.errno == errno.ETIMEDOUT else "unreachable")
"""

wait_until: Callable[[Callable[[], bool], float, str], None] = proc.wait_for


def namespaced(lab: Lab, name: str) -> Host:
    host = lab.host(name)
    if not host.in_namespace:
        raise proc.LabError(f"{name} is not a namespaced host")
    return host


# --- crash --------------------------------------------------------------------------------------
def crash_host(lab: Lab, name: str, timeout: float = 15) -> list[int]:
    """Kill -9 every process in the host's namespace and return once none of them runs (a
    zombie waiting for PID 1 counts as gone, as it holds no port and no file). The namespace and
    its link stay: connections to the host are refused at once. Returns the killed pids."""
    host = namespaced(lab, name)
    killed = namespace_pids(host.namespace)
    for pid in killed:
        proc.signal_quietly(pid, signal.SIGKILL)
    wait_until(
        lambda: not any(proc.alive(pid) for pid in killed), timeout, f"{name}'s processes to die"
    )
    # A process forked while we were killing is caught by a second pass.
    late = [pid for pid in namespace_pids(host.namespace) if proc.alive(pid)]
    if late:
        killed += crash_host(lab, name, timeout)
    return killed


# --- link ---------------------------------------------------------------------------------------
def cut_link(lab: Lab, name: str) -> None:
    """Set the host's link down at the bridge, as a pulled cable: packets to and from the host
    are lost, so connections time out (no refusal comes back)."""
    namespaced(lab, name)
    ip("link", "set", lab.net.veth(name), "down")


def restore_link(lab: Lab, name: str, timeout: float = 10) -> None:
    """Set the host's link up again; return once it forwards (the bridge has no STP delay)."""
    namespaced(lab, name)
    veth = lab.net.veth(name)
    ip("link", "set", veth, "up")
    wait_until(lambda: link_forwarding(veth), timeout, f"{name}'s link to forward")
    # Connects tried during the cut left FAILED neighbour entries for the host's address, which
    # hold new connects back until they expire: forget them, in the root and every namespace.
    address = lab.host(name).address
    ip("neigh", "flush", "to", address)
    for other in lab.hosts.values():
        if other.in_namespace and other.name != name:
            proc.run(other.argv(["ip", "neigh", "flush", "to", address]), timeout=10)


def link_forwarding(veth: str) -> bool:
    try:
        with open(f"/sys/class/net/{veth}/brport/state") as state:
            return state.read().strip() == "3"  # BR_STATE_FORWARDING
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def cut(lab: Lab, name: str) -> Iterator[None]:
    """The host's link is down inside the block and up again after it, also on failure."""
    cut_link(lab, name)
    try:
        yield
    finally:
        restore_link(lab, name)


# --- partition ----------------------------------------------------------------------------------
def nft(host: Host, *args: str, input: str | None = None) -> str:
    return proc.run(host.argv(["nft", *args]), timeout=30, input=input).stdout


def partition(lab: Lab, name: str, peer: str) -> None:
    """Drop every packet between `name` and `peer`, and only those: a table in `name`'s own
    namespace drops what comes from and goes to the peer's address. Idempotent."""
    host, other = namespaced(lab, name), lab.host(peer)
    tables = nft(host, "list", "tables")
    if f"table inet {PARTITION_TABLE}" not in tables:
        nft(host, "-f", "-", input=PARTITION_RULES.format(table=PARTITION_TABLE))
    nft(host, "add", "element", "inet", PARTITION_TABLE, "peers", f"{{ {other.address} }}")


PARTITION_RULES = """\
table inet {table} {{
    set peers {{ type ipv4_addr; }}
    chain input {{ type filter hook input priority 0; policy accept; ip saddr @peers drop; }}
    chain output {{ type filter hook output priority 0; policy accept; ip daddr @peers drop; }}
}}
"""


def heal(lab: Lab, name: str, peer: str | None = None) -> None:
    """Undo partition(name, peer); without a peer, every partition made in `name`."""
    host = namespaced(lab, name)
    if f"table inet {PARTITION_TABLE}" not in nft(host, "list", "tables"):
        return
    if peer is None:
        nft(host, "delete", "table", "inet", PARTITION_TABLE)
        return
    address = lab.host(peer).address
    if address in nft(host, "list", "set", "inet", PARTITION_TABLE, "peers"):
        nft(host, "delete", "element", "inet", PARTITION_TABLE, "peers", f"{{ {address} }}")


@contextlib.contextmanager
def partitioned(lab: Lab, name: str, peer: str) -> Iterator[None]:
    """`name` and `peer` cannot reach each other inside the block; healed after it."""
    partition(lab, name, peer)
    try:
        yield
    finally:
        heal(lab, name, peer)


# --- one server ---------------------------------------------------------------------------------
def stop_server(lab: Lab, part: str) -> None:
    """Stop one part's server cleanly (its own stop, or SIGTERM), keeping its files."""
    lab.parts[part].stop(record(lab, part))


def start_server(lab: Lab, part: str) -> None:
    """Start one part's server again after stop_server; return once it serves."""
    lab.parts[part].start(record(lab, part))


def record(lab: Lab, part: str) -> dict:
    try:
        return lab.load()["parts"][part]
    except KeyError:
        raise proc.LabError(f"part {part} was never built in {lab.dir}") from None


# --- connections and waits ----------------------------------------------------------------------
def connect_result(
    address: str, port: int, from_host: Host | None = None, timeout: float = 1.0
) -> str:
    """The outcome of one TCP connect to address:port: open, refused, timeout or unreachable;
    from the root namespace, or from inside `from_host`'s namespace."""
    if from_host is None or not from_host.in_namespace:
        try:
            with socket.create_connection((address, port), timeout=timeout):
                return "open"
        except TimeoutError:
            return "timeout"
        except ConnectionRefusedError:
            return "refused"
        except OSError:
            return "unreachable"
    argv = [sys.executable, "-I", "-c", CONNECT_SCRIPT, address, str(port), str(timeout)]
    result = subprocess.run(
        from_host.argv(argv), capture_output=True, text=True, timeout=timeout + 10, check=True
    )
    return result.stdout.strip()


def wait_port_open(address: str, port: int, timeout: float, from_host: Host | None = None) -> None:
    """Return once address:port accepts connections; LabError after `timeout` seconds."""
    wait_until(
        lambda: connect_result(address, port, from_host, 0.5) == "open",
        timeout,
        f"{address}:{port} to accept connections",
    )


def wait_port_closed(
    address: str, port: int, timeout: float, from_host: Host | None = None
) -> None:
    """Return once address:port no longer accepts connections."""
    wait_until(
        lambda: connect_result(address, port, from_host, 0.5) != "open",
        timeout,
        f"{address}:{port} to stop accepting connections",
    )
