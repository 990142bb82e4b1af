"""MariaDB/MySQL checks: the mysql_secure_installation steps and local_infile.

The account queries read mysql.global_priv (MariaDB 10.4 and later). The option files are read
as the running server reads them: its pid from @@pid_file, its command line from /proc, then
`my_print_defaults` with the same --defaults-* arguments (clusters.mycnf parses and edits).
"""

import json
import shlex
from dataclasses import dataclass

from clusters import mycnf
from clusters.baseline.core import (
    FAIL,
    PASS,
    FixFailed,
    FixRefused,
    Probe,
    Verdict,
    quote_account,
    replace_file,
    restore_file,
)
from console.executor import ExecutorError

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")  # as mysql_secure_installation
TEST_DB_PATTERNS = ("test", "test\\_%")  # mysql.db rows mysql_install_db creates
MYSQLD_DEFAULT_FILES = ("/etc/my.cnf", "/etc/mysql/my.cnf")


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
        found = probe.command(["readlink", "-e", "--", path], check=False, ok_exits=(0, 1))
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


def _starts_off(options: MysqldOptions) -> bool:
    try:
        return mycnf.as_bool(options.value("local_infile")) is False
    except ValueError:
        return False  # an unreadable value: the server warns and takes OFF; we write 0


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
    if not _starts_off(options):
        text = probe.command(["cat", "--", path], keep_output=False).stdout
        edited = mycnf.set_option(text, "mysqld", "local-infile", "0")
        backup = replace_file(probe, path, edited)
        done.append(f"wrote local-infile=0 in [mysqld] of {path} (backup: {backup})")
        probe.forget()
        if not _starts_off(mysqld_options(probe)):
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
