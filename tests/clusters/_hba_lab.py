"""The lab side of the pg_hba tests (tests/clusters/test_hba_*.py and tests/e2e/test_hba.py):
db1's and db2's own pg_hba.conf saved and put back around each test (lab_files), a login role
to probe them with, the registered lab-pg cluster and a DBA, and the import and apply jobs run
in the test's own thread. A helper module rather than a tests/clusters/conftest.py, which every
area of the clusters app would share."""

import os
from pathlib import Path

import psycopg
import pytest

from clusters import hba
from clusters.actions import hba as actions
from clusters.actions import hba_apply as apply_actions
from clusters.actions import hba_live as live_actions
from clusters.models import Cluster
from clusters.tasks import hba_apply, hba_read
from console import jobs
from console.lab.demo import register_demo
from console.models import Job, JobLogLine
from tests.factories import make_user

PROBE = "hba_probe"
PROBE_PASSWORD = "probe-password-8c1d"


def _superuser(host: str):
    return psycopg.connect(host=host, port=os.environ["LAB_PG_PORT"], dbname="postgres",
                           user="postgres", password=os.environ["LAB_PG_PASSWORD"],
                           connect_timeout=5, autocommit=True)  # fmt: skip


def _files(lab_env) -> dict[str, Path]:
    base = Path(lab_env["LAB_DIR"])
    return {"db1": base / "primary" / "data" / "pg_hba.conf",
            "db2": base / "standby" / "data" / "pg_hba.conf"}  # fmt: skip


def _hosts() -> dict[str, str]:
    return {"db1": os.environ["LAB_PG_HOST"], "db2": os.environ["LAB_PG_STANDBY_HOST"]}


def _load_time(name: str):
    with _superuser(_hosts()[name]) as conn:
        return conn.execute("SELECT pg_conf_load_time()").fetchone()[0]


@pytest.fixture
def lab_files(lab_env):
    """The lab's pg_hba.conf of db1 and db2 as they were; put back (and reloaded) afterwards,
    with the console's backup copies removed. Also a login role for probing, dropped after."""
    files = _files(lab_env)
    saved = {name: (path.read_bytes(), path.stat()) for name, path in files.items()}
    with _superuser(_hosts()["db1"]) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {PROBE}")
        conn.execute(f"CREATE ROLE {PROBE} LOGIN PASSWORD '{PROBE_PASSWORD}'")
    yield saved
    for name, path in files.items():
        text, stat = saved[name]
        path.write_bytes(text)
        os.chown(path, stat.st_uid, stat.st_gid)
        os.chmod(path, stat.st_mode)
        for extra in path.parent.glob("*pg_hba.conf*dbconsole*"):
            extra.unlink()
        with _superuser(_hosts()[name]) as conn:
            conn.execute("SELECT pg_reload_conf()")
    with _superuser(_hosts()["db1"]) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {PROBE}")


def _probe(name: str) -> str:
    """'ok' when hba_probe logs in to the node from the lab bridge, else the server's refusal."""
    try:
        with psycopg.connect(host=_hosts()[name], port=os.environ["LAB_PG_PORT"],
                             dbname="postgres", user=PROBE, password=PROBE_PASSWORD,
                             connect_timeout=5):  # fmt: skip
            return "ok"
    except psycopg.OperationalError as e:
        return str(e)


@pytest.fixture
def cluster(lab_env, lab_files):
    register_demo(os.environ)
    return Cluster.objects.get(name="lab-pg")


@pytest.fixture
def dba(db):
    return make_user("dana", persona="dba")


def _run(job: Job, body) -> Job:
    jobs.run_job(job.pk, body)
    job.refresh_from_db()
    return job


def _log(job: Job) -> str:
    return "\n".join(JobLogLine.objects.filter(job=job).values_list("message", flat=True))


def _import(cluster, dba, capture) -> Job:
    with capture(execute=False):
        job = live_actions.start_read(cluster, adopt=True, actor=dba)
    return _run(job, hba_read.body)


def _apply(cluster, dba, capture) -> Job:
    with capture(execute=False):
        job = apply_actions.start_apply(cluster, confirm=cluster.name, actor=dba)
    return _run(job, hba_apply.body)


def _reject_probe(ruleset, dba):
    rule = hba.Rule("host", "all", PROBE, "10.0.0.0/8", method="reject",
                    comment="hba_probe may not log in (test)")  # fmt: skip
    return actions.save_rule(ruleset, rule, position=0, actor=dba)
