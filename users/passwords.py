"""Password verifiers computed by the console, so a clear password never crosses the wire to a
server nor lands in a statement, an audit entry or a log (pure: no network, no database).

- `scram_sha256_verifier(password)`: the SCRAM-SHA-256 secret exactly as PostgreSQL stores it in
  pg_authid.rolpassword and as libpq's PQencryptPasswordConn builds it
  (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, RFC 5802/7677), with the
  password first prepared by `pg_saslprep` as PostgreSQL does it (src/common/saslprep.c).
  PostgreSQL stores a verifier given to CREATE/ALTER ROLE … PASSWORD as it is.
- `mysql_native_password_hash(password)`: '*' + upper-case hex of SHA1(SHA1(password)), what
  MariaDB/MySQL's PASSWORD() computes and keep in mysql.global_priv's authentication_string.
- `generate_password()`: a strong random password (secrets module).
"""

import base64
import hashlib
import hmac
import secrets
import string
import stringprep
import unicodedata

SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations
SCRAM_SALT_BYTES = 16  # SCRAM_DEFAULT_SALT_LEN
MAX_PASSWORD_BYTES = 1024  # PostgreSQL's MAX_PASSWORD_LENGTH for SASLprep
GENERATED_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits

# RFC 4013 section 2.3 (the prohibited output of SASLprep), as PostgreSQL's table lists it.
_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21,
    stringprep.in_table_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


class PasswordRefused(ValueError):
    """The password cannot be used; the message says why (never the password)."""


def pg_saslprep(password: str) -> bytes:
    """The bytes PostgreSQL hashes for `password`: pg_saslprep's output, or the password itself
    when SASLprep prohibits it (PostgreSQL then uses the password as is, as libpq does).

    Follows src/common/saslprep.c step by step, including its order: an ASCII password is used
    as it is; otherwise non-ASCII spaces become spaces and B.1 characters are dropped (an empty
    result is prohibited), the prohibited-output, unassigned and bidi checks look at that mapped
    string, and the result is its NFKC normalisation."""
    raw = password.encode("utf-8")
    if len(raw) > MAX_PASSWORD_BYTES:
        raise PasswordRefused(f"a password is at most {MAX_PASSWORD_BYTES} bytes")
    if password.isascii():
        return raw
    mapped = []
    for ch in password:
        if stringprep.in_table_c12(ch):
            mapped.append(" ")
        elif not stringprep.in_table_b1(ch):
            mapped.append(ch)
    if not mapped:
        return raw
    for ch in mapped:
        if any(table(ch) for table in _PROHIBITED) or stringprep.in_table_a1(ch):
            return raw
    if any(stringprep.in_table_d1(ch) for ch in mapped):
        if any(stringprep.in_table_d2(ch) for ch in mapped):
            return raw
        if not (stringprep.in_table_d1(mapped[0]) and stringprep.in_table_d1(mapped[-1])):
            return raw
    return unicodedata.normalize("NFKC", "".join(mapped)).encode("utf-8")


def scram_sha256_verifier(
    password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL would store for `password` (a fresh random 16-byte
    salt unless one is given, for tests)."""
    check_password(password)
    salt = secrets.token_bytes(SCRAM_SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", pg_saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def scram_matches(verifier: str, password: str) -> bool:
    """Whether `verifier` (as stored) was made from `password`: recomputed with its salt."""
    try:
        method, rest = verifier.split("$", 1)
        params, keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        expected = scram_sha256_verifier(
            password, salt=base64.b64decode(salt), iterations=int(iterations)
        )
    except (ValueError, TypeError):
        return False
    return method == "SCRAM-SHA-256" and hmac.compare_digest(expected, verifier)


def mysql_native_password_hash(password: str) -> str:
    """'*' + upper-case hex of SHA1(SHA1(password)): MariaDB/MySQL's PASSWORD(), over the
    password's UTF-8 bytes (the console's connection character set)."""
    check_password(password)
    inner = hashlib.sha1(password.encode("utf-8")).digest()  # noqa: S324 - the server's scheme
    return "*" + hashlib.sha1(inner).hexdigest().upper()  # noqa: S324


def check_password(password: str) -> None:
    """Refuse a password no server would take: empty, with a NUL, or too long."""
    if not password:
        raise PasswordRefused("the password cannot be empty")
    if "\x00" in password:
        raise PasswordRefused("a password cannot contain a NUL character")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise PasswordRefused(f"a password is at most {MAX_PASSWORD_BYTES} bytes")


def generate_password(length: int = GENERATED_LENGTH) -> str:
    """A random password of letters and digits (about 5.95 bits a character: 190 bits for 32),
    with at least one upper-case letter, one lower-case letter and one digit so that server
    password policies (simple_password_check, validate_password) accept it. Letters and digits
    only: nothing to escape in a connection string, a shell or a config file."""
    if length < 12:
        raise ValueError("a generated password has at least 12 characters")
    while True:
        candidate = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
        ):
            return candidate
