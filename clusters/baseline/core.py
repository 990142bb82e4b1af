"""What every baseline check shares: verdicts, the check record, refusals and failures of a fix,
the Probe (the node's remote reads and writes through the executor, reads cached), the quoting
of MySQL accounts including the anonymous one, and the atomic replacement of a remote file."""

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils import timezone

from console.executor import ExecutorError, HostUnreachable, run_command, run_sql
from console.executor.sql import quote_mysql_account

PASS, FAIL, REVIEW, ERROR = "pass", "fail", "review", "error"
LABEL = "baseline"
TIMEOUT = 20  # seconds, each statement and command


class FixRefused(Exception):
    """The fix would do harm or cannot be made here; nothing was changed. Message for a DBA."""


class FixFailed(Exception):
    """A step of the fix failed; what was done has been undone. Message for a DBA."""


@dataclass
class Verdict:
    status: str
    evidence: str
    fixable: bool = False  # an automatic fix exists and applies to what was found
    data: dict = field(default_factory=dict)  # what a fix acts on (accounts, users, files)


@dataclass(frozen=True)
class Check:
    key: str
    service: str  # Node.Service value
    title: str
    evaluate: Callable[["Probe"], Verdict]
    fix: Callable[["Probe", Verdict], str] | None = None
    fix_label: str = ""  # the button: what the fix does, in a few words
    fix_there: str = ""  # "hba" or "settings": the page where a person fixes this instead

    @property
    def has_fix(self) -> bool:  # for templates, which would call `fix`
        return self.fix is not None


def quote_account(user: str, host: str) -> str:
    """`quote_mysql_account`, also for the anonymous user (''), which it refuses by design: the
    empty user is written as the string '' (no character in it to escape under any sql_mode)
    and the host quoted by the executor's helper."""
    if user:
        return quote_mysql_account(user, host)
    return "''@" + quote_mysql_account("_", host).split("@", 1)[1]


class Probe:
    """The remote reads and writes of one node during one run, through the executor, with the
    reads cached. The first unreachable server marks the probe down: later SQL fails at once
    with the same reason instead of trying again."""

    def __init__(self, node, *, actor=None, job=None, label: str = LABEL):
        self.node = node
        self.actor = actor
        self.job = job
        self.label = label
        self.down = ""
        self._cache: dict = {}

    def _target(self):
        return self.node.mysql_target() if self.node.service == "mariadb" else self.node.pg_target()

    def rows(self, query, params=None) -> list[dict]:
        key = ("sql", str(query), tuple(params or ()))
        if key not in self._cache:
            result = self.execute(query, params)
            self._cache[key] = [dict(zip(result.columns, r, strict=True)) for r in result.rows]
        return self._cache[key]

    def execute(self, query, params=None):
        if self.down:
            raise HostUnreachable(self.down)
        try:
            return run_sql(self._target(), query, params, actor=self.actor, job=self.job,
                           label=self.label, timeout=TIMEOUT)  # fmt: skip
        except HostUnreachable as e:
            self.down = str(e)
            raise

    def command(self, argv: list[str], *, cached: bool = False, **kwargs):
        """Run argv over SSH (as root: through sudo when the node's SSH user is not root)."""
        key = ("cmd", tuple(argv))
        if cached and key in self._cache:
            return self._cache[key]
        sudo = None if self.node.ssh_user == "root" else "root"
        result = run_command(self.node, argv, actor=self.actor, job=self.job, label=self.label,
                             timeout=TIMEOUT, sudo_user=sudo, **kwargs)  # fmt: skip
        if cached:
            self._cache[key] = result
        return result

    def forget(self) -> None:
        self._cache.clear()


def replace_file(probe: Probe, path: str, text: str) -> str:
    """Replace a remote file atomically, keeping its owner and mode: copy it to a backup next to
    it, write a temporary file in the same directory (mktemp: new, private), give it the
    original's owner and mode, rename it over the original. Returns the backup's path. The
    names end in .bak/.tmp-like suffixes, never .cnf, so an !includedir does not read them."""
    directory, base = posixpath.split(path)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    backup = f"{path}.dbconsole-{stamp}.bak"
    probe.command(["cp", "-p", "--", path, backup])
    tmp = probe.command(["mktemp", "-p", directory, f".{base}.dbconsole-XXXXXX"]).stdout.strip()
    try:
        probe.command(["dd", f"of={tmp}", "status=none"], input=text)
        probe.command(["chown", f"--reference={path}", "--", tmp])
        probe.command(["chmod", f"--reference={path}", "--", tmp])
        probe.command(["mv", "-f", "--", tmp, path])
    except ExecutorError:
        probe.command(["rm", "-f", "--", tmp], check=False)
        raise
    return backup


def restore_file(probe: Probe, backup: str, path: str) -> None:
    probe.command(["cp", "-p", "--", backup, path])
