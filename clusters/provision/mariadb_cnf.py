"""Where a provisioned MariaDB server keeps its files, and its option file (pure: no I/O).

Everything of one server lives under one base directory, so that two servers on one host (or
the lab's hosts, which share one filesystem) never meet, and nothing is read from /etc/mysql:

    <base>/my.cnf              the option file; every program is started with --defaults-file
    <base>/data/               the data directory (mariadb-install-db), owned by the service user
    <base>/run/mariadbd.sock   the socket, and run/mariadbd.pid
    <base>/log/error.log       log-error, in a directory the service user can write (else the
                               server logs nothing and says nothing about it)
    <base>/files/              secure-file-priv: the only place server-side file import and
                               export (LOAD DATA INFILE, SELECT … INTO OUTFILE) may touch
    <base>/mariadbd.out        what mariadbd writes to stdout/stderr before its log is open
"""

import ipaddress
import posixpath
import re
from dataclasses import dataclass

from clusters.mycnf import quote_value

# The settings of the security baseline and of a sane small server. local-infile=0 is what the
# baseline's mariadb.local_infile check reads back with my_print_defaults.
SERVER_SETTINGS = (
    ("local-infile", "0"),
    ("skip-name-resolve", None),  # accounts by address: no DNS at login, no stale names
    ("symbolic-links", "0"),
    ("character-set-server", "utf8mb4"),
    ("collation-server", "utf8mb4_general_ci"),
    ("max_connections", "100"),
)
WILDCARDS = ("0.0.0.0", "::")  # noqa: S104 - bind-address values meaning every address
_PATH = re.compile(r"^/[A-Za-z0-9._/-]+$")
_FORBIDDEN_ROOTS = ("/", "/etc", "/proc", "/sys", "/dev", "/run", "/boot", "/bin", "/sbin",
                    "/usr", "/lib", "/lib64", "/var", "/tmp", "/root", "/home")  # noqa: S108  # fmt: skip


def check_base_directory(path: str) -> str:
    """The base directory, normalised; ValueError (message for a person) when it is not a plain
    absolute path of its own: relative, with `..`, odd characters, or a system directory."""
    if not path or not _PATH.match(path):
        raise ValueError("an absolute path of letters, digits, '.', '_', '-' and '/' only")
    if ".." in path.split("/"):
        raise ValueError("no '..' in the path")
    normal = posixpath.normpath(path)
    if normal in _FORBIDDEN_ROOTS:
        raise ValueError(f"{normal} is a system directory; give the server a directory of its own")
    return normal


def check_bind_address(address: str) -> str:
    """An IPv4 or IPv6 address (what bind-address takes here); ValueError otherwise."""
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        raise ValueError(f"{address!r} is not an IP address") from None


@dataclass(frozen=True)
class Layout:
    base: str

    @property
    def cnf(self) -> str:
        return f"{self.base}/my.cnf"

    @property
    def data(self) -> str:
        return f"{self.base}/data"

    @property
    def run(self) -> str:
        return f"{self.base}/run"

    @property
    def socket(self) -> str:
        return f"{self.base}/run/mariadbd.sock"

    @property
    def pid_file(self) -> str:
        return f"{self.base}/run/mariadbd.pid"

    @property
    def log_dir(self) -> str:
        return f"{self.base}/log"

    @property
    def error_log(self) -> str:
        return f"{self.base}/log/error.log"

    @property
    def files(self) -> str:
        """secure-file-priv: LOAD DATA INFILE and SELECT … INTO OUTFILE stay in here."""
        return f"{self.base}/files"

    @property
    def out_log(self) -> str:
        return f"{self.base}/mariadbd.out"

    @property
    def system_tables(self) -> str:
        """A file mariadb-install-db writes last of all: present only after a whole init."""
        return f"{self.data}/mysql/global_priv.frm"

    def directories(self, service_user: str) -> list[tuple[str, str, str]]:
        """(path, owner, mode) of every directory, parents first."""
        return [
            (self.base, "root", "755"),
            (self.data, service_user, "750"),
            (self.run, service_user, "755"),
            (self.log_dir, service_user, "750"),
            (self.files, service_user, "750"),
        ]


def render_cnf(layout: Layout, *, bind_address: str, port: int, service_user: str) -> str:
    """The option file: [client] finds the socket (the mariadb client and mariadb-admin started
    with --defaults-file use it), [mysqld] holds the paths, the address and the baseline."""
    lines = [
        "# Written by dbconsole (MariaDB provisioning). Programs read it with",
        f"# --defaults-file={layout.cnf}; /etc/mysql is never read.",
        "[client]",
        f"socket = {quote_value(layout.socket)}",
        "",
        "[mysqld]",
        f"user = {quote_value(service_user)}",
        f"datadir = {quote_value(layout.data)}",
        f"socket = {quote_value(layout.socket)}",
        f"pid-file = {quote_value(layout.pid_file)}",
        f"log-error = {quote_value(layout.error_log)}",
        f"bind-address = {quote_value(bind_address)}",
        f"port = {int(port)}",
        f"secure-file-priv = {quote_value(layout.files)}",
    ]
    for name, value in SERVER_SETTINGS:
        lines.append(name if value is None else f"{name} = {quote_value(value)}")
    return "\n".join(lines) + "\n"
