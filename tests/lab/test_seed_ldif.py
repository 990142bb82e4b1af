"""The seed: LDIF encoding, password hashes, people, groups and accounts (pure, no server)."""

import base64
import hashlib

from console.lab import seed
from console.lab.parts.ldap import ldif_line, seed_ldif, ssha
from console.lab.parts.mariadb import seed_accounts


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


def test_directory_has_a_dozen_people_with_accents_and_an_apostrophe():
    names = [person["cn"] for person in seed.LAB_PEOPLE]
    assert len(names) >= 12
    assert any("'" in name for name in names)
    assert sum(not name.isascii() for name in names) >= 3


def test_persona_and_team_groups_exist():
    assert {"dba", "helpdesk", "manager", "auditor"} <= set(seed.LAB_GROUPS)
    assert len([group for group in seed.LAB_GROUPS if group.startswith("team-")]) >= 3


def test_every_person_is_in_known_groups_only():
    for person in seed.LAB_PEOPLE:
        assert set(person["groups"]) <= set(seed.LAB_GROUPS), person["uid"]


def test_personal_accounts_belong_to_directory_people():
    uids = {person["uid"] for person in seed.LAB_PEOPLE}
    assert set(seed.SEED_PERSONAL_ACCOUNTS) <= uids


def test_functional_accounts_are_owned_by_directory_teams():
    for account in seed.SEED_FUNCTIONAL_ACCOUNTS:
        assert account["owner_team"] in seed.LAB_GROUPS
        assert account["database"] in seed.SEED_DATABASES


def test_orphan_account_has_no_person_in_the_directory():
    assert seed.SEED_ORPHAN not in {person["uid"] for person in seed.LAB_PEOPLE}
    assert seed.SEED_ORPHAN in seed.SEED_DB_PASSWORDS


def test_mariadb_grants_dbas_everything_and_team_members_their_database():
    grants = {user: privileges for user, privileges, *_ in seed_accounts()}
    assert grants["alice"] == [("ALL PRIVILEGES", "*")]
    assert grants["erin"] == [("SELECT, INSERT, UPDATE, DELETE", "billing")]
    assert grants["analytics_ro"] == [("SELECT", "analytics")]
