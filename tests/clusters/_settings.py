"""What the server settings tests share (tests/clusters/test_settings*.py): the test's own
looks at the lab's servers (not the console's), the lab's nodes registered, the page and job
helpers, and the fixtures that let every test leave the servers as it found them.

The fixtures keep db1's and db2's postgresql.auto.conf and my1's my.cnf (and the variables
changed) and put them back, reloading, until no restart is pending; the console's backup
copies of my.cnf are removed.
"""

import os
import time
from pathlib import Path

import MySQLdb
import psycopg
import pytest
from django.urls import reverse

from clusters.models import Node
from clusters.tasks import change_setting as change_setting_task
from console import jobs
from console.lab.demo import register_demo
from console.models import Job

lab_db = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions
LAB = Path(os.environ.get("LAB_DIR", "/nonexistent"))
AUTO_CONF = {
    "db1": LAB / "primary" / "data" / "postgresql.auto.conf",
    "db2": LAB / "standby" / "data" / "postgresql.auto.conf",
}
MY_CNF = LAB / "mariadb" / "my.cnf"
MY_VARIABLES = ("wait_timeout", "max_connections", "long_query_time")


# --- Direct looks at the servers (the test's own eyes, not the console's) -----------------------


def _pg(host: str):
    address = os.environ["LAB_PG_HOST" if host == "db1" else "LAB_PG_STANDBY_HOST"]
    port = os.environ["LAB_PG_PORT" if host == "db1" else "LAB_PG_STANDBY_PORT"]
    return psycopg.connect(host=address, port=port, user=os.environ["LAB_PG_USER"],
                           password=os.environ["LAB_PG_PASSWORD"], dbname="postgres",
                           autocommit=True, connect_timeout=5)  # fmt: skip


def pg_setting(host: str, name: str) -> tuple[str, bool]:
    """(SHOW value, pending_restart) of a parameter on db1 or db2."""
    with _pg(host) as conn:
        return conn.execute(
            "SELECT current_setting(name), pending_restart FROM pg_settings WHERE name = %s",
            (name,),
        ).fetchone()


def _my():
    return MySQLdb.connect(
        host=os.environ["LAB_MYSQL_HOST"], port=int(os.environ["LAB_MYSQL_PORT"]),
        user=os.environ["LAB_MYSQL_USER"], password=os.environ["LAB_MYSQL_PASSWORD"],
        connect_timeout=5,
    )  # fmt: skip


def my_global(name: str) -> str:
    conn = _my()
    try:
        cur = conn.cursor()
        cur.execute("SELECT GLOBAL_VALUE FROM information_schema.SYSTEM_VARIABLES "
                    "WHERE VARIABLE_NAME = UPPER(%s)", (name,))  # fmt: skip
        return str(cur.fetchone()[0])
    finally:
        conn.close()


def _wait(check, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def lab_nodes(lab_env) -> dict[str, Node]:
    register_demo(os.environ)
    return {node.name: node for node in Node.objects.all()}


@pytest.fixture
def pg_restored(lab_env):
    """db1 and db2 as they were after the test: postgresql.auto.conf back, reloaded, nothing
    pending. The test asserts on them itself; this only cleans up."""
    before = {host: path.read_bytes() for host, path in AUTO_CONF.items()}
    yield before
    for host, path in AUTO_CONF.items():
        if path.read_bytes() != before[host]:
            stat = path.stat()
            path.write_bytes(before[host])
            os.chown(path, stat.st_uid, stat.st_gid)
        with _pg(host) as conn:
            conn.execute("SELECT pg_reload_conf()")

        def settled(host=host):
            with _pg(host) as conn:
                return not conn.execute(
                    "SELECT count(*) FROM pg_settings WHERE pending_restart"
                ).fetchone()[0]

        _wait(settled, f"{host} to have no pending restart")


@pytest.fixture
def my_restored(lab_env):
    """my1's my.cnf and the variables the tests change back as they were; backups removed."""
    text = MY_CNF.read_bytes()
    files = set(MY_CNF.parent.iterdir())
    values = {name: my_global(name) for name in MY_VARIABLES}
    yield text
    if MY_CNF.read_bytes() != text:
        MY_CNF.write_bytes(text)
    for path in set(MY_CNF.parent.iterdir()) - files:
        path.unlink()
    conn = _my()
    try:
        for name, value in values.items():
            number = float(value) if "." in value else int(value)
            conn.cursor().execute(f"SET GLOBAL {name} = %s", (number,))  # constant names
    finally:
        conn.close()


def post_change(client, user, node: Node, name: str, **data):
    client.force_login(user)
    url = reverse("clusters:node_setting", args=[node.pk, name])
    client.get(url)  # the page the person saw: the row it keeps for the check
    return client.post(url, {"scope": "node", **data})


def run_latest_job() -> Job:
    job = Job.objects.filter(kind="clusters.change_setting").latest("pk")
    jobs.run_job(job.pk, change_setting_task.body)
    job.refresh_from_db()
    return job
