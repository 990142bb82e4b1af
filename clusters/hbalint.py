"""Lint of pg_hba.conf rules, with reasons a DBA can act on: trust or password over the network,
md5 where scram-sha-256 is possible, rules open to 0.0.0.0/0 or ::/0, and rules shadowed by an
earlier one. Pure: works on clusters.hba.Rule lists, no server involved."""

import ipaddress
from dataclasses import dataclass

from clusters.hba import FieldError, Rule, parse_field
from clusters.hba_validate import mask_bits


@dataclass(frozen=True)
class Finding:
    position: int  # index of the rule in the list
    code: str
    message: str


def _network(rule: Rule):
    """The address as an ip_network, None for host names and keywords, "all" for all."""
    try:
        token = parse_field(rule.address)[0]
    except (FieldError, IndexError):
        return None
    if token.is_keyword("all"):
        return "all"
    if token.is_keyword("samehost", "samenet"):
        return None
    try:
        if "/" in token.text:
            return ipaddress.ip_network(token.text, strict=False)
        bits = mask_bits(rule.netmask, ipaddress.ip_address(token.text).version)
        return (
            ipaddress.ip_network(f"{token.text}/{bits}", strict=False) if bits is not None else None
        )
    except ValueError:
        return None


def _open_to_world(rule: Rule) -> bool:
    net = _network(rule)
    return net == "all" or (net is not None and net != "all" and net.prefixlen == 0)


def _covers_type(a: str, b: str) -> bool:
    if a == b:
        return True
    return a == "host" and b != "local"


def _names(text: str) -> set[tuple[str, bool]] | None:
    try:
        return {(t.text, t.quoted) for t in parse_field(text)}
    except FieldError:
        return None


def _covers_names(a: str, b: str, *, database: bool) -> bool:
    na, nb = _names(a), _names(b)
    if na is None or nb is None:
        return False
    if ("all", False) in na:
        # `all` does not match replication connections.
        return not (database and ("replication", False) in nb)
    return nb <= na


def _covers_address(a: Rule, b: Rule) -> bool:
    if a.conn_type == "local":
        return True
    na, nb = _network(a), _network(b)
    if na == "all":
        return True
    if na is None or nb is None or nb == "all":
        return (a.address, a.netmask) == (b.address, b.netmask)
    return na.version == nb.version and nb.subnet_of(na)


def _can_share_node(a: Rule, b: Rule) -> bool:
    return "both" in (a.target, b.target) or a.target == b.target


def shadowed_by(rules: list[Rule], j: int) -> int | None:
    """The first earlier rule that matches every connection rule j matches, if any."""
    b = rules[j]
    for i in range(j):
        a = rules[i]
        if (
            _can_share_node(a, b)
            and _covers_type(a.conn_type, b.conn_type)
            and _covers_names(a.database, b.database, database=True)
            and _covers_names(a.user, b.user, database=False)
            and _covers_address(a, b)
        ):
            return i
    return None


def lint(rules: list[Rule]) -> list[Finding]:
    """Risky or useless rules, each with the reason."""
    findings = []
    for i, rule in enumerate(rules):
        network = rule.conn_type != "local"
        if network and rule.method == "trust":
            findings.append(Finding(i, "trust-network", (
                "trust over the network: anyone who reaches this address range logs in as "
                "these users with no password at all. Use scram-sha-256 (or cert)."
            )))  # fmt: skip
        if network and rule.method == "password":
            where = (
                "TLS protects it in transit, but the server still receives the clear text"
                if rule.conn_type == "hostssl"
                else "it crosses the network in clear text unless the client insists on TLS"
            )
            findings.append(Finding(i, "password-network", (
                f"password sends the password itself: {where}. Use scram-sha-256."
            )))  # fmt: skip
        if rule.method == "md5":
            findings.append(Finding(i, "md5", (
                "md5 where scram-sha-256 is possible: every client since PostgreSQL 10 speaks "
                "SCRAM, and md5 hashes can be replayed as passwords if stolen. With "
                "password_encryption = scram-sha-256 set, switch the rule to scram-sha-256."
            )))  # fmt: skip
        if network and _open_to_world(rule) and rule.method != "reject":
            findings.append(Finding(i, "open-world", (
                f"open to every address ({rule.address}): the whole internet can try to log "
                "in if the port is reachable. Narrow it to the networks that need it."
            )))  # fmt: skip
        earlier = shadowed_by(rules, i)
        if earlier is not None:
            findings.append(Finding(i, "shadowed", (
                f"never used: rule {earlier + 1} above matches every connection this one "
                "matches, and PostgreSQL uses the first match."
            )))  # fmt: skip
        for token in (_names(rule.database) or set()) | (_names(rule.user) or set()):
            if token[0].startswith("/") and not token[1]:
                findings.append(Finding(i, "regex-name", (
                    f"{token[0]} is a plain name on PostgreSQL 15 but a regular expression "
                    "from PostgreSQL 16 on."
                )))  # fmt: skip
    return findings
