"""Process, port and file helpers of the lab. No Django, no network beyond loopback.

Waiting is always polling with a deadline. A killed daemon here is reaped by PID 1 only after a
few seconds, so a zombie counts as gone.
"""

import grp
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path


class LabError(Exception):
    """A part of the lab could not be built, started or stopped; the message says why."""


def wait_for(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    """Poll `check` until it returns true; raise LabError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


def run(
    argv: Sequence[str],
    *,
    user: str | None = None,
    timeout: float = 60,
    cwd: str | Path = "/",
    new_session: bool = False,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run a short command to completion (optionally as `user`, with `input` on its stdin);
    raise LabError with its output when it fails or overruns `timeout`."""
    # Without input, stdin is /dev/null: a daemon it starts must not hold the caller's terminal.
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    try:
        return subprocess.run(
            list(argv),
            check=True,
            timeout=timeout,
            **stdin,
            capture_output=True,
            text=True,
            cwd=cwd,
            start_new_session=new_session,
            **as_user(user),
        )
    except subprocess.CalledProcessError as e:
        # stderr last: the tail kept is where a program says why it failed.
        output = (e.stdout or "").strip() + "\n" + (e.stderr or "").strip()
        raise LabError(f"{argv[0]} exited {e.returncode}: {output.strip()[-2000:]}") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{argv[0]} did not finish within {timeout:g} s") from None


def spawn(argv: Sequence[str], *, log: Path, user: str | None = None) -> subprocess.Popen:
    """Start a long-running process in its own session, detached from the caller's terminal and
    process group, with stdout and stderr appended to `log`. It outlives the calling command."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd="/",
            start_new_session=True,
            **as_user(user),
        )


def as_user(user: str | None) -> dict:
    """subprocess keyword arguments that drop to `user`, its primary group and no other group."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {
        "user": entry.pw_uid,
        "group": entry.pw_gid,
        "extra_groups": [],
        "env": {
            "HOME": entry.pw_dir,
            "USER": user,
            "LOGNAME": user,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
        },
    }


def make_dir(path: Path, *, owner: str = "root", mode: int = 0o755) -> Path:
    """Create `path` (and missing parents as root, 0755) owned by `owner` with `mode`."""
    path.mkdir(parents=True, exist_ok=True)
    chown(path, owner)
    path.chmod(mode)
    return path


def write_file(path: Path, text: str, *, owner: str = "root", mode: int = 0o644) -> Path:
    """Write `text` to `path` created with `mode` from the start (never briefly readable)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    chown(path, owner)
    path.chmod(mode)
    return path


def chown(path: Path, owner: str, group: str | None = None) -> None:
    entry = pwd.getpwnam(owner)
    gid = grp.getgrnam(group).gr_gid if group else entry.pw_gid
    os.chown(path, entry.pw_uid, gid)


def free_port(
    preferred: int | None = None, taken: set[int] | None = None, address: str = "127.0.0.1"
) -> int:
    """A TCP port free on `address`: `preferred` when it is free, else one the kernel picks."""
    taken = taken or set()
    if preferred and preferred not in taken and port_free(preferred, address):
        return preferred
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((address, 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port


def port_free(port: int, address: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def unix_socket_open(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def read_pid(pid_file: Path) -> int | None:
    """The pid in a pid file (first line, digits only), or None when there is none."""
    try:
        first = pid_file.read_bytes().split(b"\n", 1)[0]
    except (FileNotFoundError, NotADirectoryError):
        return None
    digits = bytes(c for c in first if 48 <= c <= 57)
    return int(digits) if digits else None


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of `pid` (R, S, Z...), or None when there is no process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[0]


def alive(pid: int | None, comm: str | None = None) -> bool:
    """True when `pid` runs and is not a zombie; with `comm`, only when its name starts so
    (a recycled pid of another program is not ours)."""
    if not pid or process_state(pid) in (None, "Z", "X"):
        return False
    if comm is None:
        return True
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().startswith(comm[:15])
    except FileNotFoundError:
        return False


def terminate(pid: int | None, comm: str | None, what: str, timeout: float = 20) -> None:
    """SIGTERM `pid` (if it is still ours), wait until it is gone, SIGKILL after `timeout`."""
    if not alive(pid, comm):
        return
    signal_quietly(pid, signal.SIGTERM)
    try:
        wait_for(lambda: not alive(pid), timeout, f"{what} (pid {pid}) to stop")
    except LabError:
        signal_quietly(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid), 10, f"{what} (pid {pid}) to die after SIGKILL")


def signal_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def processes_using(path: Path, daemons: Collection[str] = ()) -> list[int]:
    """Live processes whose command line names a file under `path`, and processes of the
    `daemons` (by name) working in it; never this process or its ancestors."""
    needle = str(path).rstrip("/") + "/"
    ours = ancestors()
    found = []
    for pid in live_pids():
        if pid in ours:
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(f"/proc/{pid}/cwd") + "/"
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if needle in cmdline or (cwd.startswith(needle) and comm in daemons):
            found.append(pid)
    return found


def descendants(pid: int) -> list[int]:
    """Live descendants of `pid` (an sshd's sessions, say), children before grandchildren."""
    children: dict[int, list[int]] = {}
    for child in live_pids():
        try:
            stat = Path(f"/proc/{child}/stat").read_text()
        except OSError:
            continue
        children.setdefault(int(stat.rpartition(")")[2].split()[1]), []).append(child)
    found, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue.extend(children.get(child, []))
    return found


def live_pids() -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and alive(int(e.name))]


def ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        except (FileNotFoundError, IndexError, ValueError):
            break
    return pids


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file, or a note that there is none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"
