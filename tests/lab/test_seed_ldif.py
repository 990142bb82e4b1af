"""The directory seed: LDIF encoding and password hashes (pure, no server)."""

import base64
import hashlib

from console.lab import seed
from console.lab.parts.ldap import ldif_line, seed_ldif, ssha


def test_ascii_value_is_written_plain():
    assert ldif_line("sn", "O'Brien") == "sn: O'Brien\n"


def test_accented_value_is_base64_of_utf8():
    line = ldif_line("cn", "Zoë Ångström")
    assert line.startswith("cn:: ")
    assert base64.b64decode(line.removeprefix("cn:: ")).decode() == "Zoë Ångström"


def test_value_with_leading_space_is_base64():
    assert ldif_line("description", " padded").startswith("description:: ")


def test_ssha_hash_verifies_the_password():
    raw = base64.b64decode(ssha("s3cret").removeprefix("{SSHA}"))
    digest, salt = raw[:20], raw[20:]
    assert hashlib.sha1(b"s3cret" + salt).digest() == digest


def test_ssha_hashes_of_one_password_differ_by_salt():
    assert ssha("s3cret") != ssha("s3cret")


def test_seed_holds_no_plaintext_password():
    ldif = seed_ldif()
    for person in seed.LAB_PEOPLE:
        assert person["password"] not in ldif


def test_every_group_has_a_member_entry():
    ldif = seed_ldif()
    for group in seed.LAB_GROUPS:
        entry = ldif.split(f"dn: {seed.group_dn(group)}\n", 1)[1].split("\n\n", 1)[0]
        assert "member: " in entry
