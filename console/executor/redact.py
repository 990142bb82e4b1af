"""Masking of secrets in text bound for audit entries, job logs and pages.

`redact(text, secrets)` replaces every given secret (and the forms it takes once shell-quoted,
SQL-quoted or JSON-escaped) and every value that looks like a credential by its shape: password
assignments and clauses, credentials in URLs, `mysql -p<secret>`, SCRAM and MD5 verifiers, MySQL
password hashes, PEM private keys and Fernet tokens. `cut(text, limit)` shortens text for storage
and keeps its head and tail. Redact first, then cut: cutting first could leave half a secret at
the seam where no pattern recognises it.
"""

import json
import re
import shlex
from collections.abc import Iterable

MASK = "********"

# A quoted SQL or shell string: '...' with '' or \' inside, or "..." with "" or \" inside.
_SQ = r"'(?:[^'\\]|''|\\.)*'"
_DQ = r'"(?:[^"\\]|""|\\.)*"'
_QUOTED = rf"(?:{_SQ}|{_DQ})"

# Each pattern keeps group 1 (the context) and masks the rest of the match.
_PATTERNS: list[re.Pattern[str]] = [
    # PEM private key blocks (OpenSSH, PKCS#1, PKCS#8, encrypted), also when cut off before END.
    re.compile(
        r"()-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
        re.S,
    ),
    # JSON-ish "password": "x" (before the SQL shapes, which would take the key's quote)
    re.compile(r'(?i)("[\w-]*(?:password|passwd|secret|token)[\w-]*"\s*:\s*)"(?:[^"\\]|\\.)*"'),
    # SQL: PASSWORD 'x', ENCRYPTED PASSWORD 'x', IDENTIFIED BY [PASSWORD] 'x',
    # PASSWORD('x'), SET PASSWORD = 'x', IDENTIFIED VIA plugin USING 'x' / AS 'x'.
    re.compile(rf"(?i)(\bPASSWORD\s*(?:=\s*)?(?:\(\s*)?){_QUOTED}"),
    re.compile(rf"(?i)(\bIDENTIFIED\s+BY\s+(?:PASSWORD\s+)?){_QUOTED}"),
    re.compile(
        rf"(?i)(\bIDENTIFIED\s+(?:VIA|WITH)\s+\w+\s+(?:USING|AS|BY)\s+(?:\w+\s*\(\s*)?){_QUOTED}"
    ),
    # key=value: password=x, PGPASSWORD=x, MYSQL_PWD=x, --password=x, pass='x y'
    re.compile(rf"(?i)(\b[\w-]*(?:password|passwd|pwd|secret)\s*=\s*)(?:{_QUOTED}|[^\s&;,'\"]+)"),
    # URLs with user:password@host
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(?=@)"),
    # PostgreSQL verifiers: SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey, md5 + 32 hex.
    re.compile(r"()SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+"),
    re.compile(r"()\bmd5[0-9a-f]{32}\b"),
    # MySQL/MariaDB mysql_native_password hashes: * + 40 hex.
    re.compile(r"()\*[0-9A-Fa-f]{40}\b"),
    # Fernet tokens (version byte 0x80 encodes as "gAAAAA").
    re.compile(r"()\bgAAAAA[A-Za-z0-9_-]{40,}={0,2}"),
]

# Words that any match of the pattern at the same index contains (lowercase for the (?i)
# ones). An ASCII text without them is not searched with that pattern: most audited text (a
# monitoring statement, a command's output) has none, and these patterns cost about 3 ms on
# clusters/sql/monitor-pg.sql. Text that is not ASCII is always searched: (?i) matches some
# non-ASCII letters (long s, dotless i, capital I with dot) that str.lower() does not fold.
_WORDS: list[tuple[str, ...]] = [
    ("PRIVATE KEY-----",),
    ("passw", "secret", "token"),
    ("password",),
    ("identified",),
    ("identified",),
    ("passw", "pwd", "secret"),
    ("://",),
    ("SCRAM-SHA-256$",),
    ("md5",),
    ("*",),
    ("gAAAAA",),
]


def _may_match(pattern: re.Pattern[str], words: tuple[str, ...], text: str) -> bool:
    if not text.isascii():
        return True
    haystack = text.lower() if pattern.flags & re.IGNORECASE else text
    return any(word in haystack for word in words)


# `mysql -psecret`: -p followed directly by a value means a password only for MySQL clients
# (for psql and most tools -p is the port), so it is masked only on lines that run one.
_MYSQL_CLIENT = re.compile(
    r"\b(?:mysql|mariadb|mysqldump|mariadb-dump|mysqladmin|mariadb-admin|mysqlcheck|"
    r"mariadb-check|mysqlimport|mariadb-import|mysqlbinlog|mariadb-binlog)\b"
)
_MYSQL_P = re.compile(rf"((?:^|\s)-p)(?:{_QUOTED}|\S+)")


def _forms(secret: str) -> list[str]:
    """The secret as it may appear in text: raw, shell-quoted, SQL- and JSON-escaped."""
    forms = {
        secret,
        shlex.quote(secret),
        secret.replace("'", "''"),
        secret.replace("\\", "\\\\").replace("'", "\\'"),
        json.dumps(secret)[1:-1],
    }
    return sorted((f for f in forms if f), key=len, reverse=True)


def _mask_mysql_p(line: str) -> str:
    if "-p" in line and _MYSQL_CLIENT.search(line):
        return _MYSQL_P.sub(lambda m: m.group(1) + MASK, line)
    return line


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with the given secrets and anything shaped like a credential masked.

    Guarantees: no given secret of four characters or more survives in any of its quoted forms;
    shorter ones are masked too but only as themselves (they are too short to mean much, and
    masking them everywhere would garble the text).
    """
    if not text:
        return text
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in _forms(secret) if len(secret) >= 4 else [secret]:
            text = text.replace(form, MASK)
        # A multi-line secret (a private key) may reach the text with other line endings.
        for line in secret.splitlines():
            if len(line.strip()) >= 16:
                text = text.replace(line.strip(), MASK)
    for pattern, words in zip(_PATTERNS, _WORDS, strict=True):
        if _may_match(pattern, words, text):
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return "\n".join(_mask_mysql_p(line) for line in text.split("\n"))


def cut(text: str, limit: int) -> str:
    """Return `text` unchanged if it fits in `limit` characters, else its head and tail joined by
    a marker saying how much was left out; the result is at most `limit` characters long."""
    if len(text) <= limit:
        return text
    marker = f"\n[… {len(text) - limit} characters cut …]\n"
    room = max(limit - len(marker), 0)
    head = room * 2 // 3
    tail = room - head
    marker = f"\n[… {len(text) - head - tail} characters cut …]\n"
    result = text[:head] + marker + (text[-tail:] if tail else "")
    return result[:limit]
