"""What provisioning steps do on a host, through the executor only: run a command (as root or as
the postgres OS user), read and write files atomically, detect the OS family, install a package,
start a server after checking its port. Each function raises an ExpectedFailure with a message
for a person (ExecutorError from the executor, StepFailed from here).

Files are written as hba.py writes pg_hba.conf: the text goes through the command's standard
input (never its argv, so it is not in the audit entry), into a temporary file in the same
directory, which gets its owner and mode and is then renamed over the target.
"""

import posixpath
import re
import time

from console import audit
from console.executor import CommandFailed, run_command

from .steps import StepFailed

PG_USER = "postgres"
LABEL = "provision"
# The server packages and binary directories per OS family. Gentoo is shown and documented
# only: the lab has Debian hosts. (dev-db/postgresql-server was merged into dev-db/postgresql.)
OS_FAMILIES = ("debian", "gentoo")


def package_name(family: str, version: str) -> str:
    return {"debian": f"postgresql-{version}", "gentoo": f"dev-db/postgresql:{version}"}[family]


def bin_dir(family: str, version: str) -> str:
    return {
        "debian": f"/usr/lib/postgresql/{version}/bin",
        "gentoo": f"/usr/lib64/postgresql-{version}/bin",
    }[family]


def install_argv(family: str, package: str) -> list[str]:
    if family == "gentoo":
        return ["emerge", "--quiet", "--noreplace", package]
    return ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", package]


class Host:
    """A node reached over SSH for one job: runs commands there, audited and in the job log."""

    def __init__(self, node, *, job=None, actor=None, secrets=()):
        self.node = node
        self.job = job
        self.actor = actor
        self.secrets = tuple(secrets)

    @property
    def name(self) -> str:
        return self.node.name

    def run(self, argv, *, as_postgres=False, check=True, input=None, timeout=120, secrets=(),
            **kw):  # fmt: skip
        kw.setdefault("job_log", check)  # probes (check=False) are audited, not in the job log
        return run_command(
            self.node,
            argv,
            actor=self.actor,
            job=self.job,
            action=audit.PROVISION_COMMAND,
            label=LABEL,
            sudo_user=PG_USER if as_postgres else None,
            check=check,
            input=input,
            timeout=timeout,
            secrets=(*self.secrets, *secrets),
            **kw,
        )

    def ok(self, argv, **kw) -> bool:
        """A yes/no probe (test, grep -q): exit 1 is the answer no, audited as succeeded."""
        return self.run(argv, check=False, ok_exits=(0, 1), **kw).exit_code == 0

    def read(self, path: str) -> str | None:
        """The file's text, or None when it does not exist."""
        result = self.run(["cat", "--", path], check=False, keep_output=False)
        if result.exit_code != 0:
            if "No such file" in result.stderr:
                return None
            raise StepFailed(f"cannot read {path} on {self.name}: {result.stderr.strip()}")
        return result.stdout

    def write(self, path: str, text: str, *, owner=PG_USER, mode="600") -> None:
        """Replace `path` atomically with `text` (temp file in the same directory, renamed)."""
        directory, name = posixpath.split(path)
        temp = posixpath.join(directory, f".{name}.dbconsole-{self.job.pk if self.job else 0}.tmp")
        try:
            self.run(["dd", f"of={temp}", "status=none"], input=text)
            self.run(["chown", f"{owner}:{owner}", "--", temp])
            self.run(["chmod", mode, "--", temp])
            self.run(["mv", "-f", "-T", "--", temp, path])
        except CommandFailed:
            self.run(["rm", "-f", "--", temp], check=False)
            raise

    def append_line(self, path: str, line: str) -> None:
        """Add `line` at the end of `path` unless the file has it already."""
        if self.ok(["grep", "-qxF", "--", line, path]):
            return
        self.run(["dd", f"of={path}", "oflag=append", "conv=notrunc", "status=none"],
                 input=f"\n{line}\n")  # fmt: skip

    def os_family(self) -> tuple[str, str]:
        """('debian' or 'gentoo', PRETTY_NAME) from /etc/os-release; StepFailed for others."""
        text = self.read("/etc/os-release") or ""
        fields = parse_os_release(text)
        ids = {fields.get("ID", "")} | set(fields.get("ID_LIKE", "").split())
        pretty = fields.get("PRETTY_NAME", fields.get("ID", "unknown"))
        for family in OS_FAMILIES:
            if family in ids or (family == "debian" and "ubuntu" in ids):
                return family, pretty
        raise StepFailed(f"{self.name} runs {pretty}: only Debian and Gentoo are supported")

    def package_installed(self, family: str, package: str) -> str | bool:
        if family == "gentoo":
            result = self.run(["qlist", "-ICv", package], check=False)
            return result.stdout.strip() or False
        result = self.run(["dpkg-query", "-W", "-f=${Status} ${Version}", package], check=False,
                          ok_exits=(0, 1))  # exit 1: not installed, an answer  # fmt: skip
        words = result.stdout.split()
        if words[:3] == ["install", "ok", "installed"]:
            return f"{package} {words[3] if len(words) > 3 else ''} is installed".strip()
        return False

    def install_package(self, family: str, package: str) -> str:
        if family == "debian":
            policy = self.run(["apt-cache", "policy", "--", package], check=False)
            candidate = re.search(r"Candidate:\s*(\S+)", policy.stdout)
            if not candidate or candidate.group(1) == "(none)":
                raise StepFailed(
                    f"package {package} is not known to the package sources of {self.name} "
                    "(apt-cache policy shows no candidate): check the name or the host's "
                    "sources, then re-run"
                )
        try:
            self.run(install_argv(family, package), timeout=900)
        except CommandFailed as e:
            raise StepFailed(f"installing {package} on {self.name} failed: {e}") from None
        return f"installed {package}"

    def listeners(self, port: int) -> list[str]:
        """What listens on TCP `port` on the host: 'address:port by process' lines."""
        result = self.run(["ss", "-H", "-ltnp", f"sport = :{port}"], check=False)
        found = []
        for line in result.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 4:
                who = re.search(r'users:\(\("([^"]+)"', line)
                found.append(f"{parts[3]} by {who.group(1) if who else 'an unknown process'}")
        return found

    def wait_for(self, predicate, timeout: float, what: str, step: float = 0.5):
        """Poll `predicate` until it returns something truthy; StepFailed after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise StepFailed(f"{what} did not happen within {timeout:g} s")
            time.sleep(step)


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines of /etc/os-release, values unquoted."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            fields[key] = value.strip().strip('"').strip("'")
    return fields


def conf_string(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def pgpass_field(value: str) -> str:
    """A field of a .pgpass line (':' and '\\' escaped)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")
