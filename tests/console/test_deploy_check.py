"""`manage.py check --deploy` passes with production settings; bad values stop start-up by name."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]


def production_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment as a production deployment gives it: nothing from the test run."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "DEBUG": "false",
        "HTTPS": "true",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "CONSOLE_SECRET_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "console.example.org",
        "CONSOLE_VAR_DIR": str(var_dir),
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_deploy_check_passes_with_production_settings(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output and "ERROR" not in output
    assert "System check identified no issues" in output


def test_deploy_check_fails_without_https(tmp_path):
    env = production_env(tmp_path, HTTPS="false")
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W012" in result.stderr  # SESSION_COOKIE_SECURE


@pytest.mark.parametrize(
    "name, value",
    [
        ("AXES_FAILURE_LIMIT", "abc"),
        ("DATABASE_URL", "mysql://x"),
        ("HTTPS", "maybe"),
        ("CELERY_BROKER_URL", "amqp://x"),
        ("CONSOLE_SECRET_KEYS", "not-a-fernet-key"),
    ],
)
def test_bad_value_stops_check_naming_the_variable(tmp_path, name, value):
    result = manage(production_env(tmp_path, **{name: value}), "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{name}:" in result.stderr
    assert value not in result.stderr or name != "CONSOLE_SECRET_KEYS"  # keys are never echoed


def test_short_secret_key_stops_check(tmp_path):
    result = manage(production_env(tmp_path, SECRET_KEY="too-short"), "check")
    assert result.returncode != 0 and "SECRET_KEY:" in result.stderr
