"""PostgreSQL's own `ldap` authentication against the lab's slapd (issue 6 part 5), and
offboarding on top of it. db1 and db2 get, for the test, a pg_hba rule that sends the members of
the group role `ldap_people` to slapd (simple bind as uid=<role>,ou=people,...): nhaddad, a role
with no password of its own, logs in with her directory password; after she is offboarded she
cannot, although her directory entry and password are still there. The files are put back and
reloaded, and the roles dropped, at the end."""

import os
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from console.lab import seed
from tests.users.test_offboarding import _offboard_job, pg_connect
from users import actions
from users.actions import offboarding
from users.models import Person

pytestmark = pytest.mark.django_db(transaction=True)

UID = "nhaddad"
DIRECTORY_PASSWORD = seed.person(UID)["password"]
GROUP = "ldap_people"


def ldap_rule(uri: str) -> str:
    """The pg_hba line: members of +ldap_people from the lab network, checked by slapd."""
    server = urlsplit(uri)
    network = os.environ["LAB_NET"]
    return (
        f"host all +{GROUP} {network} ldap ldapserver={server.hostname} "
        f'ldapport={server.port} ldapprefix="uid=" ldapsuffix=",{seed.LDAP_PEOPLE_BASE}"\n'
    )


def _admin(host: str | None = None) -> psycopg.Connection:
    return pg_connect(os.environ["LAB_PG_USER"], os.environ["LAB_PG_PASSWORD"], host=host)


@pytest.fixture
def ldap_hba(lab_env):
    base = Path(lab_env["LAB_DIR"])
    files = {
        os.environ["LAB_PG_HOST"]: base / "primary" / "data" / "pg_hba.conf",
        os.environ["LAB_PG_STANDBY_HOST"]: base / "standby" / "data" / "pg_hba.conf",
    }
    saved = {host: path.read_text() for host, path in files.items()}
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(GROUP)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
            sql.Identifier(UID), sql.Identifier(GROUP)))  # fmt: skip
    try:
        for host, path in files.items():
            lines = saved[host].splitlines(keepends=True)
            path.write_text(lines[0] + ldap_rule(lab_env["LAB_LDAP_URI"]) + "".join(lines[1:]))
            with _admin(host) as conn:
                conn.execute("SELECT pg_reload_conf()")
                errors = conn.execute("SELECT count(*) FROM pg_hba_file_rules "
                                      "WHERE error IS NOT NULL").fetchone()[0]  # fmt: skip
                assert errors == 0
        yield
    finally:
        for host, path in files.items():
            path.write_text(saved[host])
            with _admin(host) as conn:
                conn.execute("SELECT pg_reload_conf()")
        with _admin() as conn:
            for role in (UID, GROUP):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_a_person_logs_in_with_their_directory_password_until_offboarded(
    ldap_hba, demo, directory, helpdesk
):
    with pg_connect(UID, DIRECTORY_PASSWORD) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == UID
    with pytest.raises(psycopg.OperationalError, match="LDAP authentication failed"):
        pg_connect(UID, "not-her-password").close()
    standby = pg_connect(UID, DIRECTORY_PASSWORD, host=os.environ["LAB_PG_STANDBY_HOST"])

    assert actions.sync_directory().status == "applied"
    assert actions.import_accounts(demo["lab-pg"]).status == "succeeded"
    person = Person.objects.get(uid=UID)
    run = offboarding.start_offboarding(person, actor=helpdesk, confirmation=UID)
    assert _offboard_job(run).status == "succeeded"
    run.refresh_from_db()
    assert run.state == "offboarded"
    # Her directory entry and password are unchanged: slapd still accepts them ...
    assert directory.conn.simple_bind_s(seed.person_dn(UID), DIRECTORY_PASSWORD)
    directory.connect()
    # ... but PostgreSQL refuses her after the LDAP check, and her standby session is gone.
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        pg_connect(UID, DIRECTORY_PASSWORD).close()
    with pytest.raises(psycopg.OperationalError):
        standby.execute("SELECT 1")
    step = run.steps.get(login=UID)
    assert step.servers == "db1, db2" and step.sessions_ended == 1
