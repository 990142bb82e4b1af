"""The security baseline: checks of a MariaDB/MySQL or PostgreSQL server, and their fixes.

Each check reads the server through the executor only (SQL for the server's facts, SSH for
files) and returns a `Verdict`: pass, fail, review (a person must look) or error (the check
could not be made), with evidence written for a DBA. Checks of one node share a `Probe`, which
caches what was read, so a full pass costs a few statements and commands. A check with a fix
names it; the fix refuses before touching anything when it would do harm (the console's own
account, a `test` database holding tables), undoes what it did when a later step fails (the
config file backup), and is safe to run again. clusters.actions.baseline runs checks and fixes
as jobs and records results and audit entries.

MariaDB/MySQL (the mysql_secure_installation steps and more): local_infile off at run time and
in the option files; no anonymous accounts; root only from localhost; no `test` database nor
grants on it; every interactive OS user's ~/.mysql_history a link to /dev/null; no account
without a password; root authenticates by unix_socket or a password. The account queries use
mysql.global_priv (MariaDB 10.4 and later).

PostgreSQL: password_encryption is scram-sha-256; no `trust` for host connections; local
connections of postgres not `trust`; ssl; listen_addresses not '*' unless a rule admits every
address; superusers besides postgres listed for review. Rules and listen_addresses are fixed
on the pg_hba and settings pages, not here.
"""

import json
import posixpath
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone
from psycopg import sql

from clusters import mycnf
from console.executor import CommandFailed, ExecutorError, HostUnreachable, run_command, run_sql
from console.executor.sql import quote_mysql_account

PASS, FAIL, REVIEW, ERROR = "pass", "fail", "review", "error"
LABEL = "baseline"
TIMEOUT = 20  # seconds, each statement and command
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")  # as mysql_secure_installation
TEST_DB_PATTERNS = ("test", "test\\_%")  # mysql.db rows mysql_install_db creates
NO_LOGIN_SHELLS = ("nologin", "false", "sync", "shutdown", "halt")
MYSQLD_DEFAULT_FILES = ("/etc/my.cnf", "/etc/mysql/my.cnf")


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


# --- MariaDB / MySQL ---------------------------------------------------------------------------


def _my_facts(probe: Probe) -> dict:
    [row] = probe.rows("clusters:baseline-mariadb-facts")
    return row


def _current_account(probe: Probe) -> tuple[str, str]:
    user, _, host = str(_my_facts(probe)["current_account"]).rpartition("@")
    return user, host


def _accounts(probe: Probe) -> list[dict]:
    accounts = []
    for row in probe.rows("clusters:baseline-mariadb-accounts"):
        methods = [row["plugin"] or "mysql_native_password"]
        if row["auth_or"]:
            for alt in json.loads(row["auth_or"])[1:]:
                methods.append(alt.get("plugin") or "mysql_native_password")
        accounts.append({**row, "locked": bool(int(row["locked"] or 0)), "methods": methods})
    return accounts


def _account_list(accounts) -> str:
    return "\n".join(f"  {a['user'] or '(anonymous)'}@{a['host']}" for a in accounts)


@dataclass(frozen=True)
class MysqldOptions:
    """What the server reads at start: the option files' view (my_print_defaults with the
    process's own --defaults-* arguments) followed by its command line, and the main file."""

    defaults_args: tuple[str, ...]
    args: tuple[tuple[str, str | None], ...]
    main_file: str  # the file a fix edits ("" when none could be found)

    def value(self, name: str) -> str | None:
        return mycnf.effective_from_args(list(self.args), name)

    def reader(self) -> str:
        return shlex.join(["my_print_defaults", *self.defaults_args, "--mysqld"])


_DEFAULTS_ARGS = ("--defaults-file=", "--defaults-extra-file=", "--defaults-group-suffix=")


def mysqld_options(probe: Probe) -> MysqldOptions:
    """Read the running server's option sources over SSH: its pid (from @@pid_file), its
    command line (/proc), then `my_print_defaults` with the same --defaults-* arguments."""
    if "mysqld" in probe._cache:
        return probe._cache["mysqld"]
    pid = probe.command(["cat", "--", str(_my_facts(probe)["pid_file"])]).stdout.strip()
    if not pid.isdigit():
        raise FixRefused(f"the pid file holds {pid[:40]!r}, not a process id")
    cmdline = probe.command(["cat", "--", f"/proc/{pid}/cmdline"], keep_output=False)
    argv = [a for a in cmdline.stdout.split("\0") if a]
    defaults = tuple(a for a in argv[1:] if a.startswith(_DEFAULTS_ARGS) or a == "--no-defaults")
    printed = probe.command(["my_print_defaults", *defaults, "--mysqld"], keep_output=False)
    own = [(n, v) for n, v in mycnf.parse_print_defaults("\n".join(argv[1:]))]
    main = next((a.split("=", 1)[1] for a in defaults if a.startswith("--defaults-file=")), "")
    main = main or probe.node.config_file or _first_existing(probe, MYSQLD_DEFAULT_FILES)
    options = MysqldOptions(defaults, tuple(mycnf.parse_print_defaults(printed.stdout) + own), main)
    probe._cache["mysqld"] = options
    return options


def _first_existing(probe: Probe, paths) -> str:
    for path in paths:
        found = probe.command(["readlink", "-e", "--", path], check=False)
        if found.exit_code == 0 and found.stdout.strip():
            return found.stdout.strip()
    return ""


def check_local_infile(probe: Probe) -> Verdict:
    runtime = int(_my_facts(probe)["local_infile"])
    options = mysqld_options(probe)
    configured = options.value("local_infile")
    try:
        starts_on = mycnf.as_bool(configured)
    except ValueError:
        starts_on = True  # the server warns and takes OFF; we ask for an explicit 0
    lines = [f"@@local_infile = {'ON' if runtime else 'OFF'} (the running server)"]
    if configured is None:
        lines.append(f"option files: local_infile is not set, so the server starts with it ON "
                     f"(read with {options.reader()})")  # fmt: skip
    else:
        state = "ON" if starts_on else "OFF"
        lines.append(
            f"option files: local_infile={configured or '(bare, ON)'}: the server starts "
            f"with it {state} (read with {options.reader()})"
        )
    lines.append(f"config file a fix writes: {options.main_file or '(none found)'}")
    ok = not runtime and starts_on is False
    status = PASS if ok else FAIL
    return Verdict(status, "\n".join(lines), fixable=not ok and bool(options.main_file),
                   data={"runtime": runtime, "configured": configured})  # fmt: skip


def fix_local_infile(probe: Probe, verdict: Verdict) -> str:
    """Write local-infile=0 in [mysqld] of the main option file (atomically, with a backup),
    check that the server would now start with it off, then SET GLOBAL local_infile = 0.
    When a step fails the file is restored from the backup."""
    options = mysqld_options(probe)
    path = options.main_file
    if not path:
        raise FixRefused("the console could not find the option file the server reads")
    done = []
    backup = ""
    if options.value("local_infile") != "0":
        text = probe.command(["cat", "--", path], keep_output=False).stdout
        edited = mycnf.set_option(text, "mysqld", "local-infile", "0")
        backup = replace_file(probe, path, edited)
        done.append(f"wrote local-infile=0 in [mysqld] of {path} (backup: {backup})")
        probe.forget()
        if mysqld_options(probe).value("local_infile") != "0":
            restore_file(probe, backup, path)
            raise FixFailed(
                f"after writing {path}, another option file or group still sets local_infile "
                f"({mysqld_options(probe).reader()}); {path} was restored from {backup}. "
                "Remove the other setting by hand."
            )
    if verdict.data.get("runtime", 1):
        try:
            probe.execute("SET GLOBAL local_infile = 0")
        except ExecutorError as e:
            if backup:
                restore_file(probe, backup, path)
            restored = f"{path} was restored from {backup}" if backup else f"{path} was not changed"
            raise FixFailed(f"SET GLOBAL local_infile = 0 failed ({e}); {restored}") from e
        done.append("SET GLOBAL local_infile = 0")
    return "; ".join(done)


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


def check_anonymous(probe: Probe) -> Verdict:
    anonymous = [a for a in _accounts(probe) if a["user"] == ""]
    if not anonymous:
        return Verdict(PASS, "no anonymous account (user '') exists")
    text = "anonymous accounts let anyone log in without a name:\n" + _account_list(anonymous)
    return Verdict(FAIL, text, fixable=True,
                   data={"accounts": [(a["user"], a["host"]) for a in anonymous]})  # fmt: skip


def _refuse_own_account(probe: Probe, accounts) -> None:
    own = _current_account(probe)
    if tuple(own) in {tuple(a) for a in accounts}:
        raise FixRefused(
            f"the console connects to this server as {own[0] or '(anonymous)'}@{own[1]}, which "
            "this fix would remove or lock; give the console another account first. "
            "Nothing was changed."
        )


def _drop_accounts(probe: Probe, accounts) -> str:
    _refuse_own_account(probe, accounts)
    dropped = []
    for user, host in accounts:
        try:
            probe.execute(f"DROP USER IF EXISTS {quote_account(user, host)}")
        except ExecutorError as e:
            before = f"; already dropped: {', '.join(dropped)}" if dropped else ""
            raise FixFailed(
                f"DROP USER of {user or '(anonymous)'}@{host} failed: {e}{before}"
            ) from e
        dropped.append(f"{user or '(anonymous)'}@{host}")
    return "dropped " + ", ".join(dropped)


def fix_anonymous(probe: Probe, verdict: Verdict) -> str:
    return _drop_accounts(probe, verdict.data["accounts"])


def check_remote_root(probe: Probe) -> Verdict:
    remote = [a for a in _accounts(probe) if a["user"] == "root" and a["host"] not in LOCAL_HOSTS]
    if not remote:
        return Verdict(PASS, "root exists only for " + ", ".join(LOCAL_HOSTS) + " (or not at all)")
    text = "root may log in from other hosts:\n" + _account_list(remote)
    return Verdict(FAIL, text, fixable=True,
                   data={"accounts": [(a["user"], a["host"]) for a in remote]})  # fmt: skip


def fix_remote_root(probe: Probe, verdict: Verdict) -> str:
    return _drop_accounts(probe, verdict.data["accounts"])


def check_test_database(probe: Probe) -> Verdict:
    [db] = probe.rows("clusters:baseline-mariadb-testdb")
    grants = probe.rows("clusters:baseline-mariadb-testdb-grants", TEST_DB_PATTERNS)
    if not int(db["present"]) and not grants:
        return Verdict(PASS, "no `test` database and no grants on test or test\\_%")
    lines = []
    if int(db["present"]):
        lines.append(f"database `test` exists ({int(db['tables'])} tables)")
    lines += [f"mysql.db grants {g['db']} to {g['user'] or '(anonymous)'}@{g['host'] or '(any)'}"
              for g in grants]  # fmt: skip
    return Verdict(FAIL, "\n".join(lines), fixable=True,
                   data={"present": int(db["present"]), "tables": int(db["tables"])})  # fmt: skip


def fix_test_database(probe: Probe, verdict: Verdict) -> str:
    if verdict.data["tables"]:
        raise FixRefused(
            f"the `test` database holds {verdict.data['tables']} tables: someone uses it. Move or "
            "drop them yourself first; nothing was changed."
        )
    done = []
    try:
        if verdict.data["present"]:
            probe.execute("DROP DATABASE IF EXISTS `test`")
            done.append("dropped database test")
        probe.execute("clusters:baseline-mariadb-testdb-grants-delete", TEST_DB_PATTERNS)
        done.append("deleted the mysql.db rows of test and test\\_%")
        probe.execute("FLUSH PRIVILEGES")
        done.append("reloaded the privilege tables")
    except ExecutorError as e:
        raise FixFailed(f"{e} (done before: {', '.join(done) or 'nothing'})") from e
    return "; ".join(done)


def check_no_password(probe: Probe) -> Verdict:
    empty = [
        a for a in _accounts(probe)
        if a["user"] and not a["locked"] and a["empty_password"]
        and a["methods"][0] in ("mysql_native_password", "mysql_old_password")
    ]  # fmt: skip
    if not empty:
        text = "every account that can log in has a password or another authentication method"
        return Verdict(PASS, text + " (locked and anonymous accounts aside)")
    text = "these accounts log in with an empty password:\n" + _account_list(empty)
    text += "\nthe fix locks them (ACCOUNT LOCK): set a password, then ACCOUNT UNLOCK"
    return Verdict(FAIL, text, fixable=True,
                   data={"accounts": [(a["user"], a["host"]) for a in empty]})  # fmt: skip


def fix_no_password(probe: Probe, verdict: Verdict) -> str:
    """Lock, not drop nor set a password: locking keeps the grants, is undone with ACCOUNT
    UNLOCK, and needs no secret that the console would have to store or show."""
    accounts = verdict.data["accounts"]
    _refuse_own_account(probe, accounts)
    locked = []
    for user, host in accounts:
        try:
            probe.execute(f"ALTER USER {quote_account(user, host)} ACCOUNT LOCK")
        except ExecutorError as e:
            for u, h in accounts[: len(locked)]:  # undo: unlock the ones already locked
                probe.execute(f"ALTER USER {quote_account(u, h)} ACCOUNT UNLOCK")
            raise FixFailed(f"locking {user}@{host} failed ({e}); nothing stays changed") from e
        locked.append(f"{user}@{host}")
    return "locked " + ", ".join(locked)


def _password_note(account: dict) -> str:
    if account["empty_password"]:
        return " (empty password)"
    if account["invalid_password"]:
        return " (no usable password: 'invalid')"
    return " (password set)"


def check_root_auth(probe: Probe) -> Verdict:
    roots = [a for a in _accounts(probe) if a["user"] == "root"]
    weak = [a for a in roots if a["empty_password"] and "unix_socket" not in a["methods"]
            and a["methods"][0] in ("mysql_native_password", "mysql_old_password")]  # fmt: skip
    lines = [f"  root@{a['host']}: {' or '.join(a['methods'])}"
             + _password_note(a)
             + (" (locked)" if a["locked"] else "") for a in roots]  # fmt: skip
    if not roots:
        return Verdict(PASS, "no root account")
    if weak:
        return Verdict(FAIL, "root logs in with an empty password; set one (or IDENTIFIED VIA "
                             "unix_socket) by hand: the console does not choose root's "
                             "password\n" + "\n".join(lines))  # fmt: skip
    return Verdict(PASS, "root authenticates by unix_socket or a password:\n" + "\n".join(lines))


# --- ~/.mysql_history ----------------------------------------------------------------------


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int
    home: str
    shell: str

    @property
    def interactive(self) -> bool:
        return not posixpath.basename(self.shell or "/bin/sh").startswith(NO_LOGIN_SHELLS)


def parse_passwd(text: str) -> list[OsUser]:
    """`getent passwd` lines (name:x:uid:gid:gecos:home:shell); malformed lines are skipped."""
    users = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) != 7 or not parts[2].isdigit() or not parts[3].isdigit():
            continue
        users.append(OsUser(parts[0], int(parts[2]), int(parts[3]), parts[5], parts[6]))
    return users


_FIND_FORMAT = "%y\\t%Y\\t%U\\t%G\\t%l\\t%p\\n"


def _stat_paths(probe: Probe, paths: list[str]) -> dict[str, tuple[str, str, int, int, str]]:
    """type (find %y: f d l…), target type (%Y), uid, gid and link target of each path that
    exists, without following links. Missing paths are simply absent."""
    if not paths:
        return {}
    out = probe.command(["find", *paths, "-maxdepth", "0", "-printf", _FIND_FORMAT], check=False)
    if out.exit_code not in (0, 1):
        raise CommandFailed(f"find exited with {out.exit_code}: {out.stderr[-300:]}")
    found = {}
    for line in out.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 6 and parts[2].isdigit() and parts[3].isdigit():
            found[parts[5]] = (parts[0], parts[1], int(parts[2]), int(parts[3]), parts[4])
    return found


def history_state(probe: Probe) -> list[dict]:
    """Per OS user in scope, the state of ~/.mysql_history: ok (link to /dev/null), missing,
    file, link (elsewhere) or other (a directory…). In scope: users with an existing home
    directory who have a login shell, and any user whose history path exists; users listed in
    BASELINE_HISTORY_IGNORE_USERS are left out."""
    ignore = set(settings.BASELINE_HISTORY_IGNORE_USERS)
    users = [u for u in parse_passwd(probe.command(["getent", "passwd"], cached=True).stdout)
             if u.name not in ignore and u.home.startswith("/") and u.home != "/"]  # fmt: skip
    homes = sorted({u.home for u in users})
    stats = _stat_paths(probe, homes + [posixpath.join(h, ".mysql_history") for h in homes])
    states = []
    for user in users:
        home = stats.get(user.home)
        if home is None or "d" not in (home[0], home[1]):
            continue
        path = posixpath.join(user.home, ".mysql_history")
        found = stats.get(path)
        if found is None:
            state = "missing"
        elif found[0] == "l":
            state = "ok" if found[4] == "/dev/null" else "link"
        elif found[0] == "f":
            state = "file"
        else:
            state = "other"
        if found is None and not user.interactive:
            continue
        states.append({"user": user.name, "uid": user.uid, "gid": user.gid, "path": path,
                       "state": state, "target": found[4] if found else ""})  # fmt: skip
    return states


_STATE_TEXT = {
    "ok": "link to /dev/null",
    "missing": "missing (a link will be created)",
    "file": "a regular file: the client writes every statement there (it will be replaced)",
    "link": "a link to {target}, not /dev/null (the link itself will be replaced)",
    "other": "neither a file nor a link (a directory?): fix it by hand",
}


def check_history(probe: Probe) -> Verdict:
    states = history_state(probe)
    bad = [s for s in states if s["state"] != "ok"]
    lines = [f"  {s['user']}: {s['path']} is " + _STATE_TEXT[s["state"]].format(**s)
             for s in states]  # fmt: skip
    head = (f"{len(states)} OS users in scope (login shell, or a history file present)"
            + (f"; ignored by BASELINE_HISTORY_IGNORE_USERS: "
               f"{', '.join(settings.BASELINE_HISTORY_IGNORE_USERS)}"
               if settings.BASELINE_HISTORY_IGNORE_USERS else ""))  # fmt: skip
    text = "\n".join([head, *lines])
    if not bad:
        return Verdict(PASS, text)
    fixable = [s for s in bad if s["state"] != "other"]
    return Verdict(FAIL, text, fixable=bool(fixable), data={"users": fixable})


def fix_history(probe: Probe, verdict: Verdict) -> str:
    """For each user: `ln -sfn /dev/null ~user/.mysql_history` (replaces a file or a link, never
    follows a link), then `chown -h` to the user (the link, not /dev/null). Users are
    independent: one failing does not undo the others, and the message names it."""
    done, failed = [], []
    for s in verdict.data["users"]:
        try:
            probe.command(["ln", "-sfn", "--", "/dev/null", s["path"]])
            probe.command(["chown", "-h", f"{s['uid']}:{s['gid']}", "--", s["path"]])
            done.append(s["user"])
        except ExecutorError as e:
            failed.append(f"{s['user']}: {e}")
    if failed:
        raise FixFailed("could not link the history of " + "; ".join(failed)
                        + (f" (linked: {', '.join(done)})" if done else ""))  # fmt: skip
    return "linked ~/.mysql_history to /dev/null for " + ", ".join(done)


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_facts(probe: Probe) -> dict:
    [row] = probe.rows("clusters:baseline-pg-facts")
    return row


HOST_TYPES = ("host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc")


def _hba(probe: Probe) -> list[dict]:
    return probe.rows("clusters:baseline-pg-hba")


def _rule_text(rule: dict) -> str:
    where = " ".join(x for x in (rule["address"], rule["netmask"]) if x)
    parts = [rule["type"], ",".join(rule["database"] or []), ",".join(rule["user_name"] or []),
             where, rule["auth_method"] or ""]  # fmt: skip
    return f"  line {rule['line_number']}: " + " ".join(p for p in parts if p)


def _hba_errors(rules) -> str:
    errors = [f"  line {r['line_number']}: {r['error']}" for r in rules if r["error"]]
    return "\npg_hba.conf has errors:\n" + "\n".join(errors) if errors else ""


def check_password_encryption(probe: Probe) -> Verdict:
    facts = _pg_facts(probe)
    value = facts["password_encryption"]
    text = f"password_encryption = {value} (from {facts['password_encryption_source']})"
    try:
        [md5] = probe.rows("clusters:baseline-pg-md5-passwords")
        if md5["md5_roles"]:
            text += (f"\n{md5['md5_roles']} roles still have an MD5 password hash: it stays until "
                     "each sets its password again")  # fmt: skip
    except ExecutorError as e:
        text += f"\n(MD5 hashes not counted: {e})"
    if value == "scram-sha-256":
        return Verdict(PASS, text)
    return Verdict(FAIL, text, fixable=True)


def fix_password_encryption(probe: Probe, verdict: Verdict) -> str:
    """ALTER SYSTEM SET password_encryption = 'scram-sha-256', reload, and wait (10 s at most)
    for a new session to see it; if it does not (the setting given on the command line…),
    restore postgresql.auto.conf's previous entry and reload again."""
    [before] = probe.rows("clusters:baseline-pg-password-encryption")
    name = sql.Identifier("password_encryption")
    probe.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(name, sql.Literal("scram-sha-256")))
    probe.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 10
    while True:
        [now] = probe.execute("clusters:baseline-pg-password-encryption").rows
        if now[0] == "scram-sha-256":
            return "ALTER SYSTEM SET password_encryption = 'scram-sha-256'; configuration reloaded"
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)  # polling the server's reload, with the deadline above
    if before["sourcefile"].endswith("postgresql.auto.conf"):
        undo = sql.SQL("ALTER SYSTEM SET {} = {}").format(name, sql.Literal(before["setting"]))
    else:
        undo = sql.SQL("ALTER SYSTEM RESET {}").format(name)
    probe.execute(undo)
    probe.execute("SELECT pg_reload_conf()")
    raise FixFailed(
        f"after ALTER SYSTEM and a reload the server still says {now[0]} (source: {now[1]}"
        f" {now[2]}); postgresql.auto.conf was put back as it was"
    )


def check_hba_trust_host(probe: Probe) -> Verdict:
    rules = _hba(probe)
    trust = [r for r in rules if r["type"] in HOST_TYPES and r["auth_method"] == "trust"]
    if not trust:
        return Verdict(PASS, f"no host rule uses trust ({len(rules)} rules read from "
                             f"pg_hba.conf on disk){_hba_errors(rules)}")  # fmt: skip
    text = "host connections matching these rules log in without a password:\n"
    return Verdict(FAIL, text + "\n".join(_rule_text(r) for r in trust) + _hba_errors(rules))


def _matches_postgres(values) -> bool:
    return bool(set(values or []) & {"all", "postgres"})


def check_local_postgres(probe: Probe) -> Verdict:
    """The local (socket) rules that can decide postgres's login: in order, up to and including
    the first one for all databases; a trust among them lets postgres in without a check."""
    deciding = []
    for rule in _hba(probe):
        if rule["type"] != "local" or not _matches_postgres(rule["user_name"]):
            continue
        deciding.append(rule)
        if "all" in (rule["database"] or []):
            break
    if not deciding:
        return Verdict(PASS, "no local rule admits postgres: socket logins of postgres are "
                             "refused")  # fmt: skip
    text = "\n".join(_rule_text(r) for r in deciding)
    if any(r["auth_method"] == "trust" for r in deciding):
        return Verdict(FAIL, "postgres logs in over the socket without a check (trust):\n" + text)
    return Verdict(PASS, "local logins of postgres are checked (password or peer):\n" + text)


def check_ssl(probe: Probe) -> Verdict:
    value = _pg_facts(probe)["ssl"]
    if value == "on":
        return Verdict(PASS, "ssl = on: clients can encrypt their connections (whether they must "
                             "is decided by hostssl rules)")  # fmt: skip
    return Verdict(REVIEW, "ssl = off: every connection, its queries and results travel in clear "
                           "text (SCRAM keeps the password itself safe)")  # fmt: skip


WILDCARD_ADDRESSES = {"*", "0.0.0.0", "::"}  # noqa: S104 (what we look for, not a bind)


def _admits_all(rule: dict) -> bool:
    if rule["address"] == "all":
        return True
    return rule["address"] in WILDCARD_ADDRESSES and rule["netmask"] in WILDCARD_ADDRESSES


def check_listen_addresses(probe: Probe) -> Verdict:
    value = _pg_facts(probe)["listen_addresses"]
    wildcard = {a.strip() for a in value.split(",")} & WILDCARD_ADDRESSES
    text = f"listen_addresses = '{value}'"
    if not wildcard:
        return Verdict(PASS, text + ": the server listens only on the addresses named")
    open_rules = [r for r in _hba(probe) if r["type"] in HOST_TYPES and _admits_all(r)]
    if open_rules:
        return Verdict(REVIEW, text + "; rules admit every address, so listening everywhere may "
                       "be meant:\n" + "\n".join(_rule_text(r) for r in open_rules))  # fmt: skip
    return Verdict(FAIL, text + ": the server listens on every interface though no rule admits "
                   "every address; name the addresses it serves")  # fmt: skip


def check_superusers(probe: Probe) -> Verdict:
    others = probe.rows("clusters:baseline-pg-superusers")
    if not others:
        return Verdict(PASS, "postgres is the only superuser")
    lines = [f"  {r['name']}" + ("" if r["can_login"] else " (cannot log in)") for r in others]
    return Verdict(REVIEW, "superusers besides postgres (is each still needed?):\n"
                   + "\n".join(lines))  # fmt: skip


# --- The registry ----------------------------------------------------------------------------

CHECKS: dict[str, Check] = {
    c.key: c
    for c in (
        Check("mariadb.local_infile", "mariadb", "local_infile off (server and option files)",
              check_local_infile, fix_local_infile, "write local-infile=0 and turn it off"),
        Check("mariadb.anonymous_accounts", "mariadb", "no anonymous accounts",
              check_anonymous, fix_anonymous, "drop the anonymous accounts"),
        Check("mariadb.remote_root", "mariadb", "root only from localhost",
              check_remote_root, fix_remote_root, "drop root's remote accounts"),
        Check("mariadb.test_database", "mariadb", "no test database nor grants on it",
              check_test_database, fix_test_database, "drop test and its grants"),
        Check("mariadb.mysql_history", "mariadb", "~/.mysql_history is a link to /dev/null",
              check_history, fix_history, "link each history to /dev/null"),
        Check("mariadb.no_password", "mariadb", "no account without a password",
              check_no_password, fix_no_password, "lock those accounts"),
        Check("mariadb.root_auth", "mariadb", "root authenticates (unix_socket or password)",
              check_root_auth),
        Check("pg.password_encryption", "postgresql", "password_encryption is scram-sha-256",
              check_password_encryption, fix_password_encryption,
              "ALTER SYSTEM SET password_encryption = 'scram-sha-256' and reload"),
        Check("pg.hba_trust_host", "postgresql", "no trust rule for host connections",
              check_hba_trust_host, fix_there="hba"),
        Check("pg.local_postgres", "postgresql", "local logins of postgres are not trust",
              check_local_postgres, fix_there="hba"),
        Check("pg.ssl", "postgresql", "ssl", check_ssl, fix_there="settings"),
        Check("pg.listen_addresses", "postgresql", "listen_addresses is not '*'",
              check_listen_addresses, fix_there="settings"),
        Check("pg.superusers", "postgresql", "superusers besides postgres", check_superusers),
    )
}  # fmt: skip


def checks_for(node) -> list[Check]:
    return [c for c in CHECKS.values() if c.service == node.service]


def evaluate(check: Check, probe: Probe) -> Verdict:
    """Run one check; a server that cannot be read gives an error verdict, never an exception."""
    try:
        return check.evaluate(probe)
    except (ExecutorError, FixRefused) as e:
        return Verdict(ERROR, f"the check could not be made: {e}")
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        return Verdict(ERROR, f"the check could not read the server's answer: {e!r}")


def run_checks(node, *, actor=None, job=None, keys=None) -> dict[str, Verdict]:
    """Every check of the node's service (or only `keys`), in registry order, sharing a Probe."""
    probe = Probe(node, actor=actor, job=job)
    return {c.key: evaluate(c, probe) for c in checks_for(node) if keys is None or c.key in keys}
