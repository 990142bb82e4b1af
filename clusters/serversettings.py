"""Checking a proposed server setting before anything is sent (pure: no I/O).

PostgreSQL: a value is checked against the parameter's own pg_settings row (vartype bool,
integer, real, string or enum; min_val/max_val; enumvals; the unit, so `64MB` is 65536 for a
parameter counted in kB) and turned into the literals `ALTER SYSTEM SET name = …` takes: one for
most parameters, one per element for the list parameters whose elements the server quotes as
identifiers (shared_preload_libraries, search_path…), where a single 'a, b' would become one
library named "a, b" and the server would not start again.

MariaDB: a value is checked against its information_schema.SYSTEM_VARIABLES row (BOOLEAN, the
INT and BIGINT types with their range and block size, DOUBLE, ENUM, SET, FLAGSET, VARCHAR) and
normalised into what both the option file and SET GLOBAL accept (K/M/G suffixes expanded).

listen_addresses and MariaDB's bind_address are checked for syntax ('*', 'localhost', IP
addresses and host names, comma-separated), and `lost_access` says when a new value would no
longer reach the address the console uses.

Every refusal is SettingRefused with a message for the person, naming what is wrong.
"""

import ipaddress
import math
import re
from dataclasses import dataclass

from console.executor.redact import redact

# Parameters whose list elements PostgreSQL quotes as identifiers (GUC_LIST_QUOTE in 15).
PG_LIST_QUOTE = frozenset(
    {
        "shared_preload_libraries",
        "local_preload_libraries",
        "session_preload_libraries",
        "search_path",
        "temp_tablespaces",
        "unix_socket_directories",
    }
)
# Parameters ALTER SYSTEM cannot or must not change from here.
PG_REFUSED = {
    "data_directory": "the data directory is chosen when the server starts",
    "config_file": "the configuration file is chosen when the server starts",
    "hba_file": "pg_hba.conf's place is chosen when the server starts",
    "ident_file": "pg_ident.conf's place is chosen when the server starts",
}
# The settings a DBA looks at first: shown at the top of the list.
PG_KEY_SETTINGS = (
    "listen_addresses", "port", "max_connections", "shared_buffers", "work_mem",
    "maintenance_work_mem", "effective_cache_size", "wal_level", "max_wal_size",
    "synchronous_commit", "synchronous_standby_names", "hot_standby", "archive_mode",
    "archive_command", "shared_preload_libraries", "log_min_duration_statement",
    "statement_timeout",
)  # fmt: skip
MARIADB_KEY_SETTINGS = (
    "bind_address", "port", "max_connections", "innodb_buffer_pool_size", "wait_timeout",
    "local_infile", "log_error", "slow_query_log", "long_query_time", "sql_mode",
    "character_set_server", "read_only",
)  # fmt: skip
ADDRESS_SETTINGS = {"postgresql": "listen_addresses", "mariadb": "bind_address"}
MAX_VALUE_LENGTH = 4096

_MEMORY = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")
_PG_TRUE = {"on", "true", "yes", "1"}
_PG_FALSE = {"off", "false", "no", "0"}
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_MY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MY_SUFFIX = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}


class SettingRefused(ValueError):
    """The value (or the parameter) is not acceptable; the message says why, for a person."""


@dataclass(frozen=True)
class PgValue:
    """A checked PostgreSQL value: `literals` for ALTER SYSTEM SET, `text` to show and record."""

    literals: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class MyValue:
    """A checked MariaDB value: `config` for the option file, `sql` for SET GLOBAL (an int or a
    float for numeric variables, which the server refuses as strings), `text` to show."""

    config: str
    sql: object
    text: str


# --- Shared checks ----------------------------------------------------------------------------


def _plain_text(value: str) -> str:
    if len(value) > MAX_VALUE_LENGTH:
        raise SettingRefused(f"The value is too long (at most {MAX_VALUE_LENGTH} characters).")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise SettingRefused("The value cannot contain line breaks or control characters.")
    if redact(value) != value:
        raise SettingRefused(
            "The value looks like it holds a credential; the console does not send "
            "credentials through server settings."
        )
    return value


def parse_address_list(value: str, setting: str) -> list[str]:
    """listen_addresses / bind_address: '*', 'localhost', IP addresses or host names, comma
    separated; '' (PostgreSQL: Unix sockets only) is an empty list."""
    value = value.strip()
    if not value:
        return []
    items = [item.strip() for item in value.split(",")]
    for item in items:
        if not item:
            raise SettingRefused(f"{setting}: an empty entry between commas.")
        if item == "*":
            continue
        try:
            ipaddress.ip_address(item)
        except ValueError:
            if not _HOSTNAME.match(item) or item.replace(".", "").isdigit():
                raise SettingRefused(
                    f"{setting}: {item!r} is neither '*', an IP address nor a host name."
                ) from None
    return items


def lost_access(addresses: list[str], console_address: str) -> bool:
    """Whether a server listening on `addresses` (after its restart) would no longer accept the
    console's connections to `console_address` (the node's registered address)."""
    if "*" in addresses:
        return False
    try:
        ip = ipaddress.ip_address(console_address)
    except ValueError:
        return console_address.lower() not in {a.lower() for a in addresses}
    wildcard = "0.0.0.0" if ip.version == 4 else "::"  # noqa: S104 (a check, not a bind)
    for address in addresses:
        if address == wildcard or address == "::":  # '::' also takes IPv4 on dual-stack hosts
            return False
        try:
            if ipaddress.ip_address(address) == ip:
                return False
        except ValueError:
            continue  # a host name: may or may not be this address; the console cannot tell
    return True


# --- PostgreSQL -------------------------------------------------------------------------------


def _unit_factor(unit: str) -> tuple[str, float]:
    """('memory'|'time', size of one base unit) for a pg_settings unit such as '8kB' or 'ms'."""
    match = re.fullmatch(r"(\d*)([A-Za-z]+)", unit)
    if not match:
        raise SettingRefused(f"Unknown unit {unit!r}.")
    count = int(match.group(1) or 1)
    base = match.group(2)
    if base in _MEMORY:
        return "memory", count * _MEMORY[base]
    if base in _TIME:
        return "time", count * _TIME[base]
    raise SettingRefused(f"Unknown unit {unit!r}.")


def _pg_number(row: dict, value: str) -> float:
    """The value in the parameter's base unit (as pg_settings' setting counts it)."""
    match = _NUMBER.match(value)
    name = row["name"]
    if not match:
        raise SettingRefused(f"{name} takes a number, not {value!r}.")
    number, unit = float(match.group(1)), match.group(2)
    if not unit:
        return number
    if not row.get("unit"):
        raise SettingRefused(f"{name} takes no unit.")
    kind, base = _unit_factor(row["unit"])
    table = _MEMORY if kind == "memory" else _TIME
    if unit not in table:
        valid = ", ".join(table)
        raise SettingRefused(f"{name}: unknown unit {unit!r} (valid units: {valid}).")
    return number * table[unit] / base


def _pg_range(row: dict, number: float, shown: str) -> None:
    low, high = row.get("min_val"), row.get("max_val")
    unit = f" {row['unit']}" if row.get("unit") else ""
    if low not in (None, "") and number < float(low):
        raise SettingRefused(f"{row['name']}: {shown} is below the minimum {low}{unit}.")
    if high not in (None, "") and number > float(high):
        raise SettingRefused(f"{row['name']}: {shown} is above the maximum {high}{unit}.")


def pg_shown(value: str, unit: str) -> str:
    """A raw pg_settings number in its base `unit` as SHOW prints it: in the largest unit it is
    a whole number of (4096 with unit kB is 4MB, 60 with unit s is 1min); other values as they
    are."""
    if not unit or not re.fullmatch(r"-?\d+", value or "") or int(value) <= 0:
        return value
    kind, base = _unit_factor(unit)
    amount = int(value) * base
    table = _MEMORY if kind == "memory" else _TIME
    for name, size in sorted(table.items(), key=lambda item: -item[1]):
        if size >= 1 and amount % size == 0:
            return f"{int(amount // size)}{name}"
    return f"{value}{unit}"


def split_pg_list(value: str) -> list[str]:
    """Elements of a list value as written in postgresql.conf or by SHOW: comma-separated,
    each bare (blanks trimmed) or in double quotes ("" for a quote inside)."""
    items: list[str] = []
    text = value.strip()
    i = 0
    while i < len(text):
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == '"':
            j, item = i + 1, []
            while True:
                if j >= len(text):
                    raise SettingRefused("A double quote is not closed.")
                if text[j] == '"':
                    if j + 1 < len(text) and text[j + 1] == '"':
                        item.append('"')
                        j += 2
                        continue
                    break
                item.append(text[j])
                j += 1
            items.append("".join(item))
            i = j + 1
            while i < len(text) and text[i] == " ":
                i += 1
            if i < len(text) and text[i] != ",":
                raise SettingRefused("Text after a closing double quote must be a comma.")
        else:
            end = text.find(",", i)
            end = len(text) if end < 0 else end
            item_text = text[i:end].strip()
            if not item_text:
                raise SettingRefused("An empty entry between commas.")
            items.append(item_text)
            i = end
        if i < len(text) and text[i] == ",":
            i += 1
            if i >= len(text.rstrip()):
                raise SettingRefused("An empty entry after the last comma.")
    return items


def check_pg_value(row: dict, value: str) -> PgValue:
    """Check `value` for the parameter whose pg_settings row is `row`; return what to send.

    Raises SettingRefused when the parameter cannot be set here or the value is not valid."""
    name = row["name"]
    if name in PG_REFUSED:
        raise SettingRefused(f"{name} cannot be changed here: {PG_REFUSED[name]}.")
    if row.get("context") == "internal":
        raise SettingRefused(f"{name} is read-only: the server reports it, nobody sets it.")
    value = _plain_text(value)
    vartype = row.get("vartype")
    if vartype == "bool":
        lowered = value.strip().lower()
        if lowered in _PG_TRUE | _PG_FALSE:
            text = "on" if lowered in _PG_TRUE else "off"
            return PgValue((text,), text)
        raise SettingRefused(f"{name} is on or off, not {value!r}.")
    if vartype == "enum":
        allowed = list(row.get("enumvals") or [])
        for choice in allowed:
            if value.strip().lower() == choice.lower():
                return PgValue((choice,), choice)
        raise SettingRefused(f"{name} is one of {', '.join(allowed)}; not {value!r}.")
    if vartype in ("integer", "real"):
        number = _pg_number(row, value)
        if vartype == "integer":
            number = float(round(number))
        if math.isnan(number) or math.isinf(number):
            raise SettingRefused(f"{name} takes a finite number.")
        _pg_range(row, number, value.strip())
        return PgValue((value.strip(),), value.strip())
    # string
    if name == "listen_addresses":
        items = parse_address_list(value, name)
        text = ", ".join(items)
        return PgValue((text,), text)
    if name in PG_LIST_QUOTE:
        items = split_pg_list(value)
        if not items:
            raise SettingRefused(
                f"{name} cannot be emptied with ALTER SYSTEM on PostgreSQL 15 (it would write "
                'a list of one empty name, ""); use Reset to default instead.'
            )
        return PgValue(tuple(items), ", ".join(_pg_list_shown(i) for i in items))
    return PgValue((value,), value)


def _pg_list_shown(item: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", item):
        return item
    return '"' + item.replace('"', '""') + '"'


def pg_literals_of_file_value(name: str, file_value: str) -> tuple[str, ...]:
    """The ALTER SYSTEM literals that write `file_value` (a pg_file_settings setting, as the
    file holds it) back: list elements for the quoted-list parameters, else the value itself."""
    if name in PG_LIST_QUOTE:
        return tuple(split_pg_list(file_value)) or ("",)
    return (file_value,)


def pg_key_order(name: str) -> tuple[int, str]:
    """Sort key: the key settings first, in their order, then the rest by name."""
    if name in PG_KEY_SETTINGS:
        return PG_KEY_SETTINGS.index(name), name
    return len(PG_KEY_SETTINGS), name


# --- MariaDB ----------------------------------------------------------------------------------


def check_mariadb_name(name: str) -> str:
    """A variable name as SHOW GLOBAL VARIABLES prints it (lowercase, digits, _)."""
    if not _MY_NAME.match(name):
        raise SettingRefused(f"{name!r} is not a server variable name.")
    return name


def _my_int(row: dict, value: str) -> int:
    name = row["name"]
    match = re.fullmatch(r"\s*([+-]?\d+)\s*([KMGTPkmgtp]?)\s*", value)
    if not match:
        raise SettingRefused(f"{name} takes a whole number (K, M, G, T suffixes allowed).")
    number = int(match.group(1)) * _MY_SUFFIX[match.group(2).upper()]
    low, high = row.get("min"), row.get("max")
    if low not in (None, "") and number < int(low):
        raise SettingRefused(f"{name}: {number} is below the minimum {low}.")
    if high not in (None, "") and number > int(high):
        raise SettingRefused(f"{name}: {number} is above the maximum {high}.")
    block = int(row.get("block_size") or 0)
    if block > 1 and number % block:
        raise SettingRefused(f"{name} must be a multiple of {block}.")
    return number


def _my_choices(row: dict) -> list[str]:
    return [c for c in (row.get("enum_values") or "").split(",") if c]


def check_mariadb_value(row: dict, value: str) -> MyValue:
    """Check `value` for the variable whose SYSTEM_VARIABLES row is `row` (keys: name, type,
    min, max, block_size, enum_values, read_only, option); return what to write and to SET."""
    name = check_mariadb_name(row["name"])
    if row.get("read_only") and not row.get("option"):
        raise SettingRefused(f"{name} is read-only: the server reports it, nobody sets it.")
    value = _plain_text(value).strip()
    kind = (row.get("type") or "").upper()
    if kind == "BOOLEAN":
        lowered = value.lower()
        if lowered in ("on", "true", "1", "yes"):
            return MyValue("ON", "ON", "ON")
        if lowered in ("off", "false", "0", "no"):
            return MyValue("OFF", "OFF", "OFF")
        raise SettingRefused(f"{name} is ON or OFF, not {value!r}.")
    if kind in ("INT", "INT UNSIGNED", "BIGINT", "BIGINT UNSIGNED"):
        number = _my_int(row, value)
        return MyValue(str(number), number, str(number))
    if kind == "DOUBLE":
        try:
            number = float(value)
        except ValueError:
            raise SettingRefused(f"{name} takes a number, not {value!r}.") from None
        for bound, below in (("min", True), ("max", False)):
            limit = row.get(bound)
            if limit not in (None, "") and (
                number < float(limit) if below else number > float(limit)
            ):
                word = "below the minimum" if below else "above the maximum"
                raise SettingRefused(f"{name}: {value} is {word} {limit}.")
        return MyValue(value, number, value)
    if kind == "ENUM":
        choices = _my_choices(row)
        if not choices:  # character sets, collations: names the server checks
            if not re.fullmatch(r"[A-Za-z0-9_]+", value):
                raise SettingRefused(f"{name} takes a name (letters, digits, _).")
            return MyValue(value, value, value)
        for choice in choices:
            if value.lower() == choice.lower():
                return MyValue(choice, choice, choice)
        raise SettingRefused(f"{name} is one of {', '.join(choices)}; not {value!r}.")
    if kind == "SET":
        choices = {c.lower(): c for c in _my_choices(row)}
        items = [i.strip() for i in value.split(",")] if value else []
        unknown = [i for i in items if i.lower() not in choices]
        if unknown:
            raise SettingRefused(f"{name}: unknown {', '.join(unknown)}.")
        text = ",".join(choices[i.lower()] for i in items)
        return MyValue(text, text, text)
    if kind == "FLAGSET":
        flags = {c.lower() for c in _my_choices(row)}
        for item in (i.strip() for i in value.split(",")):
            flag, _, state = item.partition("=")
            if item == "default":
                continue
            if flag.lower() not in flags or state.lower() not in ("on", "off", "default"):
                raise SettingRefused(f"{name}: {item!r} is not flag=on, flag=off or default.")
        return MyValue(value, value, value)
    if name == "bind_address":
        items = parse_address_list(value, name)
        if not items:
            raise SettingRefused("bind_address cannot be empty.")
        text = ",".join(items)
        return MyValue(text, text, text)
    return MyValue(value, value, value)


def mariadb_key_order(name: str) -> tuple[int, str]:
    if name in MARIADB_KEY_SETTINGS:
        return MARIADB_KEY_SETTINGS.index(name), name
    return len(MARIADB_KEY_SETTINGS), name
