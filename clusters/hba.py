"""pg_hba.conf as rules: parse (comments kept), render, validate, diff. Pure: no I/O.
The lint of a rule list is clusters.hbalint.

The tokenizer follows PostgreSQL 15's (src/backend/libpq/hba.c, checked against a real 15
server's pg_hba_file_rules): a line ending with a backslash continues on the next one (also
inside quotes and comments, so a comment ending with `\\` swallows the next line); fields are
separated by blanks; a field is a comma list (blanks after a comma continue the list); `"`
quotes, `""` inside quotes is a literal quote; `#` outside quotes starts a comment. A token is
"quoted" when it starts with a quote, and a quoted keyword (`"all"`) is a plain name. PostgreSQL
15 has no `include` directives and no `/regex` names (both are 16+): `include` is an invalid
connection type there, and `/name` a literal name.

A file is a header (comment blocks before the first rule that are not right above it), rules
(each with the comment lines since the previous rule, the line's own trailing comment last)
and a footer (comments after the last rule). `render(parse(text))` normalises layout;
`parse(render(rules))` gives the same rules back (tested with random rules).
"""

import difflib
import ipaddress
import re
from dataclasses import dataclass, field, replace

CONN_TYPES = ("local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc")
METHODS = (
    "trust", "reject", "scram-sha-256", "md5", "password", "gss", "sspi", "ident", "peer",
    "ldap", "radius", "cert", "pam",
)  # fmt: skip
TARGETS = ("both", "primary", "standbys")
DB_KEYWORDS = ("all", "sameuser", "samerole", "samegroup", "replication")
USER_KEYWORDS = ("all",)
ADDRESS_KEYWORDS = ("all", "samehost", "samenet")
_KEYWORDS = set(DB_KEYWORDS) | set(ADDRESS_KEYWORDS)
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
SECRET_OPTIONS = ("ldapbindpasswd", "radiussecrets")
MASK = "********"
MAX_TOKEN = 255  # PostgreSQL's MAX_TOKEN is 256 bytes with the terminating NUL
MAX_NAME = 63  # NAMEDATALEN - 1: longer database and role names never match
_BLANKS = " \t\r"
_HOSTNAME = re.compile(
    r"^\.?[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}"
    r"[A-Za-z0-9_])?)*$"
)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


# --- Tokens -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    text: str
    quoted: bool = False  # started with a double quote: not a keyword, not +group nor @file

    def is_keyword(self, *words: str) -> bool:
        return not self.quoted and self.text in words


def _scan_token(line: str, i: int) -> tuple[Token | None, int, bool, str | None]:
    """One token from line[i:], as next_token() does: (token or None, next index, terminated by
    a comma, comment text if a `#` ended the line)."""
    n = len(line)
    while i < n and (line[i] in _BLANKS or line[i] == ","):
        i += 1
    buf: list[str] = []
    in_quote = was_quote = saw_quote = initial_quote = False
    comma = False
    comment = None
    while i < n and (line[i] not in _BLANKS or in_quote):
        c = line[i]
        if c == "#" and not in_quote:
            comment = line[i + 1 :]
            i = n
            break
        if c == "," and not in_quote:
            comma = True
            i += 1
            break
        if c != '"' or was_quote:
            buf.append(c)
        was_quote = (not was_quote) if (in_quote and c == '"') else False
        if c == '"':
            in_quote = not in_quote
            saw_quote = True
            if not buf:
                initial_quote = True
        i += 1
    if saw_quote or buf:
        return Token("".join(buf), initial_quote), i, comma, comment
    return None, i, comma, comment


def tokenize_line(line: str) -> tuple[list[list[Token]], str | None]:
    """The fields of one logical line (each a list of tokens) and its comment text, if any."""
    fields: list[list[Token]] = []
    i, n = 0, len(line)
    comment = None
    while i < n and comment is None:
        tokens: list[Token] = []
        while True:
            token, i, comma, comment = _scan_token(line, i)
            if token is not None:
                tokens.append(token)
            if not comma or comment is not None or i >= n:
                break
        if tokens:
            fields.append(tokens)
        elif comment is None and i >= n:
            break
    return fields, comment


def logical_lines(text: str) -> list[tuple[int, int, str]]:
    """(first line number, last line number, text) of each line after backslash joins."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out, i = [], 0
    while i < len(lines):
        start, buf = i + 1, ""
        while True:
            part = lines[i].rstrip("\r")
            i += 1
            if part.endswith("\\") and i < len(lines):
                buf += part[:-1]
                continue
            buf += part[:-1] if part.endswith("\\") else part
            break
        out.append((start, i, buf))
    return out


def quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _needs_quotes(text: str) -> bool:
    return text == "" or any(c in text for c in ' \t\r,"#') or text.endswith("\\")


def render_token(token: Token) -> str:
    text = token.text
    if token.quoted:
        special = text in _KEYWORDS or text[:1] in ("+", "@") or _needs_quotes(text)
        return quote(text) if special else text
    if text[:1] in ("+", "@") and len(text) > 1:
        rest = text[1:]
        return text[0] + (quote(rest) if _needs_quotes(rest) or rest in _KEYWORDS else rest)
    return quote(text) if _needs_quotes(text) else text


def render_field(tokens: list[Token]) -> str:
    return ",".join(render_token(t) for t in tokens)


class FieldError(ValueError):
    """A field's text is not one pg_hba field; the message says why."""


def parse_field(text: str) -> list[Token]:
    """The tokens of one comma-list field as typed in a form (`db1, "my db"`)."""
    if "\n" in text or "\r" in text:
        raise FieldError("must be on one line")
    if text.strip().endswith("\\"):
        raise FieldError("must not end with a backslash (PostgreSQL would join the next line)")
    if text.count('"') % 2:
        raise FieldError("has an unmatched double quote")
    fields, comment = tokenize_line(text)
    if comment is not None:
        raise FieldError('a # outside double quotes starts a comment: quote the name ("a#b")')
    if not fields:
        raise FieldError("is required")
    if len(fields) > 1:
        raise FieldError('separate names with commas; quote a name with spaces ("my db")')
    return fields[0]


# --- Rules and files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One pg_hba.conf record. `database`, `user` and `address` are field texts in canonical
    form (render_field); `options` are (name, value) pairs in order; `target` says which nodes
    of a cluster get the rule: both, primary or standbys."""

    conn_type: str
    database: str
    user: str
    address: str = ""
    netmask: str = ""
    method: str = ""
    options: tuple[tuple[str, str], ...] = ()
    comment: str = ""
    target: str = "both"

    def key(self) -> tuple:
        """What PostgreSQL sees: everything but the comment and the target."""
        return (self.conn_type, self.database, self.user, self.address, self.netmask,
                self.method, self.options)  # fmt: skip

    def options_text(self) -> str:
        return " ".join(render_option(k, v) for k, v in self.options)

    def line(self) -> str:
        return render_rule(self)


def render_option(name: str, value: str) -> str:
    return f"{name}={quote(value) if _needs_quotes(value) else value}"


def parse_options(text: str) -> tuple[tuple[str, str], ...]:
    """`name=value` options as typed in a form or found in a file, in order. Raises FieldError."""
    if not text.strip():
        return ()
    if "\n" in text or "\r" in text:
        raise FieldError("must be on one line")
    if text.count('"') % 2:
        raise FieldError("has an unmatched double quote")
    fields, comment = tokenize_line(text)
    if comment is not None:
        raise FieldError("a # outside double quotes starts a comment: quote the value")
    return _options_of(fields)


def _options_of(fields: list[list[Token]]) -> tuple[tuple[str, str], ...]:
    options = []
    for tokens in fields:
        for token in tokens:
            name, sep, value = token.text.partition("=")
            if not sep or not name:
                raise FieldError(
                    f"not in name=value form: {token.text!r} (quote a value holding commas "
                    'or spaces: ldapbasedn="dc=example, dc=org")'
                )
            options.append((name, value))
    return tuple(options)


@dataclass
class ParseError:
    line: int
    message: str


@dataclass
class HbaFile:
    """A parsed pg_hba.conf: `lines[i]` is the line number of `rules[i]` in the parsed text."""

    rules: list[Rule] = field(default_factory=list)
    header: str = ""
    footer: str = ""
    lines: list[int] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def rule_from_fields(fields: list[list[Token]]) -> Rule:
    """A Rule from a tokenized line, as parse_hba_line() reads it. Raises FieldError."""

    def one(index: int, what: str) -> Token:
        if index >= len(fields):
            raise FieldError(f"end of line before {what}")
        if len(fields[index]) != 1:
            raise FieldError(f"multiple values in {what}")
        return fields[index][0]

    conn_type = one(0, "connection type").text
    if conn_type not in CONN_TYPES:
        raise FieldError(f"invalid connection type {conn_type!r}")
    if len(fields) < 3:
        raise FieldError("end of line before the database and user fields")
    database, user = render_field(fields[1]), render_field(fields[2])
    i = 3
    address = netmask = ""
    if conn_type != "local":
        token = one(3, "the address")
        address = render_token(token)
        i = 4
        if not token.is_keyword(*ADDRESS_KEYWORDS) and "/" not in token.text:
            if _is_ip(token.text):
                netmask = one(4, "the IP mask").text
                i = 5
    method = one(i, "the authentication method").text
    options = _options_of(fields[i + 1 :])
    return Rule(conn_type, database, user, address, netmask, method, options)


def parse(text: str) -> HbaFile:
    """Parse a pg_hba.conf text. Lines that are not valid records are reported in `errors`
    (with their line number) and left out of `rules`."""
    result = HbaFile()
    blocks: list[list[str]] = []  # comment blocks since the last rule, split by blank lines
    current: list[str] = []
    for start, _end, line in logical_lines(text):
        fields, comment = tokenize_line(line)
        if not fields:
            if comment is not None:
                current.append(comment[1:] if comment.startswith(" ") else comment)
            elif current:
                blocks.append(current)
                current = []
            continue
        try:
            rule = rule_from_fields(fields)
        except FieldError as e:
            result.errors.append(ParseError(start, str(e)))
            continue
        above = current
        if current:
            blocks.append(current)
            current = []
        if not result.rules:
            header_blocks = blocks[:-1] if above else blocks
            result.header = _join_blocks(header_blocks)
            comment_blocks = blocks[-1:] if above else []
        else:
            comment_blocks = blocks
        lines = [ln for block in comment_blocks for ln in [*block, ""]][:-1]
        if comment is not None:
            lines.append(comment.strip())
        rule = replace(rule, comment="\n".join(lines).strip("\n"))
        result.rules.append(rule)
        result.lines.append(start)
        blocks = []
    if current:
        blocks.append(current)
    if result.rules:
        result.footer = _join_blocks(blocks)
    else:
        result.header = _join_blocks(blocks)
    return result


def _join_blocks(blocks: list[list[str]]) -> str:
    return "\n\n".join("\n".join(block) for block in blocks).strip("\n")


def _comment_lines(text: str) -> list[str]:
    return [f"# {line}" if line.strip() else "#" for line in text.split("\n")] if text else []


_WIDTHS = (8, 16, 16, 24)  # widest column text before alignment gives up


def render_rule(rule: Rule, widths: tuple[int, ...] = (0, 0, 0, 0)) -> str:
    address = f"{rule.address} {rule.netmask}".strip()
    cols = [rule.conn_type, rule.database, rule.user, address]
    if rule.conn_type == "local":
        cols[3] = ""
    parts = [col.ljust(w) for col, w in zip(cols, widths, strict=True)]
    parts += [rule.method, rule.options_text()]
    sep = "  " if any(widths) else " "  # two spaces between aligned columns, as initdb writes
    return sep.join(p for p in parts if p.strip() or p).rstrip()


def render(rules: list[Rule], header: str = "", footer: str = "") -> tuple[str, list[int]]:
    """The file text of `rules` and the line number of each rule in it."""
    widths = tuple(
        min(cap, max([len(_col(r, i)) for r in rules] or [0])) for i, cap in enumerate(_WIDTHS)
    )
    out: list[str] = _comment_lines(header)
    if out:
        out.append("")
    numbers = []
    for i, rule in enumerate(rules):
        if rule.comment and i > 0:
            out.append("")
        out += _comment_lines(rule.comment)
        out.append(render_rule(rule, widths))
        numbers.append(len(out))
    if footer:
        out += ["", *_comment_lines(footer)]
    return "\n".join(out) + "\n", numbers


def _col(rule: Rule, i: int) -> str:
    if i == 3:
        return "" if rule.conn_type == "local" else f"{rule.address} {rule.netmask}".strip()
    return (rule.conn_type, rule.database, rule.user)[i]


def for_role(rules: list[Rule], role: str) -> list[Rule]:
    """The rules a node of this role gets: a primary gets both+primary, a standby both+standbys."""
    wanted = ("both", "primary") if role == "primary" else ("both", "standbys")
    return [r for r in rules if r.target in wanted]


# --- Validation ---------------------------------------------------------------------------------


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
    version = ipaddress.ip_address(text).version
    if not rule.netmask:
        errors["netmask"] = [f"{text} needs a netmask here, or write it as {text}/bits."]
    elif mask_bits(rule.netmask, version) is None:
        errors["netmask"] = [
            f"{rule.netmask!r} is not a contiguous IPv{version} netmask like "
            + ("255.255.255.0." if version == 4 else "ffff:ffff:ffff:ffff::.")
        ]
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


# --- Comparing ----------------------------------------------------------------------------------


def mask_secrets(text: str) -> str:
    """`text` with the values of secret options (ldapbindpasswd, radiussecrets) masked."""
    names = "|".join(SECRET_OPTIONS)
    return re.sub(rf'\b({names})=("(?:[^"]|"")*"|[^\s,]+)', rf"\1={MASK}", text)


def secrets_of(rules: list[Rule]) -> list[str]:
    return [v for r in rules for k, v in r.options if k in SECRET_OPTIONS and v]


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    """A unified diff of two file texts with secret option values masked; "" when equal."""
    lines = difflib.unified_diff(
        mask_secrets(old).splitlines(), mask_secrets(new).splitlines(), old_name, new_name,
        lineterm="",
    )  # fmt: skip
    return "\n".join(lines)


def rule_changes(have: list[Rule], want: list[Rule]) -> list[str]:
    """What differs between two rule lists as PostgreSQL sees them (comments ignored), in
    words: rules only in `want`, only in `have`, or in another order."""
    a, b = [r.key() for r in have], [r.key() for r in want]
    changes = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for rule in have[i1:i2]:
            if rule.key() in b:
                changes.append(f"moved: {mask_secrets(rule.line())}")
            else:
                changes.append(f"only on the node: {mask_secrets(rule.line())}")
        for rule in want[j1:j2]:
            if rule.key() not in a:
                changes.append(f"missing on the node: {mask_secrets(rule.line())}")
    return changes


def merge_nodes(primary: list[Rule], standby: list[Rule] | None) -> list[Rule]:
    """One rule list from a primary's and a standby's rules: rules both have in the same order
    target both, the others the node they were found on. Comments come from the primary."""
    if standby is None:
        return [replace(r, target="both") for r in primary]
    merged = []
    matcher = difflib.SequenceMatcher(
        a=[r.key() for r in primary], b=[r.key() for r in standby], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            merged += [replace(r, target="both") for r in primary[i1:i2]]
            continue
        merged += [replace(r, target="primary") for r in primary[i1:i2]]
        merged += [replace(r, target="standbys") for r in standby[j1:j2]]
    return merged
