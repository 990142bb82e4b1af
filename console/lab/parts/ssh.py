"""sshd with key-only login for root, its own host key, and a throwaway client key."""

from pathlib import Path

from console.lab import proc
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
X11Forwarding no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 50
Subsystem sftp internal-sftp
"""


class Sshd(Part):
    name = "ssh"
    comm = "sshd"
    description = "OpenSSH"

    @property
    def pid_file(self):
        return self.dir / "sshd.pid"

    @property
    def client_key(self) -> Path:
        return self.dir / "client_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    def build(self, rec: dict) -> None:
        proc.make_dir(self.dir, mode=0o700)
        proc.make_dir(Path("/run/sshd"), mode=0o755)  # sshd's privilege separation directory
        host_key = self.keygen("host_ed25519", "dbconsole-lab-host")
        self.keygen(self.client_key.name, "dbconsole-lab-client")
        client_pub = self.client_key.with_suffix(".pub").read_text()
        authorized_keys = proc.write_file(self.dir / "authorized_keys", client_pub, mode=0o600)
        key_type, key_b64 = host_key.with_suffix(".pub").read_text().split()[:2]
        known = f"[{rec['host']}]:{rec['port']} {key_type} {key_b64}\n"
        proc.write_file(self.known_hosts, known, mode=0o644)
        config = SSHD_CONFIG.format(
            host=rec["host"],
            port=rec["port"],
            host_key=host_key,
            pid_file=self.pid_file,
            authorized_keys=authorized_keys,
        )
        conf = proc.write_file(self.dir / "sshd_config", config, mode=0o600)
        proc.run(self.host.argv(["/usr/sbin/sshd", "-t", "-f", str(conf)]), timeout=30)
        log = self.dir / "sshd.log"
        argv = ["/usr/sbin/sshd", "-f", str(conf), "-E", str(log)]
        proc.run(self.host.argv(argv), timeout=30, new_session=True)
        proc.wait_for(
            lambda: self.running() and proc.port_open(rec["host"], rec["port"]),
            20,
            "sshd to accept connections",
        )

    def keygen(self, name: str, comment: str) -> Path:
        path = self.dir / name
        argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]
        proc.run(argv, timeout=30)
        path.chmod(0o600)
        return path

    def env(self, rec: dict) -> dict[str, str]:
        return {
            "LAB_SSH_HOST": rec["host"],
            "LAB_SSH_PORT": str(rec["port"]),
            "LAB_SSH_USER": "root",
            "LAB_SSH_KEY": str(self.client_key),
            "LAB_SSH_KNOWN_HOSTS": str(self.known_hosts),
        }
