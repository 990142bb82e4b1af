"""The lab's network: hosts are network namespaces joined by one bridge in the root namespace.

Shape (defaults; LAB_NET, LAB_PREFIX and LAB_BRIDGE change them, see LabNet):

    bridge dbclab0   10.77.0.1/24   root namespace: slapd, Redis, the metadata PostgreSQL
    db1 .11   db2 .12   lb1 .13   my1 .14   bare1 .21   bare2 .22   (namespace = prefix + name)

Each namespace has lo, one veth into the bridge (`eth0` inside, `<bridge>-<host>` outside), its
own address and NO default route; ip_forward is left as it is (off). Names resolve through
/etc/netns/<namespace>/hosts (ip netns exec bind-mounts it over /etc/hosts). A blackhole route
for the /16 around LAB_NET stays in the root namespace, also after `lab down`, so that a stray
connection to a lab address fails at once instead of leaving through the default route.

The API parts use (stable):

    Host(name, address, namespace=None)
        A machine of the lab. `namespace` None means the root namespace (the bridge address or
        loopback). `lab.host("db1")` gives the host a part runs on; `part.host` is the same.
    host.argv(argv, *, user=None, uts=False) -> list[str]
        The argv that runs `argv` on the host: inside `ip netns exec <namespace>`; with `uts`
        also under `unshare --uts` with the host's name as hostname (daemons whose sessions must
        see it: sshd); with `user`, as that OS user (setpriv, clean environment), which must be
        the LAST wrapper because entering a namespace needs root. Its environment is HOME,
        USER, LOGNAME and SHELL of that user, PATH with the sbin directories, LANG=C.UTF-8.
        Run the result as root: never pass proc.run(user=...) with a namespaced argv.
    host.in_namespace -> bool
    host.port_open(port, timeout=0.5) -> bool
        A TCP connect to host.address:port from the root namespace succeeds.
    lab.host(name) -> Host; lab.hosts -> dict[str, Host]; lab.net -> LabNet
    PARTS in lab.py: part name -> (Part class, host name), in start order. A part placed on a
        namespaced host also needs the `net` part, which `lab up` adds (and `lab down net`
        stops the parts on hosts first). Hosts "bridge" and "local" are the root namespace.
    require_lab_network(bridge=None)
        Raise LabError unless the lab bridge (LAB_BRIDGE, default dbclab0) exists, is up and has
        its address: call it before connecting to any lab address (tests, the demo).
"""

import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from console.lab.proc import LabError

DEFAULT_NET = "10.77.0.0/24"
DEFAULT_BRIDGE = "dbclab0"
# Host name -> last octet of its address in the lab's /24. The bridge itself is .1.
HOST_OFFSETS: dict[str, int] = {
    "db1": 11,
    "db2": 12,
    "lb1": 13,
    "my1": 14,
    "bare1": 21,
    "bare2": 22,
}
HOST_NAMES = list(HOST_OFFSETS)
BRIDGE_HOST = "bridge"  # the root namespace on the bridge address
LOCAL_HOST = "local"  # the root namespace on loopback
# The shell that sets the hostname inside `unshare --uts`, then becomes the command. The name and
# the command come in as positional parameters ($1, then "$@"), never as shell text.
SET_HOSTNAME = 'hostname "$1" && shift && exec "$@"'
# PATH for commands run as another user (setpriv --reset-env would leave out the sbin dirs).
USER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Host:
    """A machine of the lab: a network namespace with its own address, or the root namespace."""

    name: str
    address: str = "127.0.0.1"
    namespace: str | None = None

    @property
    def in_namespace(self) -> bool:
        return self.namespace is not None

    def argv(self, argv: Sequence[str], *, user: str | None = None, uts: bool = False) -> list[str]:
        """The argv that runs `argv` on this host (as `user` when given); run it as root."""
        command = list(argv)
        if user is not None:
            command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
            command += ["--reset-env", "--", "env", f"PATH={USER_PATH}", "LANG=C.UTF-8", *argv]
        if uts and self.in_namespace:
            shell = ["sh", "-c", SET_HOSTNAME, "sh", self.name]
            command = ["unshare", "--uts", "--", *shell, *command]
        if self.in_namespace:
            command = ["ip", "netns", "exec", self.namespace, *command]
        return command

    def port_open(self, port: int, timeout: float = 0.5) -> bool:
        """True when a TCP connection to address:port from the root namespace is accepted."""
        try:
            with socket.create_connection((self.address, port), timeout=timeout):
                return True
        except OSError:
            return False


@dataclass(frozen=True)
class LabNet:
    """The lab's addressing: a private /24, a namespace name prefix and a bridge name."""

    network: ipaddress.IPv4Network
    prefix: str = ""
    bridge: str = DEFAULT_BRIDGE

    @classmethod
    def from_env(cls) -> "LabNet":
        return cls.parse(
            os.environ.get("LAB_NET") or DEFAULT_NET,
            os.environ.get("LAB_PREFIX", ""),
            os.environ.get("LAB_BRIDGE") or DEFAULT_BRIDGE,
        )

    @classmethod
    def parse(cls, network: str, prefix: str, bridge: str) -> "LabNet":
        """A checked LabNet: a private /24, and link names that fit the kernel's 15 bytes."""
        try:
            net = ipaddress.IPv4Network(network)
        except ValueError as e:
            raise LabError(f"LAB_NET {network!r} is not an IPv4 network: {e}") from None
        if net.prefixlen != 24 or not net.is_private or net.is_loopback:
            raise LabError(f"LAB_NET must be a private /24 such as {DEFAULT_NET}, got {network}")
        longest = max(len(name) for name in HOST_NAMES)
        if not bridge.isascii() or not bridge.replace("-", "").isalnum():
            raise LabError(f"LAB_BRIDGE {bridge!r}: use letters, digits and dashes")
        if len(bridge) + 1 + longest > 15:
            raise LabError(f"LAB_BRIDGE {bridge!r} is too long (at most {14 - longest} characters)")
        if prefix and (not prefix.isascii() or not prefix.replace("-", "").isalnum()):
            raise LabError(f"LAB_PREFIX {prefix!r}: use letters, digits and dashes")
        return cls(net, prefix, bridge)

    def as_dict(self) -> dict[str, str]:
        return {"network": str(self.network), "prefix": self.prefix, "bridge": self.bridge}

    @property
    def gateway(self) -> str:
        """The bridge's address (.1), where the root namespace's servers listen."""
        return str(self.network.network_address + 1)

    @property
    def blackhole(self) -> ipaddress.IPv4Network:
        """The /16 around the lab's /24, blackholed in the root namespace."""
        return self.network.supernet(new_prefix=16)

    def namespace(self, host: str) -> str:
        return f"{self.prefix}{host}"

    def veth(self, host: str) -> str:
        """The root-namespace end of the host's link (inside the namespace it is eth0)."""
        return f"{self.bridge}-{host}"

    def hosts(self) -> dict[str, Host]:
        """Every host of the lab by name: the namespaced ones, `bridge` and `local`."""
        hosts = {
            name: Host(name, str(self.network.network_address + offset), self.namespace(name))
            for name, offset in HOST_OFFSETS.items()
        }
        hosts[BRIDGE_HOST] = Host(BRIDGE_HOST, self.gateway)
        hosts[LOCAL_HOST] = Host(LOCAL_HOST, "127.0.0.1")
        return hosts


def require_lab_network(bridge: str | None = None) -> None:
    """Raise LabError unless the lab's bridge exists and is up: the check to make before sending
    anything to a lab address (with the lab down, the blackhole route refuses it anyway)."""
    bridge = bridge or os.environ.get("LAB_BRIDGE") or DEFAULT_BRIDGE
    link = Path("/sys/class/net") / bridge
    if not (link / "bridge").is_dir():
        raise LabError(f"the lab bridge {bridge} does not exist: is the lab up? (lab up)")
    if (link / "operstate").read_text().strip() not in ("up", "unknown"):
        raise LabError(f"the lab bridge {bridge} is down")
