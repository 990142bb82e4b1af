"""/healthz: 200 when the database and the broker answer, 503 naming the one that does not."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse

REPO = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab_broker_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        pytest.fail("CELERY_BROKER_URL (the lab's Redis) is not set; run `manage.py lab up`")
    return url


@pytest.mark.django_db
def test_healthz_is_ok_with_the_lab_redis(client, lab_broker_url):
    with override_settings(CELERY_BROKER_URL=lab_broker_url):
        response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_names_an_unreachable_broker(client):
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    with override_settings(CELERY_BROKER_URL=url, CELERY_BROKER_TRANSPORT_OPTIONS={}):
        response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "unreachable"}


@pytest.mark.django_db
def test_healthz_checks_the_filesystem_broker_folder(client, tmp_path):
    options = {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
    }
    with override_settings(
        CELERY_BROKER_URL="filesystem://", CELERY_BROKER_TRANSPORT_OPTIONS=options
    ):
        missing = client.get(reverse("healthz"))
        (tmp_path / "queue").mkdir()
        present = client.get(reverse("healthz"))
    assert missing.status_code == 503 and missing.json()["broker"] == "unreachable"
    assert present.status_code == 200


def test_healthz_names_an_unreachable_database():
    """A console process whose DATABASE_URL points at a closed port answers 503 "database"."""
    script = (
        "import django, json; django.setup()\n"
        "from django.test import RequestFactory\n"
        "from console.views import healthz\n"
        "r = healthz(RequestFactory().get('/healthz'))\n"
        "print(json.dumps([r.status_code, json.loads(r.content)]))\n"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="console.settings", CELERY_BROKER_URL="memory://")
    env["DATABASE_URL"] = f"postgres://nobody:nothing@127.0.0.1:{_closed_port()}/console"
    env.setdefault("CONSOLE_DEV_DEFAULTS", "true")
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    status, body = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == 503
    assert body == {"database": "unreachable", "broker": "ok"}


def test_healthz_needs_no_sign_in_and_refuses_post(client, db):
    assert client.post(reverse("healthz")).status_code == 405
    assert client.get(reverse("healthz")).status_code in (200, 503)
