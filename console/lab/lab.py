"""The lab: every server the tests use, under one directory, recorded in LAB_DIR/lab.json."""

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from cryptography.fernet import Fernet

from console.lab import proc
from console.lab.net import BRIDGE_HOST, HOST_NAMES, Host, LabNet
from console.lab.part import Part
from console.lab.parts.ldap import Slapd
from console.lab.parts.mariadb import MariaDB
from console.lab.parts.network import (
    NETNS_ETC,
    Network,
    link_exists,
    link_state,
    namespace_exists,
)
from console.lab.parts.pgha import PgPrimary, PgStandby
from console.lab.parts.pgpool import Pgpool
from console.lab.parts.postgres import MetaCluster
from console.lab.parts.redis import Redis
from console.lab.parts.ssh import Sshd

DEFAULT_LAB_DIR = "/var/lib/dbconsole-lab"
PACKAGES_FILE = Path(__file__).with_name("packages.txt")
# Where each part runs: part name -> (class, host name), in start order (down goes backwards).
# Host "bridge" is the root namespace on the bridge address, "local" the root namespace on
# loopback; the others are network namespaces (console/lab/net.py).
PARTS: dict[str, tuple[type[Part], str]] = {
    "net": (Network, BRIDGE_HOST),
    "meta": (MetaCluster, BRIDGE_HOST),
    "redis": (Redis, BRIDGE_HOST),
    "ldap": (Slapd, BRIDGE_HOST),
    **{f"ssh-{host}": (Sshd, host) for host in HOST_NAMES},
    "primary": (PgPrimary, "db1"),
    "standby": (PgStandby, "db2"),
    "pgpool": (Pgpool, "lb1"),
    "mariadb": (MariaDB, "my1"),
}
PART_NAMES = list(PARTS)
# Names on the command line that stand for several parts.
PART_GROUPS: dict[str, list[str]] = {
    "ssh": [f"ssh-{host}" for host in HOST_NAMES],
    "pgha": ["primary", "standby", "pgpool"],
}


def lab_dir_from_env() -> Path:
    """LAB_DIR from the environment, or the default; refused when sshd's StrictModes would
    refuse it (a world- or group-writable directory on the way) or it is not absolute."""
    path = Path(os.environ.get("LAB_DIR") or DEFAULT_LAB_DIR)
    if not path.is_absolute() or path == Path("/"):
        raise proc.LabError(f"LAB_DIR must be an absolute path below /, got {str(path)!r}")
    for parent in path.parents:
        if parent.exists() and parent.stat().st_mode & (stat.S_IWOTH | stat.S_IWGRP):
            raise proc.LabError(
                f"LAB_DIR {path} lies under {parent}, which others can write; sshd's "
                "StrictModes would refuse the lab's keys. Choose a path like /var/lib/dbconsole-lab"
            )
    return path


def missing_packages() -> list[str]:
    """Debian packages of packages.txt that are not installed (`make deps` installs them)."""
    lines = PACKAGES_FILE.read_text().splitlines()
    wanted = [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *wanted],
        capture_output=True,
        text=True,
        timeout=30,
    )
    installed = {
        line.split()[0] for line in result.stdout.splitlines() if line.split()[1:2] == ["ii"]
    }
    return [package for package in wanted if package not in installed]


def net_for(directory: Path) -> LabNet:
    """The lab's addressing: as recorded in its lab.json when it was first brought up, else from
    LAB_NET, LAB_PREFIX and LAB_BRIDGE. A variable set to another value than recorded is an
    error (the lab would look for namespaces that are not its own)."""
    wanted = LabNet.from_env()
    try:
        recorded = json.loads((directory / "lab.json").read_text()).get("net")
    except FileNotFoundError:
        recorded = None
    if not recorded:
        return wanted
    net = LabNet.parse(recorded["network"], recorded["prefix"], recorded["bridge"])
    for variable, value, mine in (
        ("LAB_NET", str(wanted.network), str(net.network)),
        ("LAB_PREFIX", wanted.prefix, net.prefix),
        ("LAB_BRIDGE", wanted.bridge, net.bridge),
    ):
        if os.environ.get(variable) and value != mine:
            raise proc.LabError(
                f"{variable}={value} but the lab in {directory} uses {mine}: bring it down first"
            )
    return net


class Lab:
    """All parts of the lab, their hosts, records and lab-wide secrets, in one directory."""

    def __init__(self, directory: Path, net: LabNet | None = None):
        self.dir = directory
        self.state_file = directory / "lab.json"
        self.net = net or net_for(directory)
        self.hosts: dict[str, Host] = self.net.hosts()
        self.parts: dict[str, Part] = {
            name: cls(self, self.hosts[host], name) for name, (cls, host) in PARTS.items()
        }

    def host(self, name: str) -> Host:
        """The host called `name` (db1, db2, lb1, my1, bare1, bare2, bridge, local)."""
        try:
            return self.hosts[name]
        except KeyError:
            raise proc.LabError(f"no host {name!r}; hosts: {', '.join(self.hosts)}") from None

    def parts_on(self, host: str) -> list[Part]:
        return [part for part in self.parts.values() if part.host.name == host]

    # --- state -----------------------------------------------------------------------------
    def load(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {"parts": {}}

    def save(self, state: dict) -> None:
        """Write lab.json atomically, mode 600 from the start (it holds passwords)."""
        tmp = self.dir / ".lab.json.tmp"
        proc.write_file(tmp, json.dumps(state, indent=2, sort_keys=True) + "\n", mode=0o600)
        tmp.replace(self.state_file)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lab's lock, so that two `up` or `down` commands never interleave."""
        proc.make_dir(self.dir, mode=0o755)
        lock_path = self.dir / ".lock"
        while True:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
            except FileNotFoundError:
                same = False  # a `down` removed the directory while we waited: take a new lock
            if same:
                break
            os.close(fd)
            proc.make_dir(self.dir, mode=0o755)
        try:
            yield
        finally:
            os.close(fd)

    # --- which parts -----------------------------------------------------------------------
    def expand(self, names: list[str] | None) -> list[str]:
        """Part names (groups like `ssh` expanded) in start order; all parts for None."""
        if not names:
            return list(PART_NAMES)
        wanted = set()
        for name in names:
            wanted.update(PART_GROUPS.get(name, [name]))
        unknown = wanted - set(PART_NAMES)
        if unknown:
            raise proc.LabError(f"no part {', '.join(sorted(unknown))}")
        return [name for name in PART_NAMES if name in wanted]

    def with_requirements(self, names: list[str]) -> list[str]:
        """`names` plus `net` when one of them needs it (for `up`)."""
        needs_net = any(self.parts[name].needs_network for name in names)
        return self.expand([*names, "net"] if needs_net else names)

    def with_dependents(self, names: list[str]) -> list[str]:
        """`names` plus every part that cannot run without them (for `down`): with `net`, all
        parts on its bridge and namespaces."""
        if "net" not in names:
            return self.expand(names)
        return self.expand([*names, *(n for n, p in self.parts.items() if p.needs_network)])

    # --- commands --------------------------------------------------------------------------
    def state_of(self, name: str) -> str:
        part = self.parts[name]
        if not part.dir.exists():
            return "not built"
        return "running" if part.running() else "stopped"

    def up(self, names: list[str] | None = None, report=print) -> None:
        """Build and start the named parts (all for None) and what they need, when they are not
        running where PARTS places them; leave running ones alone. A stopped part is removed and
        rebuilt, keeping its recorded port and passwords. Idempotent."""
        names = self.with_requirements(self.expand(names))
        with self.locked():
            state = self.load()
            state.setdefault("secret_key", secrets.token_urlsafe(50))
            state.setdefault("fernet_key", Fernet.generate_key().decode())
            state["net"] = self.net.as_dict()
            records = state.setdefault("parts", {})
            self.retire(records, report)
            self.save(state)
            taken = {rec["port"] for rec in records.values() if "port" in rec}
            # A new bridge and new namespaces: whatever was built on the old ones is rebuilt too.
            net_rebuilt = "net" in names and not self.serves("net", records)
            if net_rebuilt:
                built = [n for n, p in self.parts.items() if p.needs_network and p.dir.exists()]
                names = self.expand([*names, *built])
            for name in names:
                part = self.parts[name]
                if self.serves(name, records) and not (net_rebuilt and part.needs_network):
                    report(f"{name:10} running      {part.address(records[name])}")
                    continue
                started = time.monotonic()
                old = records.get(name, {})
                self.stop_part(part, old)
                records[name] = rec = part.new_record(old, taken - {old.get("port")})
                if "port" in rec:
                    taken.add(rec["port"])
                self.save(state)
                self.build_part(part, rec, report)
                took = time.monotonic() - started
                report(f"{name:10} started      {part.address(rec):24} {took:5.1f} s")

    def serves(self, name: str, records: dict) -> bool:
        """The part runs, where PARTS places it now (not where an older lab put it)."""
        rec = records.get(name)
        return (
            bool(rec)
            and self.state_of(name) == "running"
            and rec["host"] == self.parts[name].host.address
        )

    def retire(self, records: dict, report) -> None:
        """Stop and forget parts recorded by an older version of the lab that PARTS no longer
        lists (say a server that moved to another part), so that none keeps running."""
        for name in [name for name in records if name not in PARTS]:
            directory = self.dir / name
            for pid in proc.processes_using(directory):
                proc.terminate(pid, None, f"retired part {name} process {pid}")
            if directory.exists():
                shutil.rmtree(directory)
            del records[name]
            report(f"{name:10} retired (no longer a part of the lab)")

    def build_part(self, part: Part, rec: dict, report=print) -> None:
        """Build and start one part; on failure stop what it started, so that no half-built
        part is left running. A failed build is reported and tried once more from nothing (two
        labs built at once on a busy machine have seen a server's first start fail); a second
        failure is raised."""
        for attempt in (1, 2):
            try:
                part.build(rec)
                return
            except Exception as e:
                with contextlib.suppress(Exception):
                    self.stop_part(part, rec)
                if attempt == 2:
                    raise proc.LabError(f"{part.name}: {e}") from e
                report(f"{part.name:10} FAILED, building it again from nothing: {e}")

    def down(self, names: list[str] | None = None, report=print) -> None:
        """Stop the named parts (all when None) and those that need them, and delete their
        directories; with all parts, delete LAB_DIR too. Returns once no process of theirs is
        left. The blackhole route stays (see net.py)."""
        if not self.dir.exists():
            self.parts["net"].stop_all({})  # namespaces marked with this LAB_DIR, if any
            report(f"lab is down ({self.dir} does not exist)")
            return
        everything = not names
        names = self.with_dependents(self.expand(names))
        with self.locked():
            state = self.load()
            records = state.get("parts", {})
            for name in reversed(names):
                part = self.parts[name]
                if part.dir.exists():
                    started = time.monotonic()
                    self.stop_part(part, records.get(name, {}))
                    report(f"{name:10} stopped {time.monotonic() - started:43.1f} s")
            if everything:
                self.remove_everything()
                report(f"lab is down ({self.dir} removed)")
            else:
                self.save(state)  # the records stay: a rebuild reuses ports and passwords

    def stop_part(self, part: Part, rec: dict) -> None:
        if part.dir.exists():
            part.stop_all(rec)
            part.remove()

    def remove_everything(self) -> None:
        daemons = [part.comm for part in self.parts.values() if part.comm]
        for pid in proc.processes_using(self.dir, daemons):
            proc.terminate(pid, None, f"leftover lab process {pid}")
        shutil.rmtree(self.dir)

    def status(self) -> list[tuple[str, str, str, str]]:
        """(part, state, host, address) for each part; state is running, stopped or not built."""
        records = self.load().get("parts", {}) if self.state_file.exists() else {}
        rows = []
        for name, part in self.parts.items():
            address = part.address(records[name]) if name in records else "-"
            rows.append((name, self.state_of(name), part.host.name, address))
        return rows

    def host_status(self) -> list[tuple[str, str, str, str, str]]:
        """(host, address, namespace, link, sshd) for each namespaced host: namespace present or
        missing, link up/down/missing (a cut host is down), sshd running or not."""
        rows = []
        for name, host in self.hosts.items():
            if not host.in_namespace:
                continue
            namespace = "present" if namespace_exists(host.namespace) else "missing"
            link = link_state(self.net.veth(name))
            sshd = [p for p in self.parts_on(name) if isinstance(p, Sshd)]
            ssh_state = "running" if sshd and sshd[0].running() else "not running"
            rows.append((name, host.address, namespace, link, ssh_state))
        return rows

    def env(self) -> dict[str, str]:
        """The variables of the lab contract, for every part that is built."""
        if not self.state_file.exists():
            raise proc.LabError(f"the lab is not up ({self.state_file} does not exist); run lab up")
        state = self.load()
        env = {
            "LAB_DIR": str(self.dir),
            "SECRET_KEY": state["secret_key"],
            "CONSOLE_SECRET_KEYS": state["fernet_key"],
            "DEBUG": "false",
            "LAB_NET": str(self.net.network),
            "LAB_PREFIX": self.net.prefix,
            "LAB_BRIDGE": self.net.bridge,
            "LAB_HOSTS": json.dumps(
                {name: h.address for name, h in self.hosts.items() if h.in_namespace}
            ),
        }
        for name, part in self.parts.items():
            if name in state["parts"] and part.dir.exists():
                env.update(part.env(state["parts"][name]))
        return env

    def leftovers(self) -> list[str]:
        """What is left of this lab after `down`, one line each; empty when nothing is: its
        directory, a process naming a file in it, its bridge, a host's namespace, link or
        /etc/netns directory. (The blackhole route is meant to stay.)"""
        found = [f"directory {self.dir} still exists"] if self.dir.exists() else []
        found += [f"process {pid} still running" for pid in proc.processes_using(self.dir)]
        if link_exists(self.net.bridge):
            found.append(f"link {self.net.bridge} still exists")
        for name, host in self.hosts.items():
            if not host.in_namespace:
                continue
            if namespace_exists(host.namespace):
                found.append(f"namespace {host.namespace} still exists")
            if link_exists(self.net.veth(name)):
                found.append(f"link {self.net.veth(name)} still exists")
            if (NETNS_ETC / host.namespace).exists():
                found.append(f"directory {NETNS_ETC / host.namespace} still exists")
        return found

    def missing(self) -> list[str]:
        """Parts that are not running."""
        return [name for name in PART_NAMES if self.state_of(name) != "running"]
