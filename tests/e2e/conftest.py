"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

Playwright's sync API runs an event loop in the test thread, so Django's guard against sync
database calls from async contexts must be lifted here (DJANGO_ALLOW_ASYNC_UNSAFE). The live
server listens on 127.0.0.1 only. Jobs the browser enqueues go to a Redis database of their own
on the lab's Redis, emptied afterwards, so no worker of another test ever receives them.
"""

import os
import re
from pathlib import Path

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
E2E_REDIS_DB = 13  # a Redis database no other part of the suite uses


# Package scope: Playwright's sync API keeps an asyncio loop running in the main thread while
# it is open, and asyncio.run() (the SSH executor) then fails in every later test module.
@pytest.fixture(scope="package")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(page, request):
    """`screenshot("step")` saves var/screenshots/<test>-<nn>-<step>.png (full page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"\W+", "-", request.node.name).strip("-")
    count = iter(range(1, 100))

    def take(step: str) -> Path:
        path = SCREENSHOTS / f"{test}-{next(count):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def _send_to(app, url: str | None) -> None:
    """Send the Celery app's messages to `url` (None: back to the broker URL).

    broker_write_url, because broker_url is read through the CELERY_ settings namespace.
    """
    app.conf.broker_write_url = url
    if app._pool is not None:
        app._pool.force_close_all()
    # What Celery itself resets after a fork: the connection and producer pools. kombu also
    # keeps one producer pool per broker URL for the whole process, and force_close_all() above
    # closed it: a later test sending to the same URL would find it closed ("Acquire on closed
    # pool"), so those pools are dropped too.
    app._pool = None
    app.amqp._producer_pool = None
    from kombu import pools

    pools.reset()


@pytest.fixture
def e2e_broker():
    """Send this test's Celery messages to a Redis database of their own; empty it afterwards."""
    import redis
    from celery import current_app

    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        pytest.fail("CELERY_BROKER_URL (the lab's Redis) is not set; run `manage.py lab up`")
    own = re.sub(r"/\d*$", "", url) + f"/{E2E_REDIS_DB}"
    previous = current_app.conf.broker_write_url
    _send_to(current_app, own)
    try:
        yield own
    finally:
        _send_to(current_app, previous)
        client = redis.Redis.from_url(own)
        client.flushdb()
        client.close()
