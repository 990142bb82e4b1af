"""The account inventory against the lab's db1 (PostgreSQL) and my1 (MariaDB): real roles and
users with their state, naming rules, classification by hand, orphans, and names with quotes,
markup and unicode shown safely. Roles and users a test makes are dropped at its end."""

import os
from collections.abc import Iterator

import MySQLdb
import psycopg
import pytest
from django.urls import reverse
from psycopg import sql

from console.models import AuditEntry
from users import actions
from users.models import AccountImport, DatabaseAccount, Person

pytestmark = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions


@pytest.fixture
def pg_admin(lab) -> Iterator[psycopg.Connection]:
    """postgres on db1, for making test roles; every role made through `make_role` is dropped."""
    conn = psycopg.connect(
        host=os.environ["LAB_PG_HOST"], port=os.environ["LAB_PG_PORT"], dbname="postgres",
        user=os.environ["LAB_PG_USER"], password=os.environ["LAB_PG_PASSWORD"],
        autocommit=True, connect_timeout=5,
    )  # fmt: skip
    made: list[str] = []

    def make_role(name: str, options: str = "LOGIN") -> None:
        conn.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(name)))
        made.append(name)

    conn.make_role = make_role
    try:
        yield conn
    finally:
        for name in made:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        conn.close()


@pytest.fixture
def my_admin(lab) -> Iterator:
    """lab_admin on my1; every user made through `make_user` is dropped afterwards."""
    conn = MySQLdb.connect(
        host=os.environ["LAB_MYSQL_HOST"], port=int(os.environ["LAB_MYSQL_PORT"]),
        user=os.environ["LAB_MYSQL_USER"], password=os.environ["LAB_MYSQL_PASSWORD"],
        charset="utf8mb4", autocommit=True, connect_timeout=5,
    )  # fmt: skip
    made: list[tuple[str, str]] = []

    def execute(statement: str, params=()) -> None:
        conn.cursor().execute(statement, params)

    def make_user(user: str, host: str = "%", extra: str = "") -> None:
        execute("CREATE USER %s@%s IDENTIFIED BY 'Test-pw-1' " + extra, (user, host))
        made.append((user, host))

    roles: list[str] = []

    def make_role(role: str) -> None:
        execute("CREATE ROLE %s", (role,))
        roles.append(role)

    conn.execute = execute
    conn.make_user = make_user
    conn.make_role = make_role
    try:
        yield conn
    finally:
        for user, host in made:
            execute("DROP USER IF EXISTS %s@%s", (user, host))
        for role in roles:
            execute("DROP ROLE IF EXISTS %s", (role,))
        conn.close()


def _account(cluster: str, name: str, host: str = "") -> DatabaseAccount:
    return DatabaseAccount.objects.select_related("person").get(
        cluster__name=cluster, name=name, host=host
    )


def _sync_people() -> None:
    assert actions.sync_directory().status == "applied"


def _import(demo, *names) -> list[AccountImport]:
    records = [actions.import_accounts(demo[n]) for n in names or demo]
    assert [r.status for r in records] == ["succeeded"] * len(records), [r.error for r in records]
    return records


def test_the_import_lists_db1_roles_and_my1_users_with_their_state(demo):
    _import(demo)
    pg = set(DatabaseAccount.objects.filter(cluster__name="lab-pg").values_list("name", flat=True))
    assert {"postgres", "alice", "billing_app", "old_contractor"} <= pg
    assert not any(name.startswith("pg_") for name in pg)
    postgres = _account("lab-pg", "postgres")
    assert postgres.superuser and postgres.can_login and postgres.node.name == "db1"
    assert _account("lab-pg", "alice").member_of == ["pg_monitor"]
    assert _account("lab-pg", "alice").password_changed_at is None  # PostgreSQL keeps none
    assert "owner=team-billing" in _account("lab-pg", "billing_app").comment

    alice = _account("lab-mariadb", "alice", "%")
    assert alice.superuser and alice.can_login and alice.plugin == "mysql_native_password"
    assert alice.password_changed_at is not None
    sys_account = _account("lab-mariadb", "mariadb.sys", "localhost")
    assert sys_account.locked and sys_account.expired and not sys_account.can_login
    assert _account("lab-mariadb", "", "localhost").kind == "unclassified"  # anonymous
    assert not DatabaseAccount.objects.filter(cluster__name="lab-mariadb", name="PUBLIC").exists()
    entry = AuditEntry.objects.get(action="accounts.imported", target="cluster:lab-pg")
    assert entry.node == "db1" and "new" in entry.output
    assert AuditEntry.objects.filter(action="remote.sql", node="my1", status="started").exists()


def test_a_second_import_changes_nothing(demo):
    _import(demo)
    again = _import(demo)
    assert [(r.added, r.changed, r.gone, r.linked) for r in again] == [(0, 0, 0, 0)] * 2


def test_locked_and_expired_accounts_show_as_such(demo, pg_admin, my_admin):
    pg_admin.make_role("u_expired", "LOGIN VALID UNTIL '2001-01-01'")
    pg_admin.make_role("u_later", "LOGIN VALID UNTIL '2999-01-01'")
    my_admin.make_user("u_locked", extra="ACCOUNT LOCK")
    my_admin.make_user("u_pwexp", extra="PASSWORD EXPIRE")
    my_admin.make_role("app_readers")
    my_admin.execute("GRANT app_readers TO 'u_locked'@'%%'")
    _import(demo)
    expired, later = _account("lab-pg", "u_expired"), _account("lab-pg", "u_later")
    assert (expired.expired, expired.can_login, expired.valid_until.year) == (True, False, 2001)
    assert (later.expired, later.can_login) == (False, True)
    locked = _account("lab-mariadb", "u_locked", "%")
    assert (locked.locked, locked.expired, locked.can_login) == (True, False, False)
    assert locked.member_of == ["app_readers"]
    assert _account("lab-mariadb", "u_pwexp", "%").expired
    # Locked on PostgreSQL is NOLOGIN: a known login that loses LOGIN stays listed, locked.
    pg_admin.execute("ALTER ROLE u_later NOLOGIN")
    _import(demo, "lab-pg")
    assert _account("lab-pg", "u_later").locked


def test_naming_rules_link_personal_accounts(demo, pg_admin, my_admin):
    _sync_people()
    pg_admin.make_role("tkowalski_adm")
    my_admin.make_user("p_tkowalski", "10.%")
    records = _import(demo)
    assert _account("lab-pg", "alice").person.uid == "alice"
    assert _account("lab-pg", "alice").linked_by == "rule"
    assert _account("lab-pg", "tkowalski_adm").person.uid == "tkowalski"
    assert _account("lab-mariadb", "p_tkowalski", "10.%").person.uid == "tkowalski"
    assert _account("lab-pg", "old_contractor").kind == "unclassified"  # no such person
    assert sum(r.linked for r in records) >= 2 * 6 + 2
    # Gone from the server: kept, marked gone, no longer counted.
    pg_admin.execute('DROP ROLE "tkowalski_adm"')
    _import(demo, "lab-pg")
    assert _account("lab-pg", "tkowalski_adm").gone_at is not None


def test_linking_and_marking_functional_by_hand_is_audited_and_kept(demo, dba):
    _sync_people()
    _import(demo)
    orphan = _account("lab-pg", "old_contractor")
    bob = Person.objects.get(uid="bob")
    assert actions.link_account(orphan, bob, actor=dba)
    assert not actions.link_account(orphan, bob, actor=dba)  # already so: nothing more
    linked = AuditEntry.objects.filter(action="account.linked").get()
    assert linked.actor_name == dba.username and "personal account of bob" in linked.output
    assert linked.target == "account:lab-pg:old_contractor"

    app = _account("lab-mariadb", "billing_app", "%")
    erin = Person.objects.get(uid="erin")
    actions.mark_account_functional(app, owner_person=erin, owner_team="team-billing",
                                    purpose="billing application", actor=dba)  # fmt: skip
    entry = AuditEntry.objects.get(action="account.classified")
    assert "owner: erin, team-billing; purpose: billing application" in entry.output
    _import(demo)  # an import keeps what a person decided
    assert _account("lab-pg", "old_contractor").person == bob
    app = _account("lab-mariadb", "billing_app", "%")
    assert (app.kind, app.owner_person, app.owner_team) == ("functional", erin, "team-billing")
    with pytest.raises(actions.ClassificationRefused, match="purpose"):
        actions.mark_account_functional(app, owner_person=erin, owner_team="", purpose=" ",
                                        actor=dba)  # fmt: skip


def test_orphans_are_listed_to_review(demo, helpdesk, client):
    _sync_people()
    _import(demo)
    client.force_login(helpdesk)
    page = client.get(reverse("users:account_list"), {"kind": "unclassified"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "old_contractor" in text and "billing_app" in text
    assert ">alice<" not in text  # personal, by rule
    assert "Import now" not in text  # helpdesk only looks


def test_the_person_page_shows_their_accounts_across_servers(demo, helpdesk, client):
    _sync_people()
    _import(demo)
    client.force_login(helpdesk)
    page = client.get(reverse("users:person_detail", args=["zoe"]))
    text = page.content.decode()
    assert "Zoë Ångström" in text
    assert "lab-pg" in text and "lab-mariadb" in text
    assert "&#x27;zoe&#x27;@&#x27;%&#x27;" in text  # 'zoe'@'%', escaped
    body = client.get("/api/people/zoe/").json()
    assert sorted((a["cluster"], a["name"]) for a in body["accounts"]) == [
        ("lab-mariadb", "zoe"), ("lab-pg", "zoe")]  # fmt: skip


def test_names_with_quotes_markup_and_unicode_are_shown_safely(demo, pg_admin, my_admin, dba,
                                                               client):  # fmt: skip
    nasty = 'x"; DROP TABLE t; --'
    markup = "Zoë <b>bold</b> ünï"
    pg_admin.make_role(nasty)
    pg_admin.make_role(markup)
    my_admin.make_user("o'brien`s <i>")
    _import(demo)
    assert _account("lab-pg", nasty).can_login
    client.force_login(dba)
    text = client.get(reverse("users:account_list")).content.decode()
    assert "x&quot;; DROP TABLE t; --" in text
    assert "Zoë &lt;b&gt;bold&lt;/b&gt; ünï" in text and "<b>bold</b>" not in text
    assert "o&#x27;brien`s &lt;i&gt;" in text and "<i>" not in text
    detail = client.get(reverse("users:account_detail", args=[_account("lab-pg", markup).pk]))
    assert detail.status_code == 200 and "<b>bold" not in detail.content.decode()


def test_an_unreachable_server_fails_its_import_and_keeps_the_accounts(demo, dba):
    from clusters.models import Node

    _import(demo, "lab-mariadb")
    count = DatabaseAccount.objects.filter(cluster__name="lab-mariadb").count()
    Node.objects.filter(name="my1").update(db_port=1)  # nothing listens there
    record = actions.import_accounts(demo["lab-mariadb"], actor=dba)
    assert record.status == "failed" and "my1" in record.error
    assert (
        DatabaseAccount.objects.filter(cluster__name="lab-mariadb", gone_at=None).count() == count
    )
    failed = AuditEntry.objects.filter(action="accounts.imported", status="failed").get()
    assert failed.actor_name == dba.username


def test_a_primary_that_cannot_be_read_gives_way_to_its_standby(demo):
    from clusters.models import Node

    Node.objects.filter(name="db1").update(db_port=1)
    record = actions.import_accounts(demo["lab-pg"])
    assert (record.status, record.node.name) == ("succeeded", "db2")
    assert "db1" in record.error  # what was tried first, and why it failed
    assert _account("lab-pg", "alice").node.name == "db2"


def test_classifying_needs_a_dba_and_names_the_bad_field(demo, dba, helpdesk, client):
    _import(demo, "lab-pg")
    account = _account("lab-pg", "old_contractor")
    url = reverse("users:account_functional", args=[account.pk])
    client.force_login(helpdesk)
    assert client.post(url, {"owner_team": "x", "purpose": "y"}).status_code == 403
    assert client.get(reverse("users:account_detail", args=[account.pk])).status_code == 200
    client.force_login(dba)
    assert client.get(url).status_code == 405
    bad = client.post(url, {"owner_person": "nobody-here", "purpose": "y"})
    assert bad.status_code == 400 and "No person has the uid" in bad.content.decode()
    assert _account("lab-pg", "old_contractor").kind == "unclassified"
    missing = client.post(reverse("users:account_link", args=[999999]), {"person": "bob"})
    assert missing.status_code == 404


def test_an_outsider_sees_no_people_and_no_accounts(db, outsider, client):
    client.force_login(outsider)
    assert client.get(reverse("users:person_list")).status_code == 403
    assert client.get(reverse("users:account_list")).status_code == 403
    assert client.get("/api/accounts/").status_code == 403


def test_the_accounts_api_filters_and_refuses_bad_filters(demo, manager, client):
    _sync_people()
    _import(demo)
    client.force_login(manager)
    body = client.get("/api/accounts/", {"kind": "personal", "person": "alice"}).json()
    assert sorted(a["cluster"] for a in body["results"]) == ["lab-mariadb", "lab-pg"]
    assert client.get("/api/accounts/", {"kind": "nonsense"}).status_code == 400


def test_no_secret_reaches_an_audit_entry_or_a_job_log(demo, lab_env, assert_no_secret_stored):
    from console import jobs
    from tests.factories import make_job
    from users.tasks import import_accounts as import_task

    _sync_people()
    job = make_job(kind="users.import_accounts", status="pending")
    jobs.run_job(job.pk, import_task.body)
    assert_no_secret_stored(
        lab_env["LAB_PG_PASSWORD"],
        lab_env["LAB_MYSQL_PASSWORD"],
        lab_env["LAB_LDAP_ADMIN_PASSWORD"],
    )
