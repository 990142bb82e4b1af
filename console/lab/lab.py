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
from console.lab.part import Part
from console.lab.parts.ldap import Slapd
from console.lab.parts.mariadb import MariaDB
from console.lab.parts.postgres import ManagedPostgres, MetaCluster
from console.lab.parts.redis import Redis
from console.lab.parts.ssh import Sshd

DEFAULT_LAB_DIR = "/var/lib/dbconsole-lab"
PACKAGES_FILE = Path(__file__).with_name("packages.txt")
PART_CLASSES: list[type[Part]] = [MetaCluster, ManagedPostgres, Redis, MariaDB, Slapd, Sshd]
PART_NAMES = [cls.name for cls in PART_CLASSES]


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


class Lab:
    """All parts of the lab, their records and the lab-wide secrets, in one directory."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.state_file = directory / "lab.json"
        self.parts: dict[str, Part] = {cls.name: cls(self) for cls in PART_CLASSES}

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

    # --- commands --------------------------------------------------------------------------
    def state_of(self, name: str) -> str:
        part = self.parts[name]
        if not part.dir.exists():
            return "not built"
        return "running" if part.running() else "stopped"

    def up(self, names: list[str], report=print) -> None:
        """Build and start the named parts that are not running; leave running ones alone.
        A stopped part is removed and rebuilt, keeping its recorded port and passwords."""
        with self.locked():
            state = self.load()
            state.setdefault("secret_key", secrets.token_urlsafe(50))
            state.setdefault("fernet_key", Fernet.generate_key().decode())
            records = state.setdefault("parts", {})
            self.save(state)
            taken = {rec["port"] for rec in records.values() if "port" in rec}
            for name in names:
                part = self.parts[name]
                if self.state_of(name) == "running" and name in records:
                    report(f"{name:8} running      {part.address(records[name])}")
                    continue
                started = time.monotonic()
                old = records.get(name, {})
                self.stop_part(part, old)
                records[name] = rec = part.new_record(old, taken - {old.get("port")})
                taken.add(rec["port"])
                self.save(state)
                self.build_part(part, rec)
                took = time.monotonic() - started
                report(f"{name:8} started      {part.address(rec):22} {took:5.1f} s")

    def build_part(self, part: Part, rec: dict) -> None:
        """Build and start one part; on failure stop what it started, so that no half-built
        part is left running (a later `up` then rebuilds it)."""
        try:
            part.build(rec)
        except Exception as e:
            with contextlib.suppress(Exception):
                self.stop_part(part, rec)
            raise proc.LabError(f"{part.name}: {e}") from e

    def down(self, names: list[str] | None = None, report=print) -> None:
        """Stop the named parts (all when None) and delete their directories; with all parts,
        delete LAB_DIR too. Returns once no process of theirs is left."""
        if not self.dir.exists():
            report(f"lab is down ({self.dir} does not exist)")
            return
        with self.locked():
            state = self.load()
            records = state.get("parts", {})
            for name in reversed(names or PART_NAMES):
                part = self.parts[name]
                if part.dir.exists():
                    started = time.monotonic()
                    self.stop_part(part, records.get(name, {}))
                    report(f"{name:8} stopped {time.monotonic() - started:41.1f} s")
            if names is None:
                self.remove_everything()
                report(f"lab is down ({self.dir} removed)")
            else:
                self.save(state)  # the records stay: a rebuild reuses ports and passwords

    def stop_part(self, part: Part, rec: dict) -> None:
        if part.dir.exists():
            part.stop_all(rec)
            part.remove()

    def remove_everything(self) -> None:
        daemons = [part.comm for part in self.parts.values()]
        for pid in proc.processes_using(self.dir, daemons):
            proc.terminate(pid, None, f"leftover lab process {pid}")
        shutil.rmtree(self.dir)

    def status(self) -> list[tuple[str, str, str]]:
        """(part, state, address) for each part; state is running, stopped or not built."""
        records = self.load().get("parts", {}) if self.state_file.exists() else {}
        rows = []
        for name, part in self.parts.items():
            address = part.address(records[name]) if name in records else "-"
            rows.append((name, self.state_of(name), address))
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
        }
        for name, part in self.parts.items():
            if name in state["parts"] and part.dir.exists():
                env.update(part.env(state["parts"][name]))
        return env

    def missing(self) -> list[str]:
        """Parts that are not running."""
        return [name for name in PART_NAMES if self.state_of(name) != "running"]
