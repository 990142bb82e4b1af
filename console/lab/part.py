"""What every part of the lab (one server) provides. Hosts are in net.py."""

import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from console.lab import proc
from console.lab.net import Host

if TYPE_CHECKING:
    from console.lab.lab import Lab


LOCALHOST = Host("local")


def new_password() -> str:
    """A random password made of URL-safe characters (no quoting needed in URLs or configs)."""
    return secrets.token_urlsafe(18)


class Part:
    """One server of the lab, living in LAB_DIR/<name>.

    A part's record (a small dict kept in lab.json) holds its port and passwords. The record
    survives `down <part>` so that a rebuilt part keeps its address and credentials, and the
    environment that tests loaded stays valid. A part runs on one host (lab.py's PARTS): on a
    namespaced host it listens on its standard `port`; in the root namespace on a free port.
    """

    name: str  # the class's default; an instance placed on several hosts gets its own (ssh-db1)
    comm: ClassVar[str]  # the daemon's process name, to tell our pid from a recycled one
    description: ClassVar[str]
    port: ClassVar[int | None] = None  # the standard port, used on a namespaced host

    def __init__(self, lab: "Lab", host: Host = LOCALHOST, name: str | None = None):
        self.lab = lab
        self.host = host
        self.name = name or type(self).name

    @property
    def needs_network(self) -> bool:
        """True when the part cannot run without the `net` part (its bridge or namespace)."""
        return self.host.name != LOCALHOST.name

    @property
    def dir(self) -> Path:
        return self.lab.dir / self.name

    @property
    def pid_file(self) -> Path:
        raise NotImplementedError

    def new_record(self, old: dict, taken: set[int]) -> dict:
        """The record for a (re)build: the old port and secrets when still usable, else new."""
        if self.host.in_namespace and self.port:
            return {"host": self.host.address, "port": self.port}
        port = proc.free_port(old.get("port"), taken, self.host.address)
        return {"host": self.host.address, "port": port}

    def build(self, rec: dict) -> None:
        """Create the part's files from nothing and start it; return once it serves."""
        raise NotImplementedError

    def start(self, rec: dict) -> None:
        """Start the built part again after `stop` (its data kept); return once it serves."""
        raise NotImplementedError

    def pid(self) -> int | None:
        return proc.read_pid(self.pid_file)

    def running(self) -> bool:
        return proc.alive(self.pid(), self.comm)

    def stop(self, rec: dict) -> None:
        """Stop the daemon and wait until it is gone (a zombie counts as gone)."""
        proc.terminate(self.pid(), self.comm, self.name)

    def stop_all(self, rec: dict) -> None:
        """Stop the daemon, then whatever it had started and left behind (an sshd's sessions and
        their commands), then anything else still running from the part's directory."""
        pid = self.pid()
        children = proc.descendants(pid) if proc.alive(pid, self.comm) else []
        self.stop(rec)
        leftovers = children + proc.processes_using(self.dir, daemons=[self.comm])
        for child in dict.fromkeys(leftovers):
            proc.terminate(child, None, f"{self.name} leftover process {child}")

    def remove(self) -> None:
        """Delete the part's directory (stop_all first)."""
        if self.dir.exists():
            shutil.rmtree(self.dir)

    def address(self, rec: dict) -> str:
        return f"{rec['host']}:{rec['port']}"

    def env(self, rec: dict) -> dict[str, str]:
        """The variables of the lab contract that this part provides."""
        return {}
