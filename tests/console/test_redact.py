"""redact() masks secrets and credential-shaped values; cut() keeps head and tail."""

import shlex

import pytest
from cryptography.fernet import Fernet

from console.executor.redact import MASK, cut, redact

SECRET = "s3cr'et pa$$ \"word\\"


def test_given_secret_is_masked():
    assert redact(f"connecting with {SECRET} now", [SECRET]) == f"connecting with {MASK} now"


def test_shell_quoted_secret_is_masked():
    text = f"mysql -u root --password={shlex.quote(SECRET)} -e 'select 1'"
    assert SECRET not in redact(text, [SECRET])
    assert shlex.quote(SECRET) not in redact(text, [SECRET])


def test_sql_quoted_secret_is_masked():
    text = "CREATE ROLE app LOGIN PASSWORD 's3cr''et pa$$ \"word\\'"
    out = redact(text, [SECRET])
    assert "s3cr" not in out and "pa$$" not in out


def test_backslash_escaped_secret_is_masked():
    escaped = SECRET.replace("\\", "\\\\").replace("'", "\\'")
    assert "pa$$" not in redact(f"SET PASSWORD = '{escaped}'", [SECRET])


def test_json_escaped_secret_is_masked():
    assert "pa$$" not in redact('{"note": "s3cr\'et pa$$ \\"word\\\\"}', [SECRET])


def test_every_occurrence_is_masked():
    assert redact("abcd1234 and abcd1234", ["abcd1234"]) == f"{MASK} and {MASK}"


def test_empty_secrets_are_ignored():
    assert redact("nothing to hide", ["", None]) == "nothing to hide"


def test_private_key_given_as_secret_is_masked_line_by_line():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE\n-----END"
    leaked = "line: b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE"
    assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE" not in redact(leaked, [key])


@pytest.mark.parametrize(
    "text, leaked",
    [
        ("host=db1 user=app password=hunter22 dbname=x", "hunter22"),
        ("host=db1 password='hun ter22' dbname=x", "hun ter22"),
        ("PGPASSWORD=hunter22 psql -h db1", "hunter22"),
        ("MYSQL_PWD=hunter22 mysqldump --all-databases", "hunter22"),
        ("mysqldump --password=hunter22 db", "hunter22"),
        ("ALTER ROLE app WITH LOGIN PASSWORD 'hunter22'", "hunter22"),
        ("alter role app encrypted password 'hun''ter22'", "ter22"),
        ("CREATE USER 'app'@'%' IDENTIFIED BY 'hunter22'", "hunter22"),
        ("GRANT ALL ON *.* TO x IDENTIFIED BY PASSWORD 'hunter22'", "hunter22"),
        ("SET PASSWORD FOR 'a'@'%' = PASSWORD('hunter22')", "hunter22"),
        ("ALTER USER a IDENTIFIED VIA ed25519 USING PASSWORD('hunter22')", "hunter22"),
        ("postgresql://app:hunter22@db1:5432/app", "hunter22"),
        ("redis://:hunter22@127.0.0.1:6379/0", "hunter22"),
        ('{"user": "app", "password": "hunter22"}', "hunter22"),
        ("mysql -uroot -phunter22 -e 'select 1'", "hunter22"),
        ("mariadb -u root -p'hun ter22' mysql", "hun ter22"),
    ],
)
def test_password_shapes_are_masked(text, leaked):
    assert leaked not in redact(text)


def test_psql_port_option_is_not_mistaken_for_a_password():
    assert redact("psql -p5432 -h db1") == "psql -p5432 -h db1"


def test_scram_verifier_is_masked():
    verifier = (
        "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$Q0vEMW3CZl7ka6SNAFMnn0Uq3RyLOZI0xu7dKfUE1kk="
        ":Ng5Q5nFhL8eGQjj8Rm4pnXUJpdZ2DqJkbQcN3r7Q0zE="
    )
    out = redact(f"rolpassword | {verifier}")
    assert "Q0vEMW3CZl7ka6SNAFMnn0Uq3RyLOZI0xu7dKfUE1kk" not in out
    assert out == f"rolpassword | {MASK}"


def test_md5_password_hash_is_masked():
    assert "0123456789abcdef" not in redact("md50123456789abcdef0123456789abcdef")


def test_mysql_password_hash_is_masked():
    out = redact("authentication_string: *2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19")
    assert "2470C0C06DEE" not in out


def test_pem_private_key_block_is_masked():
    text = (
        "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\nabc\n"
        "-----END RSA PRIVATE KEY-----\nafter"
    )
    out = redact(text)
    assert "MIIEowIBAAKCAQEAx" not in out
    assert out.startswith("before\n") and out.endswith("\nafter")


def test_private_key_cut_before_its_end_is_masked_to_the_end():
    out = redact("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA")
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in out


def test_public_key_is_not_masked():
    text = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    assert redact(text) == text


def test_fernet_token_is_masked():
    token = Fernet(Fernet.generate_key()).encrypt(b"hunter22").decode()
    assert token not in redact(f"secret_token={token}")
    assert token not in redact(f"stored {token}")


def test_plain_text_is_unchanged():
    text = "pg_ctl: server is running (PID: 4242)\n/usr/lib/postgresql/15/bin/postgres -D /data"
    assert redact(text) == text


def test_cut_leaves_short_text_alone():
    assert cut("short", 100) == "short"


def test_cut_keeps_head_and_tail_within_the_limit():
    text = "HEAD" + "x" * 10_000 + "TAIL"
    out = cut(text, 200)
    assert len(out) <= 200
    assert out.startswith("HEAD") and out.endswith("TAIL")
    assert "characters cut" in out


def _redact_ungated(text: str) -> str:
    """redact() as it was before its patterns had gates: every pattern searched."""
    from console.executor import redact as module

    for pattern in module._PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return "\n".join(module._mask_mysql_p(line) for line in text.split("\n"))


def test_gated_patterns_mask_exactly_what_every_pattern_masks():
    """The words that let redact() skip a pattern never skip one that would have matched."""
    import random

    fernet = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    pieces = [
        "SELECT pg_is_in_recovery()", "PASSWORD 'a b'", "pAsSwOrD('x')", "identified by 'p'",
        "IDENTIFIED VIA ed25519 USING PASSWORD('q')", "identified with pam as 'svc'",
        "PGPASSWORD=abc", "--Pwd=x", "db_secret = 'y z'", '"api_TOKEN": "t"',
        "postgres://u:pw@h/db", "md5" + "a" * 32,
        "*" + "B" * 40, fernet, "SCRAM-SHA-256$4096:c2FsdA==$c3Q=:c2s=",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbg==\n-----END OPENSSH PRIVATE KEY-----",
        "mysql -psecret -e 'select 1'", "passwd", "ſecret=x", "İDENTIFIED BY 'w'", "\n", " ",
    ]  # fmt: skip
    rng = random.Random(4)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        assert redact(text) == _redact_ungated(text), text
