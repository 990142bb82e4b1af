"""Sign-in against the lab's real slapd and local accounts: personas, lock-out, audit entries.

Needs the lab (`manage.py lab up`, then load `manage.py lab env`): LDAP sign-in is on when
LDAP_SERVER_URI is set. Tests that need the directory fail, never skip, when it is missing.
"""

import ipaddress
import os
import secrets
from urllib.parse import urlsplit

import ldap
import ldap.filter
import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group, User
from django.test import RequestFactory
from django.urls import reverse

from console import audit
from console.lab.seed import person
from console.models import AuditEntry

LAB_LDAP_VARS = ("LAB_LDAP_URI", "LAB_LDAP_ADMIN_DN", "LAB_LDAP_ADMIN_PASSWORD")

pytestmark = pytest.mark.django_db


def sign_in(client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def entries(action: str, target: str):
    return AuditEntry.objects.filter(action=action, target=target).order_by("id")


def persona_names(username: str) -> set[str]:
    user = User.objects.get(username=username)
    return set(
        user.groups.filter(name__in=settings.LDAP_PERSONA_GROUPS).values_list("name", flat=True)
    )


def assert_nowhere_in_audit(secret: str) -> None:
    """No audit entry holds `secret` in any field."""
    fields = [f.attname for f in AuditEntry._meta.concrete_fields]
    for row in AuditEntry.objects.values_list(*fields):
        assert not any(secret in str(value) for value in row), row


def _check_lab_address(uri: str) -> None:
    """Refuse to send anything to an address outside loopback or the lab's private range."""
    host = urlsplit(uri).hostname or ""
    address = ipaddress.ip_address(host)
    assert address.is_loopback or address in ipaddress.ip_network("10.77.0.0/16"), uri


@pytest.fixture
def directory():
    """A python-ldap connection to the lab's slapd, bound as its administrator."""
    missing = [name for name in LAB_LDAP_VARS if not os.environ.get(name)]
    if missing or not getattr(settings, "LDAP_SERVER_URI", ""):
        pytest.fail(
            f"the lab's slapd is not configured ({', '.join(missing) or 'LDAP_SERVER_URI'} "
            "unset): run `manage.py lab up` and load `manage.py lab env`"
        )
    _check_lab_address(os.environ["LAB_LDAP_URI"])
    conn = ldap.initialize(os.environ["LAB_LDAP_URI"])
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
    conn.set_option(ldap.OPT_TIMEOUT, 5)
    conn.simple_bind_s(os.environ["LAB_LDAP_ADMIN_DN"], os.environ["LAB_LDAP_ADMIN_PASSWORD"])
    yield conn
    conn.unbind_s()


def set_member(conn, persona: str, dn: str, present: bool) -> None:
    op = ldap.MOD_ADD if present else ldap.MOD_DELETE
    conn.modify_s(settings.LDAP_PERSONA_GROUPS[persona], [(op, "member", [dn.encode()])])


@pytest.fixture
def temp_person(directory):
    """Make a throwaway directory person in some persona groups; removed again afterwards.

    The seed people stay untouched. slapd's refint overlay drops a deleted person from groups.
    """
    made = []

    def make(personas: list[str]) -> tuple[str, str, str]:
        uid = f"tmp-{secrets.token_hex(4)}"
        dn = f"uid={uid},{os.environ['LDAP_USER_BASE_DN']}"
        password = secrets.token_urlsafe(16)
        directory.add_s(
            dn,
            [
                ("objectClass", [b"inetOrgPerson"]),
                ("uid", [uid.encode()]),
                ("cn", [b"Temp Person"]),
                ("givenName", [b"Temp"]),
                ("sn", [b"Person"]),
            ],
        )
        made.append(dn)
        directory.passwd_s(dn, None, password)  # slapd stores it hashed
        for persona in personas:
            set_member(directory, persona, dn, True)
        return uid, password, dn

    yield make
    for dn in made:
        try:
            directory.delete_s(dn)
        except ldap.NO_SUCH_OBJECT:
            pass


@pytest.fixture
def restore_group(directory):
    """Undo group membership changes a test made to seed groups, even when it fails."""
    undo = []

    def change(persona: str, dn: str, present: bool) -> None:
        set_member(directory, persona, dn, present)
        undo.append((persona, dn, not present))

    yield change
    for persona, dn, present in reversed(undo):
        set_member(directory, persona, dn, present)


# --- Directory accounts ------------------------------------------------------------------------


def test_directory_user_signs_in_and_lands_on_home(client, directory):
    response = sign_in(client, "alice", person("alice")["password"])
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.get(reverse("home")).status_code == 200
    alice = User.objects.get(username="alice")
    assert client.session["_auth_user_id"] == str(alice.pk)
    (entry,) = entries(audit.AUTH_LOGIN, "user:alice")
    assert entry.actor_id == alice.pk
    assert entry.source == "ui" and entry.status == "succeeded"
    assert entry.output.startswith("client ip: 127.0.0.1")
    assert len(entry.request_id) == 32


def test_directory_user_gets_no_usable_local_password(client, directory):
    sign_in(client, "alice", person("alice")["password"])
    assert not User.objects.get(username="alice").has_usable_password()


def test_existing_local_password_of_a_directory_user_is_disabled_and_audited(client, directory):
    User.objects.create_user("bob", password="an-old-local-password-1")
    sign_in(client, "bob", person("bob")["password"])
    assert not User.objects.get(username="bob").has_usable_password()
    assert client.get(reverse("home")).status_code == 200  # the session survives the change
    (entry,) = entries(audit.AUTH_USER_CHANGED, "user:bob")
    assert entry.source == "ldap-sync"
    assert "local password disabled" in entry.output
    assert_nowhere_in_audit("an-old-local-password-1")


@pytest.mark.parametrize(
    "uid, personas",
    [("alice", {"dba"}), ("bob", {"helpdesk"}), ("carol", {"manager"}), ("dave", {"auditor"})],
)
def test_directory_groups_map_to_personas(client, directory, uid, personas):
    sign_in(client, uid, person(uid)["password"])
    assert persona_names(uid) == personas
    (entry,) = entries(audit.AUTH_GROUPS_CHANGED, f"user:{uid}")
    assert entry.source == "ldap-sync"
    assert entry.output == f"added: {', '.join(sorted(personas))}; removed: -"


def test_directory_user_without_persona_group_gets_none(client, directory):
    response = sign_in(client, "erin", person("erin")["password"])
    assert response.status_code == 302
    assert persona_names("erin") == set()
    assert not entries(audit.AUTH_GROUPS_CHANGED, "user:erin").exists()


def test_unchanged_groups_are_not_audited_again(client, directory):
    sign_in(client, "carol", person("carol")["password"])
    client.logout()
    sign_in(client, "carol", person("carol")["password"])
    assert entries(audit.AUTH_GROUPS_CHANGED, "user:carol").count() == 1
    assert entries(audit.AUTH_LOGIN, "user:carol").count() == 2


def test_non_persona_groups_are_left_alone(client, directory):
    bob = User.objects.create_user("bob")
    bob.set_unusable_password()
    bob.save()
    oncall = Group.objects.create(name="oncall")
    bob.groups.add(oncall, Group.objects.get(name="auditor"))
    sign_in(client, "bob", person("bob")["password"])
    assert set(bob.groups.values_list("name", flat=True)) == {"oncall", "helpdesk"}
    (entry,) = entries(audit.AUTH_GROUPS_CHANGED, "user:bob")
    assert entry.output == "added: helpdesk; removed: auditor"


def test_directory_group_change_moves_user_on_next_sign_in(client, directory, restore_group):
    bob = person("bob")
    sign_in(client, "bob", bob["password"])
    assert persona_names("bob") == {"helpdesk"}
    client.logout()
    dn = f"uid=bob,{os.environ['LDAP_USER_BASE_DN']}"
    restore_group("helpdesk", dn, False)
    restore_group("manager", dn, True)

    assert sign_in(client, "bob", bob["password"]).status_code == 302
    assert persona_names("bob") == {"manager"}
    last = entries(audit.AUTH_GROUPS_CHANGED, "user:bob").last()
    assert last.output == "added: manager; removed: helpdesk"
    assert last.source == "ldap-sync"


def test_person_removed_from_directory_cannot_sign_in(client, directory, temp_person):
    uid, password, dn = temp_person(["dba"])
    assert sign_in(client, uid, password).status_code == 302
    client.logout()
    directory.delete_s(dn)

    response = sign_in(client, uid, password)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert authenticate(RequestFactory().post("/login/"), username=uid, password=password) is None
    (failed,) = entries(audit.AUTH_LOGIN_FAILED, f"user:{uid}")
    assert failed.status == "failed"


def test_temp_person_group_move_is_audited(client, directory, temp_person):
    uid, password, dn = temp_person(["dba"])
    sign_in(client, uid, password)
    client.logout()
    set_member(directory, "dba", dn, False)
    set_member(directory, "auditor", dn, True)
    sign_in(client, uid, password)
    assert persona_names(uid) == {"auditor"}
    outputs = list(
        entries(audit.AUTH_GROUPS_CHANGED, f"user:{uid}").values_list("output", flat=True)
    )
    assert outputs == ["added: dba; removed: -", "added: auditor; removed: dba"]


@pytest.mark.parametrize("uid", ["zoe", "obrien"])
def test_accented_and_apostrophe_names_sign_in(client, directory, uid):
    seed = person(uid)
    assert sign_in(client, uid, seed["password"]).status_code == 302
    user = User.objects.get(username=uid)
    assert (user.first_name, user.last_name) == (seed["given_name"], seed["sn"])
    assert persona_names(uid) == set(seed["groups"]) & set(settings.LDAP_PERSONA_GROUPS)


# --- Failures and lock-out ---------------------------------------------------------------------


def test_wrong_password_fails_and_is_audited_without_the_password(client, directory):
    wrong = "Wrong-" + secrets.token_hex(8)
    response = sign_in(client, "alice", wrong)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    (entry,) = entries(audit.AUTH_LOGIN_FAILED, "user:alice")
    assert (entry.actor_name, entry.status, entry.source) == ("alice", "failed", "ui")
    assert entry.actor_id is None
    assert "reason: invalid_login" in entry.output
    assert_nowhere_in_audit(wrong)


def test_failed_sign_in_leaves_no_password_in_axes_records(client, directory):
    wrong = "Wrong-" + secrets.token_hex(8)
    sign_in(client, "alice", wrong)
    sign_in(client, "alice", person("alice")["password"])
    assert AccessAttempt.objects.exists() or AccessLog.objects.exists()
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        fields = [f.attname for f in model._meta.concrete_fields]
        for row in model.objects.values_list(*fields):
            assert not any(wrong in str(v) or person("alice")["password"] in str(v) for v in row)


def test_overlong_attempted_name_is_cut_in_the_audit_entry(client, directory):
    sign_in(client, "x" * 500, "whatever-password")
    entry = AuditEntry.objects.filter(action=audit.AUTH_LOGIN_FAILED).get()
    assert entry.actor_name == "x" * 150


def test_lockout_refuses_even_the_right_password(client, directory):
    limit = settings.AXES_FAILURE_LIMIT
    statuses = [sign_in(client, "alice", f"wrong-{i}").status_code for i in range(limit)]
    assert statuses == [200] * (limit - 1) + [429]

    response = sign_in(client, "alice", person("alice")["password"])
    assert response.status_code == 429
    assert b"Try again in" in response.content
    assert "_auth_user_id" not in client.session
    assert not entries(audit.AUTH_LOGIN, "user:alice").exists()
    assert entries(audit.AUTH_LOCKED_OUT, "user:alice").count() == 2
    assert entries(audit.AUTH_LOGIN_FAILED, "user:alice").count() == limit


def test_refused_attempt_is_audited_once_as_locked_out(client, directory):
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "alice", f"wrong-{i}")
    before = AuditEntry.objects.count()
    sign_in(client, "ALICE", person("alice")["password"])  # other case, same counter
    (entry,) = AuditEntry.objects.order_by("id")[before:]
    assert (entry.action, entry.status) == (audit.AUTH_LOCKED_OUT, "failed")
    assert entry.actor_name == "ALICE"  # what was typed
    assert "refused for" in entry.output
    assert_nowhere_in_audit(person("alice")["password"])


# --- Local accounts, sign-out, other doors -----------------------------------------------------


def test_local_account_signs_in(client):
    user = User.objects.create_user("localdba", password="local-Pass-9x!")
    response = sign_in(client, "localdba", "local-Pass-9x!")
    assert response.status_code == 302 and response["Location"] == reverse("home")
    (entry,) = entries(audit.AUTH_LOGIN, "user:localdba")
    assert entry.actor_id == user.pk
    assert_nowhere_in_audit("local-Pass-9x!")


def test_inactive_local_account_cannot_sign_in(client):
    User.objects.create_user("gone", password="local-Pass-9x!", is_active=False)
    assert sign_in(client, "gone", "local-Pass-9x!").status_code == 200
    assert "_auth_user_id" not in client.session
    assert entries(audit.AUTH_LOGIN_FAILED, "user:gone").exists()


def test_empty_form_is_not_an_attempt(client):
    assert client.post(reverse("login"), {"username": "", "password": ""}).status_code == 200
    assert not AuditEntry.objects.filter(action=audit.AUTH_LOGIN_FAILED).exists()


def test_login_page_renders(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content and b"csrfmiddlewaretoken" in response.content


def test_sign_out_by_get_is_refused(client):
    client.force_login(User.objects.create_user("someone"))
    assert client.get(reverse("logout")).status_code == 405
    assert "_auth_user_id" in client.session


def test_sign_out_is_audited(client):
    user = User.objects.create_user("someone")
    client.force_login(user)
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session
    (entry,) = entries(audit.AUTH_LOGOUT, "user:someone")
    assert entry.actor_id == user.pk


def test_admin_sign_in_goes_through_the_console_login(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/admin/"


def test_overlong_name_on_the_api_token_door_is_refused_without_error(client, directory):
    response = client.post("/api/token/", {"username": "y" * 5000, "password": "whatever-pw"})
    assert response.status_code == 400


def test_bad_api_token_is_refused_without_error(client):
    response = client.get("/api/jobs/", HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert response.status_code == 401


def test_failed_api_token_login_is_refused_without_error(client, directory):
    response = client.post("/api/token/", {"username": "alice", "password": "wrong-password"})
    assert response.status_code == 400
