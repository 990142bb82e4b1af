"""Checking one pg_hba rule as PostgreSQL 15 would, field by field (the form shows each problem
under its field), and the rule's canonical form. Pure: no I/O.

Separate from clusters.hba, the file format (tokenize, parse, render), because it is a policy
of its own: what each method, option and address form may be. Parsing and importing a node's
file do not use it (rules are stored as found); the edit form and an apply do."""

import ipaddress
import re
from dataclasses import replace

from clusters.hba import (
    ADDRESS_KEYWORDS,
    CONN_TYPES,
    DB_KEYWORDS,
    METHODS,
    TARGETS,
    FieldError,
    Rule,
    _is_ip,
    parse_field,
    render_field,
)

USER_KEYWORDS = ("all",)
# Options PostgreSQL 15 accepts, and the methods each is valid for (None: any method, but only
# on hostssl lines).
OPTION_METHODS: dict[str, tuple[str, ...] | None] = {
    "map": ("ident", "peer", "gss", "sspi", "cert"),
    "clientcert": None,
    "clientname": None,
    "pamservice": ("pam",),
    "pam_use_hostname": ("pam",),
    **{
        name: ("ldap",)
        for name in (
            "ldapurl", "ldaptls", "ldapscheme", "ldapserver", "ldapport", "ldapbinddn",
            "ldapbindpasswd", "ldapsearchattribute", "ldapsearchfilter", "ldapbasedn",
            "ldapprefix", "ldapsuffix",
        )
    },
    "krb_realm": ("gss", "sspi"),
    "include_realm": ("gss", "sspi"),
    "compat_realm": ("sspi",),
    "upn_username": ("sspi",),
    **{
        name: ("radius",)
        for name in ("radiusservers", "radiussecrets", "radiusports", "radiusidentifiers")
    },
}  # fmt: skip
MAX_TOKEN = 255  # PostgreSQL's MAX_TOKEN is 256 bytes with the terminating NUL
MAX_NAME = 63  # NAMEDATALEN - 1: longer database and role names never match
_HOSTNAME = re.compile(
    r"^\.?[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}"
    r"[A-Za-z0-9_])?)*$"
)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _check_names(text: str, keywords: tuple[str, ...], what: str) -> list[str]:
    try:
        tokens = parse_field(text)
    except FieldError as e:
        return [f"The {what} {e}."]
    errors = []
    for token in tokens:
        t = token.text
        if _CONTROL.search(t):
            errors.append(f"The {what} cannot hold control characters.")
        elif len(t.encode()) > MAX_TOKEN:
            errors.append(f"{t[:20]}… is longer than {MAX_TOKEN} bytes.")
        elif not token.quoted and t[:1] == "@":
            if len(t) == 1:
                errors.append("@ must be followed by a file name.")
        elif not token.quoted and t[:1] == "+" and "user" in what:
            if len(t) == 1:
                errors.append("+ must be followed by a role name.")
            elif len(t[1:].encode()) > MAX_NAME:
                errors.append(f"Role name {t[1:21]}… is longer than {MAX_NAME} bytes.")
        elif token.is_keyword(*keywords):
            continue
        elif t == "":
            errors.append(f"An empty {what} matches nothing.")
        elif len(t.encode()) > MAX_NAME:
            errors.append(f"Name {t[:20]}… is longer than {MAX_NAME} bytes and never matches.")
    return errors


def mask_bits(mask: str, version: int) -> int | None:
    """The prefix length of a contiguous netmask, or None."""
    try:
        m = ipaddress.ip_address(mask)
    except ValueError:
        return None
    if m.version != version:
        return None
    bits = m.max_prefixlen
    value = int(m)
    ones = bin(value).count("1")
    return ones if value == ((1 << bits) - 1) ^ ((1 << (bits - ones)) - 1) else None


def _check_address(rule: Rule) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if rule.conn_type == "local":
        if rule.address or rule.netmask:
            errors["address"] = ["A local (Unix socket) rule has no address."]
        return errors
    if not rule.address.strip():
        return {"address": [f"A {rule.conn_type} rule needs an address."]}
    try:
        tokens = parse_field(rule.address)
    except FieldError:
        tokens = []
    if len(tokens) != 1:
        return {"address": [
            f"{rule.address.strip()!r} is not one IP address with /mask, host name, all, "
            "samehost or samenet."
        ]}  # fmt: skip
    token = tokens[0]
    text = token.text
    if token.is_keyword(*ADDRESS_KEYWORDS) or (not _is_ip(text) and "/" not in text):
        if rule.netmask:
            errors["netmask"] = ["A netmask goes only with an IP address."]
        if not token.is_keyword(*ADDRESS_KEYWORDS) and (
            len(text) > 253 or not _HOSTNAME.match(text)
        ):
            errors["address"] = [
                f"{text!r} is not an IP address with /mask, a host name, all, samehost or samenet."
            ]
        return errors
    if "/" in text:
        return _check_cidr(rule, text)
    version = ipaddress.ip_address(text).version
    if not rule.netmask:
        errors["netmask"] = [f"{text} needs a netmask here, or write it as {text}/bits."]
    elif mask_bits(rule.netmask, version) is None:
        errors["netmask"] = [
            f"{rule.netmask!r} is not a contiguous IPv{version} netmask like "
            + ("255.255.255.0." if version == 4 else "ffff:ffff:ffff:ffff::.")
        ]
    return errors


def _check_cidr(rule: Rule, text: str) -> dict[str, list[str]]:
    """The problems of an address written as address/bits."""
    errors: dict[str, list[str]] = {}
    if rule.netmask:
        errors["netmask"] = ["Give either address/mask (CIDR) or a separate netmask."]
    host, _, bits = text.partition("/")
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        if not _is_ip(host):
            message = f"{host!r} is not an IP address (a host name takes no /mask)."
        else:
            limit = 32 if ":" not in host else 128
            message = f"Invalid CIDR mask /{bits}: give 0 to {limit}."
        errors["address"] = [message]
        return errors
    if not bits.isdigit():
        errors["address"] = [f"Invalid CIDR mask /{bits}."]
    return errors


_YES_NO = ("0", "1")


def _check_option_values(rule: Rule, opts: dict[str, str]) -> list[str]:
    e = []
    for name, value in rule.options:
        if _CONTROL.search(value):
            e.append(f"{name}: control characters are not allowed.")
        elif len(f"{name}={value}".encode()) > MAX_TOKEN:
            e.append(f"{name}: longer than {MAX_TOKEN} bytes.")
    if "clientcert" in opts:
        allowed = ("verify-full",) if rule.method == "cert" else ("verify-ca", "verify-full")
        if opts["clientcert"] not in allowed:
            e.append(f"clientcert must be {' or '.join(allowed)} (for method {rule.method}).")
    if "clientname" in opts and opts["clientname"] not in ("CN", "DN"):
        e.append("clientname must be CN or DN.")
    for flag in ("pam_use_hostname", "ldaptls", "include_realm", "compat_realm", "upn_username"):
        if flag in opts and opts[flag] not in _YES_NO:
            e.append(f"{flag} must be 0 or 1.")
    if "ldapport" in opts and not (
        opts["ldapport"].isdigit() and 1 <= int(opts["ldapport"]) <= 65535
    ):
        e.append("ldapport must be a port number from 1 to 65535.")
    if "ldapscheme" in opts and opts["ldapscheme"] not in ("ldap", "ldaps"):
        e.append("ldapscheme must be ldap or ldaps.")
    if "ldapurl" in opts and not re.match(r"^ldaps?://", opts["ldapurl"]):
        e.append("ldapurl must start with ldap:// or ldaps://.")
    for name in ("map", "pamservice", "ldapserver", "krb_realm", "ldapbasedn"):
        if name in opts and not opts[name].strip():
            e.append(f"{name} needs a value.")
    return e


def _check_method_options(rule: Rule, opts: dict[str, str]) -> list[str]:
    e = []
    m = rule.method
    if m == "ldap":
        has = set(opts)
        simple = has & {"ldapprefix", "ldapsuffix"}
        search = has & {"ldapbasedn", "ldapbinddn", "ldapbindpasswd", "ldapsearchattribute",
                        "ldapsearchfilter", "ldapurl"}  # fmt: skip
        if simple and search:
            e.append(
                "ldapprefix/ldapsuffix (simple bind) cannot be combined with "
                f"{', '.join(sorted(search))} (search+bind)."
            )
        if not ({"ldapbasedn", "ldapprefix", "ldapsuffix", "ldapurl"} & has):
            e.append("ldap needs ldapbasedn (search+bind) or ldapprefix/ldapsuffix (simple bind).")
        if not ({"ldapserver", "ldapurl", "ldapbasedn"} & has):
            e.append("ldap needs ldapserver (or ldapurl).")
        if {"ldapsearchattribute", "ldapsearchfilter"} <= has:
            e.append("ldapsearchattribute and ldapsearchfilter cannot be used together.")
    if m == "radius":
        if "radiusservers" not in opts or "radiussecrets" not in opts:
            e.append("radius needs radiusservers and radiussecrets.")
        else:
            servers = len(opts["radiusservers"].split(","))
            for name in ("radiussecrets", "radiusports", "radiusidentifiers"):
                if name in opts:
                    count = len(opts[name].split(","))
                    if count not in (1, servers):
                        e.append(
                            f"{name}: give 1 value or one per server ({servers}), not {count}."
                        )
            if "radiusports" in opts and not all(
                p.strip().isdigit() and 1 <= int(p) <= 65535 for p in opts["radiusports"].split(",")
            ):
                e.append("radiusports must be port numbers from 1 to 65535.")
    return e


def _check_options(rule: Rule) -> list[str]:
    seen: dict[str, str] = {}
    e = []
    for name, value in rule.options:
        if name in seen:
            e.append(f"{name} is given twice.")
        seen[name] = value
        if name not in OPTION_METHODS:
            e.append(f"Unknown option {name!r}.")
            continue
        methods = OPTION_METHODS[name]
        if methods is None:
            if rule.conn_type != "hostssl":
                e.append(f"{name} is only valid on hostssl rules.")
        elif rule.method not in methods:
            e.append(f"{name} is only valid for method {', '.join(methods)}.")
    if e:
        return e
    return _check_option_values(rule, seen) + _check_method_options(rule, seen)


def validate(rule: Rule) -> dict[str, list[str]]:
    """Every problem of one rule, by field name (conn_type, database, user, address, netmask,
    method, options, comment, target); empty when PostgreSQL 15 should accept it. What only the
    server can know (SSL on or off, a RADIUS host that does not resolve, an @file that is
    missing) is left to the server check at apply time."""
    errors: dict[str, list[str]] = {}

    def add(name: str, messages: list[str]) -> None:
        if messages:
            errors.setdefault(name, []).extend(messages)

    if rule.target not in TARGETS:
        add("target", [f"Choose one of {', '.join(TARGETS)}."])
    if rule.conn_type not in CONN_TYPES:
        add("conn_type", [f"Choose one of {', '.join(CONN_TYPES)}."])
        return errors
    add("database", _check_names(rule.database, DB_KEYWORDS, "database"))
    add("user", _check_names(rule.user, USER_KEYWORDS, "user"))
    for name, messages in _check_address(rule).items():
        add(name, messages)
    if rule.method not in METHODS:
        add("method", [f"Choose one of {', '.join(METHODS)}."])
    elif rule.method == "peer" and rule.conn_type != "local":
        add("method", ["peer works only on local (Unix socket) rules; use ident over TCP."])
    elif rule.method == "gss" and rule.conn_type == "local":
        add("method", ["gss is not supported on local (Unix socket) rules."])
    elif rule.method == "cert" and rule.conn_type != "hostssl":
        add("method", ["cert works only on hostssl rules."])
    else:
        add("options", _check_options(rule))
    comment_lines = rule.comment.split("\n")
    if any(line.rstrip("\r").endswith("\\") for line in comment_lines):
        add("comment", ["A comment line cannot end with a backslash (it would join the next)."])
    if _CONTROL.search(rule.comment.replace("\n", "")):
        add("comment", ["The comment cannot hold control characters."])
    return errors


def normalise(rule: Rule) -> Rule:
    """The same rule with its fields in canonical form (call on a rule that validates)."""
    return replace(
        rule,
        database=render_field(parse_field(rule.database)),
        user=render_field(parse_field(rule.user)),
        address=render_field(parse_field(rule.address)) if rule.address.strip() else "",
        netmask=rule.netmask.strip(),
        comment="\n".join(line.rstrip() for line in rule.comment.replace("\r", "").split("\n"))
        .strip("\n"),
    )  # fmt: skip
