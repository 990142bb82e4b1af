"""Fixtures for tests that start real console processes (workers, commands) on the test database."""

import os
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def console_env(transactional_db) -> dict:
    """Environment for a subprocess of the console that uses this test's database."""
    s = connection.settings_dict
    env = dict(os.environ)
    if s["ENGINE"].endswith("postgresql"):
        env["DATABASE_URL"] = (
            f"postgres://{quote(s['USER'], safe='')}:{quote(s['PASSWORD'], safe='')}"
            f"@{s['HOST']}:{s['PORT']}/{quote(s['NAME'], safe='')}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{s['NAME']}"
    env["PYTHONPATH"] = str(REPO)
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "manage.py"), *args]
