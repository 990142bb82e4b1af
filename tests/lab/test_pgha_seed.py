"""The seed on db1 (console/lab/seed.py through pgha_seed): personal, functional and orphan
accounts, and application databases owned by the functional accounts; replicated to db2."""

import psycopg
import pytest
from psycopg import sql

from console.lab import seed
from console.lab.parts import pgha, pgha_seed
from tests.lab.ha import ha_from_env

DIRECTORY_UIDS = {person["uid"] for person in seed.LAB_PEOPLE}


@pytest.fixture(scope="module")
def ha(lab_env, lab):
    return ha_from_env(lab_env, lab)


def login_roles(target: dict) -> dict[str, str | None]:
    """Login roles that are not postgres or replicator -> their comment."""
    rows = pgha.query(
        target,
        "SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles"
        " WHERE rolcanlogin AND rolname NOT IN ('postgres', 'replicator')",
    )
    return dict(rows)


def test_personal_accounts_are_named_after_directory_people(ha):
    personal = set(login_roles(ha.primary)) & DIRECTORY_UIDS
    assert personal == set(seed.SEED_PERSONAL_ACCOUNTS)


@pytest.mark.parametrize("uid", seed.SEED_PERSONAL_ACCOUNTS)
def test_personal_account_logs_in_with_its_password(ha, uid):
    target = ha.as_user(ha.primary, uid, seed.SEED_DB_PASSWORDS[uid], "postgres")
    assert pgha.query(target, "SELECT current_user") == [(uid,)]


def test_functional_accounts_record_their_owner_team_in_a_comment(ha):
    comments = login_roles(ha.primary)
    for account in seed.SEED_FUNCTIONAL_ACCOUNTS:
        comment = comments[account["name"]]
        assert comment.startswith(f"owner={account['owner_team']}; purpose=")
        assert account["owner_team"] in seed.LAB_GROUPS


def test_orphan_account_has_no_person_and_no_owner(ha):
    comments = login_roles(ha.primary)
    assert seed.SEED_ORPHAN not in DIRECTORY_UIDS
    assert comments[seed.SEED_ORPHAN] is None


def test_orphan_account_can_still_read_its_database(ha):
    password = seed.SEED_DB_PASSWORDS[seed.SEED_ORPHAN]
    target = ha.as_user(ha.primary, seed.SEED_ORPHAN, password, seed.SEED_ORPHAN_DATABASE)
    assert pgha.query(target, "SELECT count(*) FROM invoices") == [(3,)]


@pytest.mark.parametrize("database", sorted(seed.SEED_DATABASES))
def test_application_database_and_its_tables_belong_to_its_owner(ha, database):
    owner = pgha_seed.owner(database)
    target = {**ha.primary, "dbname": database}
    [(db_owner,)] = pgha.query(
        target, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
    )
    tables = pgha.query(
        target, "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
    )
    assert db_owner == owner
    assert tables and all(table_owner == owner for _, table_owner in tables)


def test_read_only_account_reads_but_cannot_write(ha):
    account = next(a for a in seed.SEED_FUNCTIONAL_ACCOUNTS if a["read_only"])
    password = seed.SEED_DB_PASSWORDS[account["name"]]
    target = ha.as_user(ha.primary, account["name"], password, account["database"])
    [(table,)] = pgha.query(target, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    count = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    assert pgha.query(target, count) == [(3,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        pgha.query(target, sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))


def test_seed_is_replicated_to_db2(ha):
    assert login_roles(ha.standby) == login_roles(ha.primary)
    target = {**ha.standby, "dbname": "webshop"}
    assert pgha.query(target, "SELECT count(*) FROM products") == [(3,)]
