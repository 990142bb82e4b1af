"""The helpers console/settings.py reads its environment variables with.

Each reads one variable (or checks one value) and fails loudly: a bad value raises
ImproperlyConfigured naming the variable, so the console does not start half-configured.
`env_str` reads `<NAME>_FILE` for secrets. The development defaults' random secrets are kept in
var/, and a DATABASE_URL becomes Django's DATABASES entry. Code apart from the settings they
serve, so that settings.py reads as the list of settings.
"""

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str | None = None) -> str | None:
    """A string variable; NAME_FILE, when set, names a file holding the value (for secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as e:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_name}: {e.strerror}") from e
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}: expected true or false, got {value!r}")


def _env_number(name: str, parse, expected: str):
    """The variable read by `parse` (int or float), or None when it is unset or empty."""
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return parse(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected {expected}, got {value!r}") from None


def env_int(name: str, default: int, minimum: int = 0) -> int:
    number = _env_number(name, int, "a whole number")
    if number is None:
        return default
    if number < minimum:
        raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {number}")
    return number


def env_float(name: str, default: float, minimum: float = 0.0, maximum: float | None = None):
    number = _env_number(name, float, "a number")
    if number is None:
        return default
    if number < minimum or (maximum is not None and number > maximum):
        raise ImproperlyConfigured(
            f"{name}: must be between {minimum:g} and {maximum:g}, got {number:g}"
            if maximum is not None
            else f"{name}: must be at least {minimum:g}, got {number:g}"
        )
    return number


def env_list(name: str, default: str = "") -> list[str]:
    value = os.environ.get(name, default)
    return [item.strip() for item in value.split(",") if item.strip()]


def persistent_secret(path: Path) -> str:
    """A random secret kept in var/ for the embedded development defaults."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def persistent_fernet_key(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(Fernet.generate_key().decode())
    return path.read_text().strip()


def database_from_url(name: str, url: str) -> dict:
    """Django's DATABASES entry for a postgres:// or sqlite:/// URL."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    if parts.scheme in ("postgres", "postgresql"):
        if not parts.path.strip("/"):
            raise ImproperlyConfigured(f"{name}: the URL names no database: {parts.scheme}://…")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": unquote(parts.hostname or ""),
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {"application_name": "dbconsole", **options},
        }
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if not path or path == "/":
            raise ImproperlyConfigured(f"{name}: sqlite URL needs a path: sqlite:////abs/path.db")
        return sqlite_database(Path(path))
    raise ImproperlyConfigured(
        f"{name}: unsupported scheme {parts.scheme!r}; use postgres:// or sqlite:///"
    )


def sqlite_database(path: Path) -> dict:
    # IMMEDIATE transactions serialize writers, so the audit chain stays one chain on SQLite.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }


def crontab_schedule(name: str, text: str):
    """Five cron fields (minute hour day-of-month month day-of-week) as a Celery crontab."""
    from celery.schedules import crontab

    fields = text.split()
    try:
        if len(fields) != 5:
            raise ValueError("expected five cron fields: minute hour day-of-month month weekday")
        minute, hour, day_of_month, month_of_year, day_of_week = fields
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                       month_of_year=month_of_year, day_of_week=day_of_week)  # fmt: skip
    except ValueError as e:
        raise ImproperlyConfigured(f"{name}: {e}, got {text!r}") from None
