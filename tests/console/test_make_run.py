"""`make run`'s script on embedded defaults: a login page, then a job run by its own worker."""

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.console.conftest import REPO

ADMIN_PASSWORD = "correct-horse-battery-staple-42"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _poll(fetch, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = fetch()
            if result:
                return result
        except OSError as e:
            last = e
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last error: {last})")


class Browser:
    """A tiny cookie-keeping HTTP client that sends Django's CSRF token."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str]:
        with self.opener.open(self.base + path, timeout=10) as r:  # noqa: S310
            return r.status, r.read().decode()

    def post(self, path: str, data: dict) -> tuple[str, str]:
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode()
        req = urllib.request.Request(  # noqa: S310 (http on loopback)
            self.base + path, data=body, headers={"Referer": self.base + path}
        )
        with self.opener.open(req, timeout=10) as r:
            return r.geturl(), r.read().decode()


def test_run_script_serves_the_console_and_its_worker_runs_jobs(tmp_path):
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "CONSOLE_SECRET_KEYS")
        and not k.startswith("LDAP_")
    }
    env.update(
        CONSOLE_VAR_DIR=str(tmp_path / "var"),
        PORT=str(port),
        PYTHON=sys.executable,
        CONSOLE_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [str(REPO / "scripts" / "run")],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        browser = Browser(base)
        status, page = _poll(lambda: browser.get("/login/"), 60, "the login page")
        assert status == 200 and 'name="password"' in page
        with urllib.request.urlopen(base + "/healthz", timeout=10) as r:  # noqa: S310
            assert json.load(r) == {"database": "ok", "broker": "ok"}

        url, _ = browser.post("/login/", {"username": "admin", "password": ADMIN_PASSWORD})
        assert not url.endswith("/login/"), "sign-in failed"
        url, _ = browser.post("/audit/verify/", {})
        job_id = re.search(r"/jobs/(\d+)/", url).group(1)

        def finished():
            _, body = browser.get(f"/api/jobs/{job_id}/")
            job = json.loads(body)
            return job if job["status"] not in ("pending", "running") else None

        job = _poll(finished, 60, "the worker started by the run script to run the job")
        assert job["status"] == "succeeded", job
        assert job["result"]["checked"] >= 1
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "var")], capture_output=True)
    assert leftovers.returncode == 1, "processes of the run script outlived it"
    assert not (REPO / "control").exists(), "the broker wrote outside CONSOLE_VAR_DIR"
