"""~/.mysql_history of the host's OS users: a symbolic link to /dev/null, or the client keeps
every statement typed (passwords in CREATE USER included) in a file."""

import posixpath
from dataclasses import dataclass

from django.conf import settings

from clusters.baseline.core import FAIL, PASS, FixFailed, Probe, Verdict
from console.executor import CommandFailed, ExecutorError

NO_LOGIN_SHELLS = ("nologin", "false", "sync", "shutdown", "halt")


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
    argv = ["find", *paths, "-maxdepth", "0", "-printf", _FIND_FORMAT]
    out = probe.command(argv, check=False, ok_exits=(0, 1))  # 1: some are missing, an answer
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
