"""One sshd per host (parts ssh-db1, ssh-db2...): key-only login for root, the host's own key.

Keys live in LAB_DIR/keys and outlive a part's rebuild (only a full `lab down` deletes them), so
a host that was crashed and rebuilt presents the key the tests and the console recorded:

    keys/client_ed25519          the one lab client key every sshd accepts (LAB_SSH_KEY)
    keys/host_<host>_ed25519     each host's key
    keys/known_hosts.<host>      `10.77.0.21 ssh-ed25519 AAAA…`, as the executor fetches it
    keys/known_hosts             every host: `bare1,10.77.0.21 ssh-ed25519 AAAA…` (LAB_KNOWN_HOSTS)
"""

from pathlib import Path

from console.lab import proc
from console.lab.net import HOST_NAMES
from console.lab.part import Part

SSHD_CONFIG = """\
ListenAddress {host}:{port}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
StrictModes yes
UseDNS no
X11Forwarding no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 50
Subsystem sftp internal-sftp
"""
# The host whose sshd the LAB_SSH_* variables name (the executor's tests use it).
SSH_DEFAULT_HOST = "bare1"


class Sshd(Part):
    name = "ssh"
    comm = "sshd"
    description = "OpenSSH"
    port = 22

    @property
    def pid_file(self) -> Path:
        return self.dir / "sshd.pid"

    @property
    def keys(self) -> Path:
        return self.lab.dir / "keys"

    @property
    def client_key(self) -> Path:
        return self.keys / "client_ed25519"

    @property
    def host_key(self) -> Path:
        return self.keys / f"host_{self.host.name}_ed25519"

    @property
    def known_hosts(self) -> Path:
        """This host's key alone, in the form the executor's fetch_host_keys gives."""
        return self.keys / f"known_hosts.{self.host.name}"

    @property
    def all_known_hosts(self) -> Path:
        return self.keys / "known_hosts"

    @property
    def conf(self) -> Path:
        return self.dir / "sshd_config"

    def build(self, rec: dict) -> None:
        proc.make_dir(self.dir, mode=0o700)
        proc.make_dir(Path("/run/sshd"), mode=0o755)  # sshd's privilege separation directory
        self.ensure_keys(rec)
        client_pub = self.client_key.with_suffix(".pub").read_text()
        authorized_keys = proc.write_file(self.dir / "authorized_keys", client_pub, mode=0o600)
        config = SSHD_CONFIG.format(
            host=rec["host"],
            port=rec["port"],
            host_key=self.host_key,
            pid_file=self.pid_file,
            authorized_keys=authorized_keys,
        )
        proc.write_file(self.conf, config, mode=0o600)
        proc.run(self.host.argv(["/usr/sbin/sshd", "-t", "-f", str(self.conf)]), timeout=30)
        self.start(rec)

    def start(self, rec: dict) -> None:
        argv = ["/usr/sbin/sshd", "-f", str(self.conf), "-E", str(self.dir / "sshd.log")]
        proc.run(self.host.argv(argv, uts=True), timeout=30, new_session=True)
        proc.wait_for(
            lambda: self.running() and proc.port_open(rec["host"], rec["port"]),
            20,
            f"sshd on {self.host.name} to accept connections",
        )

    def ensure_keys(self, rec: dict) -> None:
        """The client key and every host's key, made once; known_hosts files rewritten from them
        (the same content each time)."""
        proc.make_dir(self.keys, mode=0o700)
        if not self.client_key.exists():
            keygen(self.client_key, "dbconsole-lab-client")
        lines = []
        for name in HOST_NAMES:
            key = self.keys / f"host_{name}_ed25519"
            if not key.exists():
                keygen(key, f"dbconsole-lab-{name}")
            key_type, key_b64 = key.with_suffix(".pub").read_text().split()[:2]
            address = self.lab.host(name).address
            pattern = address if rec["port"] == 22 else f"[{address}]:{rec['port']}"
            own = f"{pattern} {key_type} {key_b64}\n"
            proc.write_file(self.keys / f"known_hosts.{name}", own, mode=0o644)
            lines.append(f"{name},{own}")
        proc.write_file(self.all_known_hosts, "".join(lines), mode=0o644)

    def env(self, rec: dict) -> dict[str, str]:
        upper = self.host.name.upper()
        env = {
            f"LAB_{upper}_SSH_HOST": rec["host"],
            f"LAB_{upper}_SSH_PORT": str(rec["port"]),
            f"LAB_{upper}_SSH_KNOWN_HOSTS": str(self.known_hosts),
            "LAB_SSH_USER": "root",
            "LAB_SSH_KEY": str(self.client_key),
            "LAB_KNOWN_HOSTS": str(self.all_known_hosts),
        }
        if self.host.name == SSH_DEFAULT_HOST:
            env["LAB_SSH_HOST"] = rec["host"]
            env["LAB_SSH_PORT"] = str(rec["port"])
            env["LAB_SSH_KNOWN_HOSTS"] = str(self.known_hosts)
        return env


def keygen(path: Path, comment: str) -> Path:
    """A new ed25519 key pair at `path` (private, 0600) and `path`.pub."""
    argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]
    proc.run(argv, timeout=30)
    path.chmod(0o600)
    return path
