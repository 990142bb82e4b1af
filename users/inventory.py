"""Pure helpers of the account inventory: reading the servers' answers and the naming rules.

No network and no database here: `users.actions.accounts` runs the statements of users/sql/
through the executor and hands the rows to these functions.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class ServerAccount:
    """One login as a server describes it (the server facts of a DatabaseAccount)."""

    name: str
    host: str = ""
    can_login: bool = True  # PostgreSQL rolcanlogin; MariaDB accounts are all logins
    locked: bool = False
    expired: bool = False
    superuser: bool = False
    member_of: tuple[str, ...] = ()
    valid_until: datetime | None = None
    password_changed_at: datetime | None = None
    plugin: str = ""
    attributes: tuple[str, ...] = field(default=())
    comment: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.host)


def _rows(columns: list[str], rows: list[tuple]) -> list[dict]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def pg_accounts(columns: list[str], rows: list[tuple]) -> list[ServerAccount]:
    """The rows of accounts-pg-list.sql. `locked` is NOLOGIN: on PostgreSQL a role is locked by
    taking LOGIN away, so a known account that lost it shows as locked."""
    accounts = []
    for row in _rows(columns, rows):
        attributes = [a for a in ("createrole", "createdb", "replication", "bypassrls") if row[a]]
        if row["connlimit"] is not None and row["connlimit"] >= 0:
            attributes.append(f"connection limit {row['connlimit']}")
        accounts.append(
            ServerAccount(
                name=row["name"],
                can_login=bool(row["can_login"]),
                locked=not row["can_login"],
                expired=bool(row["expired"]),
                superuser=bool(row["superuser"]),
                member_of=tuple(row["member_of"] or ()),
                valid_until=row["valid_until"],
                attributes=tuple(attributes),
                comment=row["comment"] or "",
            )
        )
    return accounts


def _epoch(value) -> datetime | None:
    if value in (None, "", "0", 0):
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def mariadb_password_expired(row: dict) -> bool:
    """Expired by hand (PASSWORD EXPIRE) or by its lifetime: the account's own
    (PASSWORD EXPIRE INTERVAL n DAY; 0 = never) or else the server's default_password_lifetime,
    counted from the last change, by the server's clock."""
    if row["password_expired"]:
        return True
    lifetime = row["password_lifetime"]
    lifetime = (
        int(lifetime) if lifetime not in (None, "") else int(row["default_password_lifetime"])
    )
    changed = row["password_last_changed"]
    if lifetime <= 0 or changed in (None, ""):
        return False
    return int(changed) + lifetime * 86400 < int(row["server_now"])


def mariadb_plugins(plugin: str, auth_or) -> str:
    """`mysql_native_password or unix_socket` for root as mariadb-install-db makes it: the
    alternatives of IDENTIFIED VIA ... OR ..., where {} is the main plugin."""
    if isinstance(auth_or, bytes):
        auth_or = auth_or.decode()
    alternatives = json.loads(auth_or) if auth_or else []
    names = [a.get("plugin", plugin) if isinstance(a, dict) else plugin for a in alternatives]
    return " or ".join(dict.fromkeys(n for n in [plugin, *names] if n))


def mariadb_accounts(columns: list[str], rows: list[tuple]) -> list[ServerAccount]:
    """The rows of accounts-mariadb-list.sql."""
    accounts = []
    for row in _rows(columns, rows):
        member_of = row["member_of"]
        if isinstance(member_of, bytes):
            member_of = member_of.decode()
        roles = tuple(sorted(json.loads(member_of))) if member_of else ()
        accounts.append(
            ServerAccount(
                name=row["name"],
                host=row["host"],
                locked=bool(row["locked"]),
                expired=mariadb_password_expired(row),
                superuser=bool(row["superuser"]),
                member_of=roles,
                password_changed_at=_epoch(row["password_last_changed"]),
                plugin=mariadb_plugins(row["plugin"] or "", row.get("auth_or"))[:255],
            )
        )
    return accounts


# --- Naming rules ------------------------------------------------------------------------------

PLACEHOLDER = "{uid}"


class NamingRules:
    """Which person a personal account belongs to, by its name.

    Each rule is a regular expression with one `{uid}` placeholder, matched against the whole
    account name, case-insensitively: `^{uid}$`, `^{uid}_adm$`, `^p_{uid}$`. `person_for(name)`
    gives the one uid the name points at among `uids`, or None when no rule matches a known uid,
    or when rules point at two different people (then a person must decide).
    """

    def __init__(self, rules: list[str]):
        self.rules = list(rules)
        self._compiled = [self._compile(rule) for rule in self.rules]

    @staticmethod
    def _compile(rule: str) -> tuple[re.Pattern, re.Pattern]:
        if rule.count(PLACEHOLDER) != 1:
            raise ValueError(f"naming rule {rule!r} must hold {PLACEHOLDER} exactly once")
        before, after = rule.split(PLACEHOLDER)
        try:
            # The shortest and the longest reading of {uid}: "a_adm_adm" under ^{uid}_adm$
            # could be a_adm's or a's second account; both are tried against known uids.
            return tuple(
                re.compile(f"(?:{before})(?P<uid>.{quantifier})(?:{after})", re.IGNORECASE)
                for quantifier in ("+?", "+")
            )
        except re.error as e:
            raise ValueError(f"naming rule {rule!r} is not a valid regular expression: {e}") from e

    def person_for(self, name: str, uids: dict[str, str]) -> str | None:
        """`uids` maps lower-case uid -> uid."""
        found = set()
        for patterns in self._compiled:
            for pattern in patterns:
                match = pattern.fullmatch(name)
                if match and match["uid"].lower() in uids:
                    found.add(uids[match["uid"].lower()])
        return found.pop() if len(found) == 1 else None
