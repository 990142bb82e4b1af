"""The admin site: access changes audited with a before/after diff, records read-only, no secrets;
and `manage.py ensure_admin`, which creates the first admin account once."""

import secrets
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.authtoken.models import Token

from console import audit
from console.crypto import encrypt
from console.models import AuditEntry, Credential

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():
    return User.objects.create_superuser("root-admin", password="Admin-pass-" + "x" * 8)


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def user_form(user: User, **changes) -> dict:
    """The admin change form of `user` as a browser would post it, with `changes` applied."""
    values = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
        **changes,
    }
    data = {k: v for k, v in values.items() if v is not False}  # unticked boxes are not sent
    data["date_joined_0"] = user.date_joined.strftime("%Y-%m-%d")
    data["date_joined_1"] = user.date_joined.strftime("%H:%M:%S")
    data["last_login_0"] = data["last_login_1"] = ""
    return data


def perm(codename: str) -> Permission:
    return Permission.objects.get(codename=codename)


def test_user_group_change_in_admin_is_audited_with_diff(admin_client, admin_user):
    hal = User.objects.create_user("hal")
    hal.groups.add(Group.objects.get(name="helpdesk"))
    dba = Group.objects.get(name="dba")
    response = admin_client.post(change_url(hal), user_form(hal, groups=[dba.pk]))
    assert response.status_code == 302, response.content
    assert set(hal.groups.values_list("name", flat=True)) == {"dba"}
    (entry,) = AuditEntry.objects.filter(action=audit.AUTH_GROUPS_CHANGED, target="user:hal")
    assert (entry.actor_id, entry.actor_name, entry.source) == (admin_user.pk, "root-admin", "ui")
    assert entry.output == "added: dba; removed: helpdesk"


def test_user_permission_change_in_admin_is_audited(admin_client):
    hal = User.objects.create_user("hal")
    p = perm("view_auditentry")
    assert (
        admin_client.post(change_url(hal), user_form(hal, user_permissions=[p.pk])).status_code
        == 302
    )
    (entry,) = AuditEntry.objects.filter(action=audit.AUTH_PERMISSIONS_CHANGED, target="user:hal")
    assert entry.output == "added: console.view_auditentry; removed: -"


def test_user_flag_change_in_admin_is_audited(admin_client):
    hal = User.objects.create_user("hal")
    response = admin_client.post(change_url(hal), user_form(hal, is_staff=True, is_active=False))
    assert response.status_code == 302
    (entry,) = AuditEntry.objects.filter(action=audit.AUTH_USER_CHANGED, target="user:hal")
    assert entry.output == "is_active: True -> False; is_staff: False -> True"


def test_unchanged_user_save_writes_no_entry(admin_client):
    hal = User.objects.create_user("hal", first_name="Hal")
    before = AuditEntry.objects.count()
    assert (
        admin_client.post(change_url(hal), user_form(hal, first_name="Hal 9000")).status_code == 302
    )
    assert AuditEntry.objects.count() == before


def test_password_change_in_admin_is_audited_without_the_password(admin_client):
    hal = User.objects.create_user("hal", password="Old-pass-" + "y" * 8)
    new = "New-" + secrets.token_hex(8)
    url = reverse("admin:auth_user_password_change", args=[hal.pk])
    response = admin_client.post(
        url, {"password1": new, "password2": new, "usable_password": "true"}
    )
    assert response.status_code == 302, response.content
    (entry,) = AuditEntry.objects.filter(action=audit.AUTH_USER_CHANGED, target="user:hal")
    assert entry.output == "local password set"
    assert not AuditEntry.objects.filter(output__contains=new).exists()


def test_user_deleted_in_admin_is_audited(admin_client):
    hal = User.objects.create_user("hal")
    url = reverse("admin:auth_user_delete", args=[hal.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not User.objects.filter(username="hal").exists()
    assert AuditEntry.objects.filter(
        action=audit.AUTH_USER_CHANGED, target="user:hal", output="deleted"
    ).exists()


def test_group_permission_change_in_admin_is_audited(admin_client, admin_user):
    oncall = Group.objects.create(name="oncall")
    oncall.permissions.add(perm("view_job"))
    data = {"name": "oncall", "permissions": [perm("view_auditentry").pk]}
    assert admin_client.post(change_url(oncall), data).status_code == 302
    (entry,) = AuditEntry.objects.filter(
        action=audit.AUTH_PERMISSIONS_CHANGED, target="group:oncall"
    )
    assert entry.actor_id == admin_user.pk
    assert entry.output == "added: console.view_auditentry; removed: console.view_job"


def test_persona_group_cannot_be_deleted_in_admin(admin_client):
    dba = Group.objects.get(name="dba")
    url = reverse("admin:auth_group_delete", args=[dba.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Group.objects.filter(name="dba").exists()


def test_audit_entries_cannot_be_added_changed_or_deleted_in_admin(admin_client):
    entry = audit.append(audit.AUTH_LOGIN, actor_name="x", source="ui")
    assert admin_client.get(reverse("admin:console_auditentry_changelist")).status_code == 200
    assert admin_client.get(change_url(entry)).status_code == 200  # a read-only view
    assert admin_client.get(reverse("admin:console_auditentry_add")).status_code == 403
    delete = reverse("admin:console_auditentry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert admin_client.post(change_url(entry), {"action": "tampered"}).status_code == 403
    entry.refresh_from_db()
    assert entry.action == audit.AUTH_LOGIN


def test_credential_admin_never_shows_the_secret(admin_client):
    secret = "pw-" + secrets.token_hex(12)
    token = encrypt(secret)
    credential = Credential.objects.create(
        name="pg-admin", kind="password", username="postgres", secret_token=token
    )
    pages = [
        admin_client.get(reverse("admin:console_credential_changelist")),
        admin_client.get(change_url(credential)),
    ]
    for page in pages:
        assert page.status_code == 200
        assert b"pg-admin" in page.content
        assert secret.encode() not in page.content and token not in page.content
    assert admin_client.get(reverse("admin:console_credential_add")).status_code == 403


def test_token_admin_does_not_show_token_keys(admin_client, admin_user):
    token = Token.objects.create(user=admin_user)
    page = admin_client.get(reverse("admin:authtoken_tokenproxy_changelist"))
    assert page.status_code == 200
    assert token.key.encode() not in page.content


# --- ensure_admin ------------------------------------------------------------------------------


def run_ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_ensure_admin_creates_admin_with_generated_password_shown_once(monkeypatch):
    monkeypatch.delenv("CONSOLE_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("CONSOLE_ADMIN_PASSWORD_FILE", raising=False)
    monkeypatch.delenv("CONSOLE_ADMIN_USERNAME", raising=False)
    out = run_ensure_admin()
    (line,) = [ln for ln in out.splitlines() if ln.startswith("admin password (shown once): ")]
    password = line.split(": ", 1)[1]
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.check_password(password)
    assert admin.groups.filter(name="dba").exists()
    (entry,) = AuditEntry.objects.filter(action=audit.AUTH_USER_CHANGED, target="user:admin")
    assert entry.source == "cli" and "password: generated" in entry.output
    assert not AuditEntry.objects.filter(output__contains=password).exists()


def test_ensure_admin_takes_name_and_password_from_environment(monkeypatch, tmp_path):
    password_file = tmp_path / "pw"
    password_file.write_text("From-file-" + "z" * 10 + "\n")
    monkeypatch.setenv("CONSOLE_ADMIN_USERNAME", "boss")
    monkeypatch.delenv("CONSOLE_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("CONSOLE_ADMIN_PASSWORD_FILE", str(password_file))
    out = run_ensure_admin()
    assert "shown once" not in out and "From-file" not in out
    assert User.objects.get(username="boss").check_password("From-file-" + "z" * 10)


def test_ensure_admin_refuses_a_weak_password(monkeypatch):
    monkeypatch.setenv("CONSOLE_ADMIN_PASSWORD", "admin")
    monkeypatch.delenv("CONSOLE_ADMIN_PASSWORD_FILE", raising=False)
    monkeypatch.delenv("CONSOLE_ADMIN_USERNAME", raising=False)
    with pytest.raises(CommandError, match="CONSOLE_ADMIN_PASSWORD"):
        run_ensure_admin()
    assert not User.objects.filter(username="admin").exists()


def test_ensure_admin_leaves_an_existing_admin_alone(monkeypatch):
    monkeypatch.delenv("CONSOLE_ADMIN_USERNAME", raising=False)
    monkeypatch.setenv("CONSOLE_ADMIN_PASSWORD", "Other-pass-" + "q" * 8)
    existing = User.objects.create_user("admin", password="Kept-pass-" + "k" * 8)
    before = AuditEntry.objects.count()
    out = run_ensure_admin()
    assert "exists" in out and "shown once" not in out
    existing.refresh_from_db()
    assert existing.check_password("Kept-pass-" + "k" * 8) and not existing.is_superuser
    assert AuditEntry.objects.count() == before


def test_admin_refuses_a_signed_in_user_who_is_not_staff(client):
    client.force_login(User.objects.create_user("plain"))
    assert client.get("/admin/login/").status_code == 403
