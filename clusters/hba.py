"""pg_hba.conf as rules: tokenize, parse (comments kept), render. Pure: no I/O.
Checking one rule is clusters.hba_validate, comparing rule lists and files clusters.hba_diff,
the lint of a rule list clusters.hbalint.

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
ADDRESS_KEYWORDS = ("all", "samehost", "samenet")
_KEYWORDS = set(DB_KEYWORDS) | set(ADDRESS_KEYWORDS)
SECRET_OPTIONS = ("ldapbindpasswd", "radiussecrets")
MASK = "********"
_BLANKS = " \t\r"


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


# --- Secrets ------------------------------------------------------------------------------------


def mask_secrets(text: str) -> str:
    """`text` with the values of secret options (ldapbindpasswd, radiussecrets) masked."""
    names = "|".join(SECRET_OPTIONS)
    return re.sub(rf'\b({names})=("(?:[^"]|"")*"|[^\s,]+)', rf"\1={MASK}", text)


def secrets_of(rules: list[Rule]) -> list[str]:
    return [v for r in rules for k, v in r.options if k in SECRET_OPTIONS and v]
