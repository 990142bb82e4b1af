"""The steps of MariaDB provisioning that work on the host over SSH: detect the OS family,
install the package, make the directories, write the option file, initialise the data
directory, start the server, link the SQL history files to /dev/null.

Each step is a pair of plain functions of the provisioning context `p`
(clusters.provision.mariadb.ProvisionRun): `check_*` says whether the work is already there
(falsy: still to do; a text: what it found) and `apply_*` does it and says what it did. They
raise StepFailed with a message for a person when they cannot go on, and change nothing
before refusing.
"""

import posixpath
import shlex
import time

from django.conf import settings
from django.utils import timezone

from clusters.baseline.history import parse_passwd
from clusters.provision.mariadb_cnf import WILDCARDS, render_cnf
from clusters.provision.steps import StepFailed
from console.executor import CommandFailed

# OS families: how a package is found installed and installed. Debian is what the lab tests;
# Gentoo is shown and documented (emerge --noreplace does nothing for an installed package).
FAMILIES = {
    "debian": {
        "package": "mariadb-server",
        "installed": lambda pkg: ["dpkg-query", "--show", "--showformat=${Status}", pkg],
        "install": lambda pkg: ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install",
                                "--yes", "--quiet", "--no-install-recommends", pkg],
    },
    "gentoo": {
        "package": "dev-db/mariadb",
        "installed": lambda pkg: ["portageq", "has_version", "/", pkg],
        "install": lambda pkg: ["emerge", "--noreplace", "--quiet", pkg],
    },
}  # fmt: skip
INSTALL_TIMEOUT = 900
INIT_TIMEOUT = 180
START_DEADLINE = 60.0
POLL_INTERVAL = 0.3
HISTORY_FILES = (".mysql_history", ".mariadb_history")
# A fixed script, never built from input: it starts its arguments ("$@") detached from the SSH
# session (own session, stdin from /dev/null, output appended to the log given as $1) and prints
# the pid. Without the redirections sshd would keep the channel open until the server stops.
DETACH = 'log=$1; shift; setsid "$@" </dev/null >>"$log" 2>&1 & echo $!'


# Reads whose non-zero exit only means "not there yet" (a missing file, a server not up) pass
# job_log=False: still audited, kept out of the job's log, where they would read as failures.


# --- OS family -----------------------------------------------------------------------------


def parse_os_release(text: str) -> dict[str, str]:
    """The KEY=value pairs of /etc/os-release, quotes removed."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            try:
                values[key] = " ".join(shlex.split(value))
            except ValueError:
                values[key] = value.strip("'\"")
    return values


def os_family(release: dict[str, str]) -> str | None:
    ids = {release.get("ID", "").lower(), *release.get("ID_LIKE", "").lower().split()}
    for family in FAMILIES:
        if family in ids or (family == "debian" and "ubuntu" in ids):
            return family
    return None


def apply_detect_os(p) -> str:
    release = parse_os_release(p.sh(["cat", "/etc/os-release"]).stdout)
    family = os_family(release)
    name = release.get("PRETTY_NAME") or release.get("ID") or "an unknown system"
    if family is None:
        raise StepFailed(
            f"{p.host.name} runs {name}; supported OS families: Debian (apt-get) and Gentoo "
            "(emerge). Nothing was changed."
        )
    p.state["family"] = family
    p.state["package"] = p.params.package or FAMILIES[family]["package"]
    return f"{name}: {family} family, package {p.state['package']}"


# --- Package ---------------------------------------------------------------------------------


def check_installed(p) -> str:
    family, package = p.state["family"], p.state["package"]
    found = p.sh(FAMILIES[family]["installed"](package), check=False, ok_exits=(0, 1))
    if family == "debian":
        installed = found.exit_code == 0 and found.stdout.strip() == "install ok installed"
    else:
        installed = found.exit_code == 0
    return f"{package} is installed" if installed else ""


def apply_install(p) -> str:
    family, package = p.state["family"], p.state["package"]
    try:
        p.sh(FAMILIES[family]["install"](package), timeout=INSTALL_TIMEOUT)
    except CommandFailed as e:
        raise StepFailed(f"installing {package} failed: {e}") from None
    return f"installed {package}"


# --- Directories ---------------------------------------------------------------------------


def _stat(p, paths: list[str]) -> dict[str, tuple[str, str]]:
    """owner and octal mode of the paths that exist (`stat` skips missing ones with exit 1)."""
    out = p.sh(["stat", "--printf=%n\\t%U\\t%a\\n", "--", *paths], check=False, job_log=False)
    found = {}
    for line in out.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            found[parts[0]] = (parts[1], parts[2])
    return found


def _require_service_user(p) -> None:
    user = p.params.service_user
    if p.sh(["id", "-u", "--", user], check=False).exit_code != 0:
        raise StepFailed(
            f"the service user {user} does not exist on {p.host.name} (the package creates "
            "mysql); nothing was changed"
        )


def check_directories(p) -> str:
    wanted = p.layout.directories(p.params.service_user)
    found = _stat(p, [path for path, _owner, _mode in wanted])
    if all(found.get(path) == (owner, mode) for path, owner, mode in wanted):
        return f"{p.layout.base} and data/, run/, log/, files/ exist with their owners and modes"
    return ""


def apply_directories(p) -> str:
    """`install -d` once per owner and mode (it also fixes the owner and mode of a directory
    that exists); parents first, since the layout lists them first."""
    _require_service_user(p)
    groups: dict[tuple[str, str], list[str]] = {}
    for path, owner, mode in p.layout.directories(p.params.service_user):
        groups.setdefault((owner, mode), []).append(path)
    primary = {owner: p.sh(["id", "-gn", "--", owner]).stdout.strip() for owner, _ in groups}
    made = []
    for (owner, mode), paths in groups.items():
        p.sh(["install", "-d", "-o", owner, "-g", primary[owner], "-m", mode, "--", *paths])
        made.append(f"{', '.join(paths)} ({owner}, {mode})")
    return "made " + "; ".join(made)


# --- Option file -----------------------------------------------------------------------------


def expected_cnf(p) -> str:
    return render_cnf(p.layout, bind_address=p.params.bind_address, port=p.params.port,
                      service_user=p.params.service_user)  # fmt: skip


def check_cnf(p) -> str:
    found = p.sh(["cat", "--", p.layout.cnf], check=False, keep_output=False, job_log=False)
    if found.exit_code == 0 and found.stdout == expected_cnf(p):
        return f"{p.layout.cnf} holds the expected options (local-infile=0, bind-address)"
    return ""


def apply_cnf(p) -> str:
    """Written atomically: a mktemp file in the same directory, chmod 644, renamed over the
    option file; an option file that differs is kept as <file>.dbconsole-<time>.bak."""
    cnf = p.layout.cnf
    kept = ""
    if p.sh(["test", "-e", cnf], check=False, job_log=False, ok_exits=(0, 1)).exit_code == 0:
        kept = f"{cnf}.dbconsole-{timezone.now():%Y%m%dT%H%M%SZ}.bak"
        p.sh(["cp", "-p", "--", cnf, kept])
    tmp = p.sh(["mktemp", "-p", p.layout.base, ".my.cnf.dbconsole-XXXXXX"]).stdout.strip()
    try:
        p.sh(["dd", f"of={tmp}", "status=none"], input=expected_cnf(p))
        p.sh(["chmod", "644", "--", tmp])
        p.sh(["mv", "-f", "--", tmp, cnf])
    except CommandFailed:
        p.sh(["rm", "-f", "--", tmp], check=False)
        raise
    note = f" (the previous file is kept as {kept}; a running server reads it at its next start)"
    return f"wrote {cnf}" + (note if kept else "")


# --- Data directory --------------------------------------------------------------------------


def check_initialised(p) -> str:
    found = p.sh(
        ["test", "-f", p.layout.system_tables], check=False, job_log=False, ok_exits=(0, 1)
    )
    if found.exit_code == 0:
        return f"{p.layout.data} holds the system tables"
    return ""


def apply_initialise(p) -> str:
    listed = p.sh(["find", p.layout.data, "-mindepth", "1", "-maxdepth", "1", "-print", "-quit"])
    if listed.stdout.strip():
        raise StepFailed(
            f"{p.layout.data} is not empty but has no system tables (an earlier initialisation "
            "stopped half way, or another server's files): look at it, empty it by hand, then "
            "re-run. Nothing was changed."
        )
    argv = ["mariadb-install-db", f"--defaults-file={p.layout.cnf}",
            f"--user={p.params.service_user}",
            "--auth-root-authentication-method=socket"]  # fmt: skip
    try:
        p.sh(argv, timeout=INIT_TIMEOUT)
    except CommandFailed as e:
        raise StepFailed(f"mariadb-install-db failed: {e}") from None
    return f"initialised {p.layout.data} (root@localhost by unix_socket)"


# --- Server ----------------------------------------------------------------------------------


def _ping(p):
    argv = ["mariadb-admin", f"--defaults-file={p.layout.cnf}", "--connect-timeout=3", "ping"]
    return p.sh(argv, check=False, job_log=False, ok_exits=(0, 1))  # 1: not answering


def check_running(p) -> str:
    if _ping(p).exit_code != 0:
        return ""
    pid = p.sh(["cat", "--", p.layout.pid_file], check=False).stdout.strip()
    return f"mariadbd answers on {p.layout.socket}" + (f" (pid {pid})" if pid.isdigit() else "")


def parse_listeners(ss_output: str) -> list[tuple[str, int, str]]:
    """(address, port, process) of each listening TCP socket in `ss -Hltnp` output."""
    found = []
    for line in ss_output.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local = fields[3]
        address, _, port = local.rpartition(":")
        if not port.isdigit():
            continue
        address = address.strip("[]").split("%", 1)[0]
        process = fields[5] if len(fields) > 5 else ""
        found.append((address, int(port), process))
    return found


def _port_holder(p) -> str:
    """What already listens on the server's port at its address (or on every address)."""
    listening = parse_listeners(p.sh(["ss", "-Hltnp"]).stdout)
    wanted = {p.params.bind_address, *WILDCARDS, "*"}
    if p.params.bind_address in WILDCARDS:
        wanted = {address for address, _port, _proc in listening}
    for address, port, process in listening:
        if port == p.params.port and address in wanted:
            return f"{address}:{port} {process}".strip()
    return ""


def _require_address(p) -> None:
    address = p.params.bind_address
    if address in WILDCARDS:
        return
    shown = p.sh(["ip", "-o", "address", "show"]).stdout
    mine = {f.split("/", 1)[0] for line in shown.splitlines() for f in line.split()[3:4]}
    if address not in mine:
        raise StepFailed(
            f"{address} is not an address of {p.host.name} ({', '.join(sorted(mine))}); "
            "nothing was started"
        )


def apply_start(p) -> str:
    _require_address(p)
    holder = _port_holder(p)
    if holder:
        raise StepFailed(
            f"port {p.params.port} on {p.params.bind_address} is already in use ({holder}); "
            "nothing was started. Stop what holds it or choose another port, then re-run."
        )
    argv = ["sh", "-c", DETACH, "sh", p.layout.out_log, "mariadbd",
            f"--defaults-file={p.layout.cnf}", f"--user={p.params.service_user}"]  # fmt: skip
    pid = p.sh(argv).stdout.strip()
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if _ping(p).exit_code == 0:
            return f"started mariadbd (pid {pid}), answering on {p.layout.socket}"
        if pid.isdigit() and p.sh(["kill", "-0", pid], check=False, job_log=False).exit_code:
            raise StepFailed(f"mariadbd stopped at once; its error log says:\n{_log_tail(p)}")
        time.sleep(POLL_INTERVAL)  # polling the server, with a deadline
    raise StepFailed(
        f"mariadbd (pid {pid}) did not answer within {START_DEADLINE:g} s; it is left running "
        f"for a person to look at. Its error log says:\n{_log_tail(p)}"
    )


def _log_tail(p) -> str:
    tail = p.sh(["tail", "-n", "15", "--", p.layout.error_log, p.layout.out_log], check=False)
    return tail.stdout.strip()[-1500:] or "(nothing)"


# --- History files ----------------------------------------------------------------------------


def _history_paths(p) -> tuple[list[dict], list[str]]:
    """The history files to link: ~/.mysql_history and ~/.mariadb_history of root, of the
    service user and of every other user the baseline's history check covers (a login shell
    and a home directory; BASELINE_HISTORY_IGNORE_USERS left out), with each one's state;
    and notes on users without a home directory."""
    users = parse_passwd(p.sh(["getent", "passwd"]).stdout)
    always = {"root", p.params.service_user}
    ignore = set(settings.BASELINE_HISTORY_IGNORE_USERS) - always
    users = [u for u in users if u.name not in ignore and u.home.startswith("/") and u.home != "/"]
    homes = sorted({u.home for u in users})
    paths = [posixpath.join(h, f) for h in homes for f in HISTORY_FILES]
    # A read that exits 1 for every missing path: audited, kept out of the job's log.
    out = p.sh(["find", *homes, *paths, "-maxdepth", "0", "-printf", "%y\\t%l\\t%p\\n"],
               check=False, job_log=False)  # fmt: skip
    stats = {}
    for line in out.stdout.splitlines():
        kind, target, path = (line.split("\t") + ["", ""])[:3]
        stats[path] = (kind, target)
    files, notes = [], []
    for user in users:
        if stats.get(user.home, ("",))[0] != "d":
            if user.name in always:
                notes.append(f"{user.name} has no home directory ({user.home}): nothing to link")
            continue
        wanted = user.name in always or user.interactive
        for name in HISTORY_FILES:
            path = posixpath.join(user.home, name)
            kind, target = stats.get(path, ("", ""))
            if not wanted and not kind:
                continue
            ok = kind == "l" and target == "/dev/null"
            files.append({"user": user.name, "uid": user.uid, "gid": user.gid, "path": path,
                          "kind": kind, "ok": ok})  # fmt: skip
    return files, notes


def check_history(p) -> str:
    files, notes = _history_paths(p)
    if all(f["ok"] for f in files):
        users = sorted({f["user"] for f in files})
        return "; ".join([f"history files of {', '.join(users)} link to /dev/null", *notes])
    return ""


def apply_history(p) -> str:
    files, notes = _history_paths(p)
    directories = [f["path"] for f in files if f["kind"] == "d"]
    if directories:
        raise StepFailed(f"{', '.join(directories)}: a directory, not a file; remove it by hand")
    linked: dict[str, list[str]] = {}  # owner uid:gid -> its links
    for f in files:
        if not f["ok"]:
            p.sh(["ln", "-sfn", "--", "/dev/null", f["path"]])  # the link itself, never followed
            linked.setdefault(f"{f['uid']}:{f['gid']}", []).append(f["path"])
    for owner, paths in linked.items():
        p.sh(["chown", "-h", owner, "--", *paths])
    done = [path for paths in linked.values() for path in paths]
    return "; ".join(["linked to /dev/null: " + ", ".join(done), *notes])
