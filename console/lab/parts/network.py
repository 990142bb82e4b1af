"""The `net` part: the lab's bridge, one network namespace per host, their links and hosts files.

Addressing and the Host API are in console/lab/net.py.
"""

import contextlib
import ipaddress
import json
import shutil
from pathlib import Path

from console.lab import proc
from console.lab.net import Host, LabNet
from console.lab.part import Part
from console.lab.proc import LabError

NETNS_ETC = Path("/etc/netns")
RUN_NETNS = Path("/run/netns")


def ip(*args: str, input: str | None = None) -> str:
    """Run `ip <args>` as root; its stdout."""
    return proc.run(["ip", *args], timeout=30, input=input).stdout


def link_exists(name: str) -> bool:
    return (Path("/sys/class/net") / name).exists()


def link_alias(name: str) -> str:
    try:
        return (Path("/sys/class/net") / name / "ifalias").read_text().strip()
    except FileNotFoundError:
        return ""


def link_state(name: str) -> str:
    """`up` or `down` (administratively: a cut link is down), or `missing`."""
    try:
        flags = int((Path("/sys/class/net") / name / "flags").read_text(), 16)
    except FileNotFoundError:
        return "missing"
    return "up" if flags & 0x1 else "down"


def namespace_exists(namespace: str) -> bool:
    return (RUN_NETNS / namespace).exists()


def namespace_pids(namespace: str) -> list[int]:
    """Processes whose network namespace is `namespace` (`ip netns pids`)."""
    if not namespace_exists(namespace):
        return []
    return [int(pid) for pid in ip("netns", "pids", namespace).split()]


class Network(Part):
    """The bridge with the lab's .1 address, one namespace per host, the hosts files and the
    blackhole route. It owns what it made, marked with LAB_DIR: the bridge's alias and the first
    line of each /etc/netns/<namespace>/hosts. It refuses to touch a bridge or namespace of the
    same name that another lab (or anything else) owns, and an address of its /24 on a link that
    is not its bridge."""

    name = "net"
    comm = ""
    description = "bridge and host namespaces"

    @property
    def net(self) -> LabNet:
        return self.lab.net

    @property
    def marker(self) -> str:
        return f"dbconsole-lab {self.lab.dir}"

    def new_record(self, old: dict, taken: set[int]) -> dict:
        return {"host": self.net.gateway, **self.net.as_dict()}

    def address(self, rec: dict) -> str:
        return f"{self.net.bridge} {self.net.gateway}/24"

    def namespaced(self) -> list[Host]:
        return [host for host in self.lab.hosts.values() if host.in_namespace]

    def running(self) -> bool:
        return self.bridge_up() and all(namespace_exists(h.namespace) for h in self.namespaced())

    def bridge_up(self) -> bool:
        return link_exists(self.net.bridge) and link_alias(self.net.bridge) == self.marker

    def pid(self) -> int | None:
        return None

    # --- build ---------------------------------------------------------------------------------
    def build(self, rec: dict) -> None:
        proc.make_dir(self.dir, mode=0o755)
        self.check_nothing_else_owns()
        self.add_blackhole()
        bridge = self.net.bridge
        ip("link", "add", bridge, "type", "bridge")
        ip("link", "set", bridge, "alias", self.marker)
        ip("addr", "add", f"{self.net.gateway}/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        for host in self.namespaced():
            self.add_host(host)

    def check_nothing_else_owns(self) -> None:
        """Refuse to build over a bridge, link, namespace or address that is not ours."""
        if link_exists(self.net.bridge):
            raise LabError(f"link {self.net.bridge} exists ({link_alias(self.net.bridge)!r})")
        for host in self.namespaced():
            if namespace_exists(host.namespace) or link_exists(self.net.veth(host.name)):
                raise LabError(f"namespace or link of host {host.name} exists: another lab?")
        for entry in json.loads(ip("-j", "-4", "addr", "show")):
            for addr in entry.get("addr_info", []):
                if ipaddress.IPv4Address(addr["local"]) in self.net.network:
                    raise LabError(
                        f"{entry['ifname']} already has {addr['local']}, inside LAB_NET "
                        f"{self.net.network}: choose another LAB_NET"
                    )

    def add_blackhole(self) -> None:
        """Install the blackhole route for the /16 unless it is there. It is never removed:
        while the lab is down it is what makes a stray connection to a lab address fail."""
        prefix = str(self.net.blackhole)
        routes = json.loads(ip("-j", "route", "show", "exact", prefix))
        if any(route.get("type") == "blackhole" for route in routes):
            return
        if routes:
            raise LabError(f"a route for {prefix} exists and is not a blackhole: {routes}")
        ip("route", "add", "blackhole", prefix)

    def add_host(self, host: Host) -> None:
        """The namespace, its hosts files, and its link into the bridge; lo up, no default
        route (a namespace gets none unless one is added)."""
        ns, veth = host.namespace, self.net.veth(host.name)
        etc = proc.make_dir(NETNS_ETC / ns, mode=0o755)
        proc.write_file(etc / "hosts", self.hosts_file(host))
        proc.write_file(etc / "hostname", f"{host.name}\n")
        # No nameserver line: the resolver tries 127.0.0.1 in the namespace, refused at once.
        proc.write_file(etc / "resolv.conf", "# dbconsole lab: no DNS inside the lab\n")
        ip("netns", "add", ns)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("link", "set", veth, "alias", f"{self.marker} {host.name}")
        ip("link", "set", veth, "master", self.net.bridge, "up")
        ip("-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "link", "set", "eth0", "up")

    def hosts_file(self, host: Host) -> str:
        lines = [f"# {self.marker}: hosts of {host.name}, removed by lab down"]
        lines += ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        lines.append(f"{self.net.gateway}\tlab")
        lines += [f"{h.address}\t{h.name}" for h in self.namespaced()]
        return "\n".join(lines) + "\n"

    # --- stop ----------------------------------------------------------------------------------
    def owns_namespace(self, host: Host) -> bool:
        try:
            first = (NETNS_ETC / host.namespace / "hosts").read_text().split("\n", 1)[0]
        except FileNotFoundError:
            return False
        return first.startswith(f"# {self.marker}:")

    def stop_all(self, rec: dict) -> None:
        """Stop every process left in the lab's namespaces, delete them with their links and
        hosts files, then the bridge. Namespaces another lab owns are left alone."""
        for host in self.namespaced():
            if not self.owns_namespace(host):
                continue
            for pid in namespace_pids(host.namespace):
                proc.terminate(pid, None, f"process {pid} left on {host.name}")
            veth = self.net.veth(host.name)
            if link_exists(veth) and link_alias(veth).startswith(self.marker):
                ip("link", "del", veth)
            if namespace_exists(host.namespace):
                ip("netns", "del", host.namespace)
            shutil.rmtree(NETNS_ETC / host.namespace)
        with contextlib.suppress(OSError):
            NETNS_ETC.rmdir()  # only when empty
        if self.bridge_up():
            ip("link", "del", self.net.bridge)

    def stop(self, rec: dict) -> None:
        self.stop_all(rec)
