"""Read and edit MariaDB/MySQL option files (my.cnf) without disturbing them.

Pure: text in, text out, no I/O. An edit changes only the lines it must; comments, blank lines,
order, spacing and every other option stay as they were, so a DBA's diff shows one line.

The syntax follows the server's own reader (mysys `my_default.c`) and option parser (`my_getopt.c`):

- leading whitespace is ignored; a line starting with `#` or `;` is a comment;
- `[group]` starts a group; group names compare case-insensitively, and a group may appear more
  than once (the occurrences add up);
- `name`, `name=value`, `name = value`: the name ends at `=` (surrounding blanks are dropped);
  a `#` outside quotes ends the line (an end-of-line comment); a value wholly inside matching
  single or double quotes loses them; `\\n \\t \\r \\b \\s \\\\ \\" \\'` are escapes;
- option names compare with `-` and `_` as equal (`local_infile` is `local-infile`),
  case-sensitively;
- `loose-NAME` is NAME (unknown options are then only a warning), `skip-NAME` and `disable-NAME`
  set NAME to `0`, `enable-NAME` to `1` (only when NAME is not itself a full option name, such as
  `skip-name-resolve`: we look the prefixed forms up only for the name asked about);
- `!include FILE` and `!includedir DIR` pull in other files; `includes()` lists them, since an
  option in an included file can override one here (the caller reads those files too, or asks
  `my_print_defaults`, whose output `parse_print_defaults` reads).

Not modelled: my_getopt's acceptance of unambiguous name prefixes (`local-inf`), which option files
should not rely on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "s": " ", '"': '"', "'": "'", "\\": "\\"}
# Prefixes my_getopt strips when the name itself is not an option, and what they set.
_PREFIXES = ("loose", "skip", "disable", "enable")
_TRUE = {"1", "on", "true"}
_FALSE = {"0", "off", "false"}


@dataclass(frozen=True)
class OptionLine:
    """One option line: where it is, its group, its name as written and its value (None when the
    line has no `=`)."""

    index: int  # 0-based line number in the text
    section: str | None  # None for options before any [group] (the server refuses those)
    name: str
    value: str | None


def normalize(name: str) -> str:
    """The comparable form of an option name: `-` and `_` are the same character."""
    return name.strip().replace("_", "-")


def _strip_end_comment(body: str) -> str:
    """Cut an end-of-line `#` comment that is outside quotes (as the server's reader does)."""
    quote = ""
    escape = False
    for i, ch in enumerate(body):
        if ch in "'\"" and not escape:
            if not quote:
                quote = ch
            elif quote == ch:
                quote = ""
        if not quote and ch == "#":
            return body[:i]
        escape = bool(quote) and ch == "\\" and not escape
    return body


def unquote(raw: str) -> str:
    """The value the server sees for the raw text after `=`: blanks trimmed, one pair of matching
    outer quotes removed, escapes applied (an unknown escape keeps its backslash)."""
    value = raw.strip()
    if len(value) > 1 and value[0] in "'\"" and value[-1] == value[0]:
        value = value[1:-1]
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def quote_value(value: str) -> str:
    """Write a value so that the server reads exactly `value` back (quoted only when needed)."""
    if "\n" in value or "\r" in value:
        raise ValueError("an option value cannot contain a line break")
    plain = value and value == value.strip() and not any(c in value for c in "#'\"\\")
    if plain:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _section_of(stripped: str) -> str | None:
    if not stripped.startswith("["):
        return None
    end = stripped.find("]")
    if end < 0:
        return None
    return stripped[1:end].strip()


def _parse_option(stripped: str) -> tuple[str, str | None]:
    body = _strip_end_comment(stripped)
    if "=" in body:
        name, raw = body.split("=", 1)
        return name.strip(), unquote(raw)
    return body.strip(), None


def parse(text: str) -> list[OptionLine]:
    """Every option line of the text, in order, with its group."""
    options = []
    section = None
    for index, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;!":
            continue
        if stripped.startswith("["):
            found = _section_of(stripped)
            if found is not None:
                section = found
            continue
        name, value = _parse_option(stripped)
        if name:
            options.append(OptionLine(index, section, name, value))
    return options


def sections(text: str) -> list[str]:
    """The group names in order of first appearance (as written)."""
    seen: list[str] = []
    for line in text.splitlines():
        found = _section_of(line.strip())
        if found is not None and found.lower() not in {s.lower() for s in seen}:
            seen.append(found)
    return seen


def includes(text: str) -> list[tuple[str, str]]:
    """The `!include` and `!includedir` lines in order: [("include", file), ("includedir", dir)]."""
    found = []
    for line in text.splitlines():
        match = re.match(r"\s*!(includedir|include)\s+(.+?)\s*$", line)
        if match:
            found.append((match.group(1), match.group(2)))
    return found


def _effect(option_name: str, wanted: str, value: str | None) -> tuple[bool, str | None]:
    """Whether an option line named `option_name` sets `wanted`, and the value it sets."""
    name = normalize(option_name)
    if name.startswith("loose-"):
        name = name[len("loose-") :]
    if name == wanted:
        return True, value
    if wanted.split("-", 1)[0] in _PREFIXES:
        return False, None  # asked for skip-name-resolve itself: no prefix games
    for prefix in ("skip", "disable", "enable"):
        if name == f"{prefix}-{wanted}":
            # my_getopt: enable-x and enable-x=<anything but 0> set 1, enable-x=0 sets 0;
            # skip-x/disable-x are the opposite.
            zero = value is not None and value == "0"
            on = not zero if prefix == "enable" else zero
            return True, "1" if on else "0"
    return False, None


def _matches(text: str, section: str, name: str) -> list[tuple[OptionLine, str | None]]:
    wanted = normalize(name)
    found = []
    for option in parse(text):
        if option.section is None or option.section.lower() != section.lower():
            continue
        hit, value = _effect(option.name, wanted, option.value)
        if hit:
            found.append((option, value))
    return found


def get_option(text: str, section: str, name: str) -> str | None:
    """The value `name` has in `[section]`: the last line that sets it wins (as in the server).

    None when the group does not set it. A line without `=` gives "" (for a boolean option that
    means on: see `as_bool`); `skip-NAME`/`disable-NAME` give "0", `enable-NAME` gives "1".
    """
    found = _matches(text, section, name)
    if not found:
        return None
    value = found[-1][1]
    return "" if value is None else value


def as_bool(value: str | None) -> bool | None:
    """How the server reads a boolean option's value: "" (bare name), 1/on/true are on, 0/off/false
    off (case-insensitive); None stays None (not set). Anything else is off with a warning in the
    server; here it raises ValueError, since a checker should say so rather than guess."""
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered == "" or lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean option value")


def get_effective(text: str, groups: list[str] | tuple[str, ...], name: str) -> str | None:
    """The value `name` ends with when a program reads all of `groups` from this text (the server
    applies option lines in file order, whatever group they are in: the last one wins)."""
    wanted = {g.lower() for g in groups}
    value: str | None = None
    found = False
    for option in parse(text):
        if option.section is None or option.section.lower() not in wanted:
            continue
        hit, effect = _effect(option.name, normalize(name), option.value)
        if hit:
            found, value = True, effect
    if not found:
        return None
    return "" if value is None else value


def _line_ending(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _format_line(name: str, value: str | None) -> str:
    return name if value is None else f"{name}={quote_value(value)}"


def _rewrite(line: str, name: str, value: str | None, written_name: str) -> str:
    """Replace the value of an existing option line, keeping its indentation, spacing, and its
    end-of-line comment; a prefixed form (skip-x, enable-x) becomes `name=value`."""
    indent = line[: len(line) - len(line.lstrip())]
    stripped = line.strip()
    body = _strip_end_comment(stripped)
    comment = stripped[len(body) :]
    gap = body[len(body.rstrip()) :] if comment else ""
    body = body.rstrip()
    if normalize(written_name).removeprefix("loose-") != normalize(name) or value is None:
        new_body = _format_line(name, value)
    elif "=" in body:
        left, raw = body.split("=", 1)
        spacing = raw[: len(raw) - len(raw.lstrip())]
        new_body = f"{left}={spacing}{quote_value(value)}"
    else:
        new_body = f"{body}={quote_value(value)}"
    if comment and not gap:
        gap = " "
    return f"{indent}{new_body}{gap}{comment}"


def set_option(text: str, section: str, name: str, value: str | None) -> str:
    """`text` with `name` set to `value` in `[section]` (value None writes a bare `name`).

    The last line that sets the option in the group is rewritten in place (its comment kept);
    earlier ones are already overridden by it and stay. Without one, `name=value` goes after the
    group's last option line (its last occurrence), and a missing group is appended at the end.
    """
    lines = text.splitlines(keepends=True)
    eol = _line_ending(text)
    found = _matches(text, section, name)
    if found:
        option = found[-1][0]
        old = lines[option.index]
        ending = old[len(old.rstrip("\r\n")) :]
        lines[option.index] = _rewrite(old.rstrip("\r\n"), name, value, option.name) + ending
        return "".join(lines)
    new_line = _format_line(name, value) + eol
    at = _insert_point(lines, section)
    if at is None:
        prefix = "".join(lines)
        if prefix and not prefix.endswith(("\n", "\r")):
            prefix += eol
        if prefix and prefix.strip():
            prefix += eol if not prefix.endswith(eol * 2) else ""
        return f"{prefix}[{section}]{eol}{new_line}"
    if at > 0 and not lines[at - 1].endswith(("\n", "\r")):
        lines[at - 1] += eol
    lines.insert(at, new_line)
    return "".join(lines)


def _insert_point(lines: list[str], section: str) -> int | None:
    """Index after the last option (or header) of the group's last occurrence; None if absent."""
    current = None
    point = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        header = _section_of(stripped)
        if header is not None:
            current = header
            if header.lower() == section.lower():
                point = index + 1
            continue
        if current is not None and current.lower() == section.lower():
            if stripped and stripped[0] not in "#;":
                point = index + 1
    return point


def remove_option(text: str, section: str, name: str) -> str:
    """`text` without any line of `[section]` that sets `name` (including `loose-`, `skip-`,
    `disable-` and `enable-` forms). Unchanged when there is none."""
    drop = {option.index for option, _value in _matches(text, section, name)}
    if not drop:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(line for index, line in enumerate(lines) if index not in drop)


def parse_print_defaults(output: str) -> list[tuple[str, str | None]]:
    """The options `my_print_defaults GROUP...` printed (one `--name[=value]` a line), in order."""
    options = []
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("--"):
            continue
        name, sep, value = line[2:].partition("=")
        options.append((name, value if sep else None))
    return options


def effective_from_args(args: list[tuple[str, str | None]], name: str) -> str | None:
    """The value `name` ends with given parsed `my_print_defaults` options (the last one wins);
    None when no option sets it. Bare and prefixed forms as in `get_option`."""
    wanted = normalize(name)
    result: str | None = None
    found = False
    for option_name, value in args:
        hit, effect = _effect(option_name, wanted, value)
        if hit:
            found, result = True, effect
    if not found:
        return None
    return "" if result is None else result
