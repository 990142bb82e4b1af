"""Provisioning on the lab's bare hosts (bare1, bare2), for real: a PostgreSQL cluster from
nothing with a synchronous hot standby, a warm standby, and the faults (unreachable host,
missing package, port in use) that stop a job at their step and resume on a re-run.

Every path is under LAB_DIR (the lab's hosts share the filesystem and /run); the servers are
stopped and their directories removed after each test."""

import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import psycopg
import pytest

from clusters.models import Cluster, Node, PgProvision
from clusters.provision import tasks
from clusters.provision.pg import PgSpec, start_provision
from clusters.provision.standby import StandbySpec, start_add_standby
from console import audit, jobs
from console.lab import faults
from console.lab.demo import register_demo
from console.models import AuditEntry, Job, JobStep
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Prov1sion-admin-pw-7f3e"
PG_BIN = "/usr/lib/postgresql/15/bin"


@pytest.fixture
def dba_user(db):
    return make_user("provisioner", persona="dba")


@pytest.fixture
def bare(lab, lab_env, db):
    """bare1 and bare2 registered as the demo registers them."""
    register_demo(os.environ)
    return {name: Node.objects.get(name=name) for name in ("bare1", "bare2")}


@pytest.fixture
def place(lab_env, request):
    """A directory under LAB_DIR for this test's servers; servers found there are stopped
    (immediate) and everything removed afterwards."""
    base = Path(lab_env["LAB_DIR"]) / f"prov-{request.node.name[:40]}"
    shutil.rmtree(base, ignore_errors=True)
    yield base
    for version in base.glob("**/PG_VERSION"):
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "stop", "-D",
                        str(version.parent), "-m", "immediate", "-w", "-s"],
                       capture_output=True, timeout=60, check=False)  # fmt: skip
    shutil.rmtree(base, ignore_errors=True)


def _spec(place: Path, host: Node, name: str, **kw) -> PgSpec:
    return PgSpec(
        cluster=name, environment="lab", node_name=f"{name}-{host.name}",
        data_directory=str(place / host.name / "data"),
        socket_directory=str(place / host.name / "run"),
        log_file=str(place / host.name / "postgresql.log"),
        archive_directory=str(place / "archive"), listen_addresses=[host.address],
        networks=[os.environ["LAB_NET"]], admin_credential=f"{name}-admin", **kw,
    )  # fmt: skip


def _standby_spec(place: Path, host: Node, name: str, app: str, **kw) -> StandbySpec:
    return StandbySpec(
        node_name=f"{name}-{host.name}", application_name=app,
        data_directory=str(place / host.name / "data"),
        socket_directory=str(place / host.name / "run"),
        log_file=str(place / host.name / "postgresql.log"),
        listen_addresses=[host.address], **kw,
    )  # fmt: skip


def _run(job: Job) -> Job:
    body = {"clusters.provision_pg": tasks.provision_pg, "clusters.add_standby":
            tasks.add_pg_standby}[job.kind].body  # fmt: skip
    jobs.run_job(job.pk, body)
    job.refresh_from_db()
    return job


def _steps(job: Job) -> list[tuple[str, str]]:
    return [(s.name.split(" (")[0].split(":")[0], s.status) for s in job.steps.all()]


def _statuses(job: Job) -> list[str]:
    return list(job.steps.values_list("status", flat=True))


def _connect(address: str, port: int = 5432, **kw) -> psycopg.Connection:
    return psycopg.connect(host=address, port=port, user="postgres", password=PASSWORD,
                           dbname="postgres", connect_timeout=5, autocommit=True, **kw)  # fmt: skip


def _listener(lab, host: str, address: str, port: int) -> subprocess.Popen:
    """Something else listening on address:port inside the host."""
    code = ("import socket,sys,time; s=socket.socket();"
            " s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
            " s.bind((sys.argv[1], int(sys.argv[2])));"
            " s.listen(); print('ready', flush=True); time.sleep(600)")  # fmt: skip
    process = subprocess.Popen(lab.host(host).argv([sys.executable, "-c", code, address,
                               str(port)]), stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout.readline().strip() == "ready"
    return process


def test_a_cluster_from_nothing_with_a_synchronous_standby(lab, bare, place, dba_user):
    """bare1 becomes a primary (after a port conflict that stops the job at its start step and
    a re-run that resumes), bare2 its synchronous hot standby; a commit on the primary is on
    the standby, sync_state = sync."""
    spec = _spec(place, bare["bare1"], "prov-a")
    squatter = _listener(lab, "bare1", bare["bare1"].address, 5432)
    try:
        first = _run(start_provision(bare["bare1"], spec, PASSWORD, actor=dba_user))
    finally:
        squatter.kill()
        squatter.wait()
    assert first.status == Job.Status.FAILED
    statuses = _statuses(first)
    start = next(s for s in first.steps.all() if s.name.startswith("Start the server"))
    assert start.status == "failed"
    assert "port 5432 is already in use on bare1" in start.detail and "python" in start.detail
    # the server package is installed in the lab: its step is skipped by its check
    assert statuses[: start.position - 1] == ["done", "skipped"] + ["done"] * (start.position - 3)
    assert set(statuses[start.position :]) == {"pending"}
    assert "Already done: Detect the OS family" in first.error
    assert "initdb" in first.error

    second = _run(jobs.rerun(first, user=dba_user))
    assert second.status == Job.Status.SUCCEEDED, second.error
    statuses = _statuses(second)
    # detect the OS (always runs), then what the first job did is skipped, the rest is done
    assert statuses[0] == "done"
    assert statuses[1 : start.position - 1] == ["skipped"] * (start.position - 2)
    assert statuses[start.position - 1 :] == ["done"] * (len(statuses) - start.position + 1)

    cluster = Cluster.objects.get(name="prov-a")
    primary = cluster.nodes.get()
    assert (primary.role, primary.address, primary.db_port) == ("primary", bare["bare1"].address,
                                                                5432)  # fmt: skip
    assert PgProvision.objects.get(cluster=cluster).archive_directory == spec.archive_directory
    with _connect(primary.address) as conn:
        checksums, listen, local = conn.execute(
            "SELECT current_setting('data_checksums'), current_setting('listen_addresses'),"
            " (SELECT auth_method FROM pg_hba_file_rules WHERE type = 'local')"
        ).fetchone()
        assert (checksums, listen, local) == ("on", bare["bare1"].address, "scram-sha-256")
        assert conn.execute("SELECT archived_count > 0 FROM pg_stat_archiver").fetchone()[0]
    assert any(Path(spec.archive_directory).iterdir())
    # The socket needs the password now: trust is gone.
    peer = subprocess.run(
        ["runuser", "-u", "postgres", "--", f"{PG_BIN}/psql", "-h", spec.socket_directory,
         "-w", "-c", "SELECT 1"], capture_output=True, text=True, timeout=30)  # fmt: skip
    assert peer.returncode != 0 and "password" in peer.stderr

    # The synchronous hot standby on bare2.
    sspec = _standby_spec(place, bare["bare2"], "prov-a", "prov_a_s1",
                          sync_method="FIRST", synchronous_commit="remote_apply")  # fmt: skip
    job = _run(start_add_standby(cluster, bare["bare2"], sspec, actor=dba_user))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert _statuses(job)[:2] == ["done", "skipped"]  # the package is there
    done = [name for name, status in _steps(job) if status == "done"]
    assert done[-4:] == ["Wait until prov_a_s1 streams", "Make it synchronous on the primary",
                         "Verify sync_state = sync in pg_stat_replication",
                         "Register prov-a-bare2 in prov-a"], str(_steps(job))  # fmt: skip
    standby = cluster.nodes.get(role="standby")
    with _connect(primary.address) as conn:
        state = conn.execute(
            "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = %s",
            ["prov_a_s1"],
        ).fetchone()
        assert state == ("streaming", "sync")
        names, commit = conn.execute(
            "SELECT current_setting('synchronous_standby_names'),"
            " current_setting('synchronous_commit')"
        ).fetchone()
        assert (names, commit) == ('FIRST 1 ("prov_a_s1")', "remote_apply")
        slot = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                            ["prov_a_s1"]).fetchone()  # fmt: skip
        assert slot == (True,)
        conn.execute("CREATE TABLE provisioned (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO provisioned VALUES (1, 'committed on the primary')")
    with _connect(standby.address) as conn:  # remote_apply: visible at once, no polling
        assert conn.execute("SELECT note FROM provisioned WHERE id = 1").fetchone() == (
            "committed on the primary",
        )
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)

    # No clear password anywhere in the audit chain or the job logs.
    for text in AuditEntry.objects.values_list("command", "output", "error"):
        assert PASSWORD not in " ".join(text)
    assert not JobStep.objects.filter(detail__contains=PASSWORD).exists()
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {audit.PROVISION_REQUESTED, audit.PROVISION_PG_DONE, audit.PROVISION_STANDBY_DONE,
            audit.PROVISION_COMMAND, audit.PROVISION_SQL} <= actions  # fmt: skip

    # Run again with the same parameters: every step finds its work done.
    again = Job.objects.create(kind=second.kind, title="again", user=dba_user,
                               params=second.params)  # fmt: skip
    again = _run(again)
    assert again.status == Job.Status.SUCCEEDED
    assert _statuses(again)[1:] == ["skipped"] * (len(_statuses(again)) - 1)


def test_a_warm_standby_recovers_from_the_archive_only(lab, bare, place, dba_user):
    job = _run(start_provision(bare["bare1"], _spec(place, bare["bare1"], "prov-w"), PASSWORD,
                               actor=dba_user))  # fmt: skip
    assert job.status == Job.Status.SUCCEEDED, job.error
    cluster = Cluster.objects.get(name="prov-w")
    sspec = _standby_spec(place, bare["bare2"], "prov-w", "prov_w_warm", mode="warm",
                          synchronous=False)  # fmt: skip
    job = _run(start_add_standby(cluster, bare["bare2"], sspec, actor=dba_user))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert [n for n, _ in _steps(job)][-2:] == ["Check the warm standby is in archive recovery",
                                                "Register prov-w-bare2 in prov-w"]  # fmt: skip
    with _connect(bare["bare1"].address) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
        assert conn.execute("SHOW synchronous_standby_names").fetchone() == ("",)
    # Not open for reads: hot_standby off.
    with pytest.raises(psycopg.OperationalError, match="Hot standby mode is disabled"):
        _connect(bare["bare2"].address).close()
    # WAL reaches it through the archive: a segment the primary switches is restored there.
    with _connect(bare["bare1"].address) as conn:
        conn.execute("CREATE TABLE warm (id int)")
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
    log = Path(sspec.log_file)
    deadline = time.monotonic() + 30
    while f'restored log file "{segment}" from archive' not in log.read_text():
        assert time.monotonic() < deadline, f"{segment} never restored on the warm standby"
        time.sleep(0.2)
    conf = (Path(sspec.data_directory) / "dbconsole.conf").read_text()
    assert "hot_standby = off" in conf and "restore_command" in conf


def test_an_unreachable_host_stops_the_job_at_its_first_step(lab, bare, place, dba_user):
    spec = _spec(place, bare["bare2"], "prov-u")
    with faults.cut(lab, "bare2"):
        job = _run(start_provision(bare["bare2"], spec, PASSWORD, actor=dba_user))
    assert job.status == Job.Status.FAILED
    assert _statuses(job)[0] == "failed" and set(_statuses(job)[1:]) == {"pending"}
    assert "Already done: nothing." in job.error
    assert "bare2" in job.steps.first().detail
    assert not Cluster.objects.filter(name="prov-u").exists()
    assert not Path(spec.data_directory).exists()


def test_a_missing_package_stops_the_job_and_a_fixed_rerun_resumes(lab, bare, place, dba_user):
    spec = _spec(place, bare["bare1"], "prov-p", package="postgresql-15-no-such-package")
    job = _run(start_provision(bare["bare1"], spec, PASSWORD, actor=dba_user))
    assert job.status == Job.Status.FAILED
    assert _statuses(job)[:2] == ["done", "failed"]
    step = job.steps.get(position=2)
    assert "postgresql-15-no-such-package is not known to the package sources" in step.detail
    assert "Already done: Detect the OS family" in job.error
    assert not Path(spec.data_directory).exists()
    # The DBA fixes the package name; the new job resumes from the package step.
    fixed = Job.objects.create(
        kind=job.kind,
        title=job.title,
        user=dba_user,
        params={**job.params, "spec": asdict(replace(spec, package=""))},
    )
    fixed = _run(fixed)
    assert fixed.status == Job.Status.SUCCEEDED, fixed.error
    assert _statuses(fixed)[1] == "skipped"  # postgresql-15 is installed


def test_the_admin_password_is_a_verifier_on_the_server(lab, bare, place, dba_user):
    job = _run(start_provision(bare["bare1"], _spec(place, bare["bare1"], "prov-v"), PASSWORD,
                               actor=dba_user))  # fmt: skip
    assert job.status == Job.Status.SUCCEEDED, job.error
    with _connect(bare["bare1"].address) as conn:
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'")
        assert stored.fetchone()[0].startswith("SCRAM-SHA-256$4096:")
    step = job.steps.get(name__startswith="Set the postgres password")
    assert step.detail == "set the password of postgres as a SCRAM-SHA-256 verifier"
    # what the console sent is masked in the audit chain, the verifier included
    sent = AuditEntry.objects.filter(command__contains="psql", job_id=job.pk).values_list(
        "command", flat=True
    )
    assert sent and not any("SCRAM-SHA-256$" in command for command in sent)


def test_two_standbys_in_a_quorum_any_1(lab, bare, place, dba_user):
    """ANY 1 over two hot standbys (both on bare2, on two ports): both are quorum standbys and
    a commit waits for either one."""
    job = _run(start_provision(bare["bare1"], _spec(place, bare["bare1"], "prov-q"), PASSWORD,
                               actor=dba_user))  # fmt: skip
    assert job.status == Job.Status.SUCCEEDED, job.error
    cluster = Cluster.objects.get(name="prov-q")
    for app, port, folder in (("prov_q_s1", 5432, "bare2"), ("prov_q_s2", 5433, "bare2b")):
        sspec = StandbySpec(
            node_name=f"prov-q-{app}", application_name=app, port=port,
            data_directory=str(place / folder / "data"),
            socket_directory=str(place / folder / "run"),
            log_file=str(place / folder / "postgresql.log"),
            listen_addresses=[bare["bare2"].address], sync_method="ANY", sync_count=1,
            synchronous_commit="on",
        )  # fmt: skip
        job = _run(start_add_standby(cluster, bare["bare2"], sspec, actor=dba_user))
        assert job.status == Job.Status.SUCCEEDED, job.error
    with _connect(bare["bare1"].address) as conn:
        settings = conn.execute("SELECT current_setting('synchronous_standby_names'),"
                                " current_setting('synchronous_commit')").fetchone()  # fmt: skip
        assert settings == ('ANY 1 ("prov_q_s1", "prov_q_s2")', "on")
        states = conn.execute("SELECT application_name, sync_state FROM pg_stat_replication"
                              " ORDER BY 1").fetchall()  # fmt: skip
        assert states == [("prov_q_s1", "quorum"), ("prov_q_s2", "quorum")]
    assert cluster.nodes.filter(role="standby").count() == 2
