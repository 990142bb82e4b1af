"""users/passwords.py: the verifiers the console computes, checked against the real thing —
libpq's own PQencryptPasswordConn (same salt recomputed), PostgreSQL logins with the verifier
and pg_authid.rolpassword, MariaDB's PASSWORD() and stored authentication_string."""

import base64
import hashlib
import re

import pytest
from psycopg import sql

from console.executor.sql import quote_mysql_account
from tests.users.labdb import Cleanup, my_admin, my_can_login, pg_admin, pg_can_login
from users import passwords

# Passwords that take every path of SASLprep: ASCII as is (control characters included),
# NFKC-changed, mapped to nothing (soft hyphen), non-ASCII space, prohibited (a control character
# among non-ASCII, an unassigned code point, bad bidi: used as is), valid right-to-left, only
# mapped-to-nothing characters (empty after mapping: used as is), Latin with accents.
SASL_CASES = [
    "plain ascii 'quote' \"dq\" \\ ;--",
    "tab\tand\x7f",
    "ｆｕｌｌｗｉｄｔｈ",
    "soft\u00adhyphen é",
    "em\u2003space é",
    "ctl\x07é",
    "unassigned\u0378é",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "\u0627abc\u0627",
    "\u0627\u0031",
    "\u00ad\u200b",
    "pässwörd ÅΩ ﬁ ½",
]


@pytest.fixture
def cleanup(lab_env):
    c = Cleanup(lab_env)
    yield c
    c.run()


# --- pure ---------------------------------------------------------------------------------------


def test_scram_verifier_has_the_format_postgresql_stores():
    verifier = passwords.scram_sha256_verifier("secret")
    b64 = r"([A-Za-z0-9+/=]+)"
    match = re.fullmatch(rf"SCRAM-SHA-256\$4096:{b64}\${b64}:{b64}", verifier)
    assert match
    assert len(base64.b64decode(match[1])) == 16
    assert len(base64.b64decode(match[2])) == len(base64.b64decode(match[3])) == 32


def test_scram_verifiers_are_salted_freshly():
    assert passwords.scram_sha256_verifier("same") != passwords.scram_sha256_verifier("same")


def test_scram_known_answer():
    # RFC 7677's example user password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 rounds:
    # the StoredKey and ServerKey follow from its SaltedPassword.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = passwords.scram_sha256_verifier("pencil", salt=salt)
    assert verifier == (
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
        "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    )


def test_scram_matches_recomputes_with_the_stored_salt():
    verifier = passwords.scram_sha256_verifier("right")
    assert passwords.scram_matches(verifier, "right")
    assert not passwords.scram_matches(verifier, "wrong")
    assert not passwords.scram_matches("md5abc", "right")


def test_mysql_native_password_hash_known_answer():
    # MariaDB: SELECT PASSWORD('password') -> *2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19
    assert passwords.mysql_native_password_hash("password") == (
        "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
    )
    inner = hashlib.sha1(b"x").digest()
    assert passwords.mysql_native_password_hash("x") == (
        "*" + hashlib.sha1(inner).hexdigest().upper()
    )


@pytest.mark.parametrize("bad, message", [("", "empty"), ("a\x00b", "NUL"), ("x" * 1025, "1024")])
def test_passwords_no_server_takes_are_refused(bad, message):
    with pytest.raises(passwords.PasswordRefused, match=message):
        passwords.scram_sha256_verifier(bad)
    with pytest.raises(passwords.PasswordRefused, match=message):
        passwords.mysql_native_password_hash(bad)


def test_generated_passwords_are_long_mixed_and_distinct():
    made = {passwords.generate_password() for _ in range(200)}
    assert len(made) == 200
    for p in made:
        assert len(p) == 32 and p.isalnum() and p.isascii()
        assert any(c.isupper() for c in p) and any(c.islower() for c in p)
        assert any(c.isdigit() for c in p)
    with pytest.raises(ValueError):
        passwords.generate_password(8)


def test_saslprep_maps_as_postgresql_does():
    assert passwords.pg_saslprep("ｆｕｌｌ") == b"full"
    assert passwords.pg_saslprep("a\u00adbé") == "abé".encode()
    assert passwords.pg_saslprep("a\u2003bé") == "a bé".encode()
    assert passwords.pg_saslprep("ctl\x07é") == "ctl\x07é".encode()  # prohibited: as is
    assert passwords.pg_saslprep("\u0627\u0031") == "\u0627\u0031".encode()  # bidi: as is


# --- against libpq and the lab's PostgreSQL ----------------------------------------------------


@pytest.mark.parametrize("password", SASL_CASES)
def test_scram_verifier_equals_libpqs_for_the_same_salt(lab_env, password):
    """libpq's PQencryptPasswordConn (what psql's \\password uses) is the reference: its
    verifier, recomputed by the console with the salt libpq chose, is the same string."""
    with pg_admin(lab_env) as conn:
        theirs = conn.pgconn.encrypt_password(
            password.encode(), b"someone", b"scram-sha-256"
        ).decode()
    salt = base64.b64decode(theirs.split("$")[1].split(":")[1])
    assert passwords.scram_sha256_verifier(password, salt=salt) == theirs


@pytest.mark.parametrize("password", ["Plain-ascii 'q' \"d\" ;--", "pässwörd ﬁ", "ｆｕｌｌ"])
def test_postgresql_stores_the_verifier_as_given_and_accepts_the_password(
    lab_env, cleanup, password
):
    role = "pw test ü"
    verifier = passwords.scram_sha256_verifier(password)
    cleanup.pg_roles.append(role)
    with pg_admin(lab_env) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(verifier)
            )
        )
        stored = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()[0]
    assert stored == verifier
    assert pg_can_login(lab_env, role, password)
    assert not pg_can_login(lab_env, role, password + "x")


# --- against the lab's MariaDB -----------------------------------------------------------------


@pytest.mark.parametrize("password", ["S3cret-pass", "pässwörd 'q' \"d\" \\ ;--", "ロール"])
def test_mariadb_stores_the_hash_the_console_computes(lab_env, cleanup, password):
    """The server hashes the password itself (IDENTIFIED BY) and stores exactly the console's
    hash; an account created with the console's hash (IDENTIFIED BY PASSWORD) logs in."""
    computed = passwords.mysql_native_password_hash(password)
    by_server, by_console = ("hash by server", "%"), ("hash by console", "%")
    cleanup.my_accounts.extend([by_server, by_console])
    conn = my_admin(lab_env)
    try:
        cur = conn.cursor()
        cur.execute("SELECT PASSWORD(%s)", (password,))
        assert cur.fetchone()[0] == computed
        cur.execute(
            "CREATE USER " + quote_mysql_account(*by_server)
            + " IDENTIFIED VIA mysql_native_password USING PASSWORD(%s)",
            (password,),
        )  # fmt: skip
        cur.execute(
            "CREATE USER " + quote_mysql_account(*by_console)
            + " IDENTIFIED VIA mysql_native_password USING %s",
            (computed,),
        )  # fmt: skip
        cur.execute(
            "SELECT User, JSON_VALUE(Priv, '$.authentication_string') FROM mysql.global_priv "
            "WHERE User IN (%s, %s) ORDER BY User",
            (by_console[0], by_server[0]),
        )
        stored = dict(cur.fetchall())
    finally:
        conn.close()
    assert stored == {by_console[0]: computed, by_server[0]: computed}
    assert my_can_login(lab_env, by_console[0], password)
    assert my_can_login(lab_env, by_server[0], password)
    assert not my_can_login(lab_env, by_console[0], password + "x")
