"""PostgreSQL checks: password_encryption (with its fix), pg_hba trust rules, postgres's local
rules, ssl, listen_addresses and superusers (reported; fixed on the pg_hba and settings pages)."""

import time

from psycopg import sql

from clusters.baseline.core import FAIL, PASS, REVIEW, FixFailed, Probe, Verdict
from console.executor import ExecutorError


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
