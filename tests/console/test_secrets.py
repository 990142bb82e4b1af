"""Secrets at rest: encrypted with MultiFernet, rotatable, never in the clear in the database."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from console import audit, crypto
from console.crypto import SecretUnreadable
from console.models import AuditEntry, Credential
from console.secrets import rotate_credentials, store_credential

SECRET = "hunter2-Ünïcode-'quote'"

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(settings):
    """Two fresh keys; the settings start with only `old` configured."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CONSOLE_SECRET_KEYS = [old]
    crypto.reset_cache()
    yield {"old": old, "new": new}
    crypto.reset_cache()


def use_keys(settings, *keys: str) -> None:
    settings.CONSOLE_SECRET_KEYS = list(keys)
    crypto.reset_cache()


def raw_token(credential: Credential) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_token FROM console_credential WHERE id = %s", [credential.pk])
        return bytes(cursor.fetchone()[0])


def all_audit_text() -> str:
    fields = ("actor_name", "target", "node", "command", "output", "error")
    return "\n".join(str(v) for row in AuditEntry.objects.values_list(*fields) for v in row)


def test_stored_column_never_holds_the_clear_secret(keys, dba):
    credential = store_credential("db1-admin", "password", SECRET, actor=dba, username="admin")
    raw = raw_token(credential)
    assert SECRET.encode() not in raw
    assert b"hunter2" not in raw


def test_stored_secret_is_revealed(keys, dba):
    store_credential("db1-admin", "password", SECRET, actor=dba)
    assert Credential.objects.get(name="db1-admin").reveal() == SECRET


def test_storing_is_audited_without_the_secret(keys, dba):
    store_credential("db1-admin", "password", SECRET, actor=dba, username="admin")
    entry = AuditEntry.objects.get(action=audit.SECRET_CREATED)
    assert entry.target == "credential:db1-admin"
    assert entry.actor_name == "dba"
    assert "hunter2" not in all_audit_text()


def test_storing_under_an_existing_name_replaces_the_secret_and_audits(keys, dba):
    store_credential("db1-admin", "password", SECRET, actor=dba)
    store_credential("db1-admin", "password", "another-secret", actor=dba)
    assert Credential.objects.get(name="db1-admin").reveal() == "another-secret"
    assert AuditEntry.objects.filter(action=audit.SECRET_CREATED).count() == 2
    assert Credential.objects.count() == 1


def test_storing_the_same_secret_again_changes_nothing(keys, dba):
    first = store_credential("db1-admin", "password", SECRET, actor=dba)
    token = raw_token(first)
    store_credential("db1-admin", "password", SECRET, actor=dba)
    assert raw_token(first) == token
    assert AuditEntry.objects.filter(action=audit.SECRET_CREATED).count() == 1


def test_unknown_kind_is_refused(keys, dba):
    with pytest.raises(ValueError, match="kind"):
        store_credential("x", "telepathy", SECRET, actor=dba)


def test_secret_encrypted_with_an_older_key_is_read_with_the_rotated_key_list(keys, settings, dba):
    store_credential("db1-admin", "password", SECRET, actor=dba)
    use_keys(settings, keys["new"], keys["old"])
    assert Credential.objects.get(name="db1-admin").reveal() == SECRET


def test_rotation_lets_the_old_key_be_removed(keys, settings, dba):
    store_credential("db1-admin", "password", SECRET, actor=dba)
    use_keys(settings, keys["new"], keys["old"])
    call_command("rotate_secret_keys", stdout=io.StringIO())
    use_keys(settings, keys["new"])
    assert Credential.objects.get(name="db1-admin").reveal() == SECRET


def test_rotation_reports_how_many_were_reencrypted(keys, settings, dba, capsys):
    store_credential("a", "password", "secret-a", actor=dba)
    store_credential("b", "ssh-key", "secret-b", actor=dba)
    use_keys(settings, keys["new"], keys["old"])
    call_command("rotate_secret_keys")
    assert "2 credentials re-encrypted" in capsys.readouterr().out


def test_rotation_twice_reencrypts_nothing_the_second_time(keys, settings, dba):
    store_credential("a", "password", "secret-a", actor=dba)
    use_keys(settings, keys["new"], keys["old"])
    assert rotate_credentials() == (1, 1)
    assert rotate_credentials() == (0, 1)
    assert AuditEntry.objects.filter(action=audit.SECRET_ROTATED).count() == 1


def test_rotation_is_audited_without_secrets(keys, settings, dba):
    store_credential("a", "password", "secret-a", actor=dba)
    use_keys(settings, keys["new"], keys["old"])
    rotate_credentials()
    entry = AuditEntry.objects.get(action=audit.SECRET_ROTATED)
    assert "1 of 1" in entry.output
    assert "secret-a" not in all_audit_text()


def test_rotation_with_a_missing_key_changes_nothing(keys, settings, dba):
    store_credential("a", "password", "secret-a", actor=dba)
    use_keys(settings, keys["new"])
    store_credential("b", "password", "secret-b", actor=dba)
    use_keys(settings, Fernet.generate_key().decode(), keys["new"])
    before = {c.name: bytes(c.secret_token) for c in Credential.objects.all()}
    with pytest.raises(CommandError, match="credential a cannot be decrypted"):
        call_command("rotate_secret_keys")
    assert {c.name: bytes(c.secret_token) for c in Credential.objects.all()} == before


def test_missing_key_gives_a_clear_error(keys, settings, dba):
    store_credential("db1-admin", "password", SECRET, actor=dba)
    use_keys(settings, keys["new"])
    with pytest.raises(SecretUnreadable, match="CONSOLE_SECRET_KEYS"):
        Credential.objects.get(name="db1-admin").reveal()
