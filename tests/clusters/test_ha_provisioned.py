"""Issue 8 end to end on the lab's bare hosts: a PostgreSQL cluster provisioned from nothing by
the console's jobs (primary on bare1, synchronous hot standby on bare2, remote_apply), pgpool-II
deployed in front of it by the console (on bare2, port 9999), then what the architecture is for:
a commit through pgpool-II is on the standby at once, reads are served by the standby and writes
by the primary, a switchover and back loses no row, and a failover after bare1's link is cut keeps
every acknowledged commit and fences bare1.

One build for the module (about a minute of provisioning): the tests run in order on it. The
module's fixture commits its own database rows for the whole module, and at the end stops
pgpool-II and every server it started, removes LAB_DIR/ha-prov and empties the test database as
a transactional test would. bare1's link is restored in any case.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from clusters.actions import NodeSpec, register_cluster
from clusters.ha import deploy, fence, ops, remote
from clusters.models import Cluster, FencedNode, HaSetup, Node
from clusters.provision import tasks
from clusters.provision.pg import PgSpec, start_provision
from clusters.provision.standby import StandbySpec, start_add_standby
from console import audit, jobs
from console.lab import faults
from console.lab.demo import register_demo
from console.lab.parts.pgha import deadline
from console.models import AuditEntry, Job
from console.secrets import store_credential
from tests.factories import make_user

# Each test runs in a transaction (the mark) over the module's build, which the fixture committed
# before the first test and removes after the last one. The executor refuses remote calls inside
# a transaction, so the console's operations run through `outside`, as a Celery worker runs them.
pytestmark = pytest.mark.django_db

NAME = "hap"
# Node names with "-": a server made a standby by a switchover or a rebuild gets its node's name
# as application_name ("hap-bare1"), which the HA code must quote in synchronous_standby_names.
# bare2's provisioned application_name is also its replication slot's name: no "-" there.
PRIMARY, STANDBY = "hap-bare1", "hap-bare2"
STANDBY_APP = "hap_bare2"
PASSWORD = "Hap-admin-pw-3c9d1"
PCP_PASSWORD = "hap-pcp-pw-77aa"
PGPOOL_PORT = 9999
PG_BIN = "/usr/lib/postgresql/15/bin"


@dataclass
class Built:
    cluster: Cluster
    setup: HaSetup
    bare1: str  # addresses
    bare2: str
    base: Path
    deployed: dict


def _run(job: Job) -> Job:
    body = {"clusters.provision_pg": tasks.provision_pg,
            "clusters.add_standby": tasks.add_pg_standby}[job.kind].body  # fmt: skip
    jobs.run_job(job.pk, body)
    job.refresh_from_db()
    return job


def direct(address: str, **kw) -> psycopg.Connection:
    return psycopg.connect(host=address, port=5432, user="postgres", password=PASSWORD,
                           dbname="postgres", connect_timeout=3, autocommit=True, **kw)  # fmt: skip


def pooled(built: Built, **kw) -> psycopg.Connection:
    kw.setdefault("connect_timeout", 5)
    return psycopg.connect(host=built.bare2, port=PGPOOL_PORT, user="postgres",
                           password=PASSWORD, dbname="postgres", autocommit=True, **kw)  # fmt: skip


def outside(fn, *args, **kw):
    """fn(*args, **kw) in a thread of its own: its own database connection, in autocommit (the
    test's transaction sees what it commits); its exception is raised here."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn(*args, **kw)
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            box["error"] = e
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def node(name: str) -> Node:
    return Node.objects.get(name=name)


def _stop_servers(base: Path) -> None:
    for version in base.glob("**/PG_VERSION"):
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "stop", "-D",
                        str(version.parent), "-m", "immediate", "-w", "-s"],
                       capture_output=True, timeout=60, check=False)  # fmt: skip


def _kill_our_pgpool(directory: Path) -> None:
    """If this module's pgpool-II still runs (its stop failed), SIGTERM it: only the process
    its pid file names, and only if that process runs this deployment's pgpool.conf."""
    pid_file = directory / "pgpool.pid"
    digits = "".join(filter(str.isdigit, pid_file.read_text())) if pid_file.exists() else ""
    if not digits:
        return
    with contextlib.suppress(OSError):
        command = Path(f"/proc/{digits}/cmdline").read_bytes().split(b"\0")
        if str(directory / "pgpool.conf").encode() in command:
            os.kill(int(digits), signal.SIGTERM)


def _build(lab, base: Path) -> Built:
    register_demo(os.environ)
    dba = make_user("hap-dba", persona="dba")
    bare1, bare2 = node("bare1"), node("bare2")

    def paths(folder: str) -> dict:
        return {"data_directory": str(base / folder / "data"),
                "socket_directory": str(base / folder / "run"),
                "log_file": str(base / folder / "postgresql.log")}  # fmt: skip

    spec = PgSpec(cluster=NAME, environment="lab", node_name=PRIMARY, **paths("bare1"),
                  archive_directory=str(base / "archive"), listen_addresses=[bare1.address],
                  networks=[os.environ["LAB_NET"]], admin_credential=f"{NAME}-admin")  # fmt: skip
    # The data directories' parents are left to provisioning (root's): a server the HA code
    # starts again logs to its node's log file, never beside its data directory.
    job = _run(start_provision(bare1, spec, PASSWORD, actor=dba))
    assert job.status == Job.Status.SUCCEEDED, job.error
    cluster = Cluster.objects.get(name=NAME)
    sspec = StandbySpec(node_name=STANDBY, application_name=STANDBY_APP, **paths("bare2"),
                        listen_addresses=[bare2.address], sync_method="FIRST", sync_count=1,
                        synchronous_commit="remote_apply")  # fmt: skip
    job = _run(start_add_standby(cluster, bare2, sspec, actor=dba))
    assert job.status == Job.Status.SUCCEEDED, job.error

    # pgpool-II on bare2 (it survives bare1's cut), registered as the cluster's balancer.
    cli = AuditEntry.Source.CLI
    register_cluster(NAME, cluster.kind, environment=cluster.environment.name, actor=None,
                     source=cli, nodes=[NodeSpec(
                         name=f"{NAME}_pgpool", service=Node.Service.PGPOOL,
                         role=Node.Role.BALANCER, address=bare2.address,
                         known_hosts=bare2.known_hosts, ssh_port=bare2.ssh_port,
                         ssh_user=bare2.ssh_user, ssh_credential=bare2.ssh_credential.name,
                         db_port=PGPOOL_PORT, db_credential=f"{NAME}-admin")])  # fmt: skip
    pcp = store_credential(f"{NAME}-pcp", "pcp-password", PCP_PASSWORD, actor=None,
                           username="pcpadmin", source=cli)  # fmt: skip
    setup = deploy.save_setup(
        cluster, pgpool=node(f"{NAME}_pgpool"), directory=str(base / "pgpool"),
        pcp_credential=pcp, replication_credential=cluster.provision.replication_credential,
        client_networks=[os.environ["LAB_NET"]], weights={PRIMARY: 1, STANDBY: 1}, actor=dba,
        source=cli,
    )  # fmt: skip
    found = deploy.deploy_pgpool(setup, actor=dba)
    with direct(bare1.address) as conn:
        conn.execute("CREATE TABLE hap_rows (id int PRIMARY KEY)")
    setup.refresh_from_db()
    return Built(cluster, setup, bare1.address, bare2.address, base, found)


@pytest.fixture(scope="module")
def built(lab, lab_env, django_db_setup, django_db_blocker):
    """The cluster and its pgpool-II, built once; everything removed after the module."""
    base = Path(lab_env["LAB_DIR"]) / "ha-prov"
    _stop_servers(base)
    shutil.rmtree(base, ignore_errors=True)
    with django_db_blocker.unblock():
        try:
            yield _build(lab, base)
        finally:
            try:
                faults.restore_link(lab, "bare1")
            finally:
                setup = HaSetup.objects.filter(cluster__name=NAME).first()
                if setup is not None:
                    with contextlib.suppress(Exception):  # the pid file below still works
                        deploy.stop_pgpool(setup, remote.call())
                _kill_our_pgpool(base / "pgpool")
                _stop_servers(base)
                shutil.rmtree(base, ignore_errors=True)
                call_command("flush", verbosity=0, interactive=False)


@pytest.fixture
def db_rows(built):
    """The module's build, its HA setup as stored now."""
    built.setup.refresh_from_db()
    return built


def insert(built: Built, ids: range) -> None:
    with pooled(built) as conn:
        for i in ids:
            conn.execute("INSERT INTO hap_rows (id) VALUES (%s)", [i])


def next_id(address: str) -> int:
    with direct(address) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) + 1 FROM hap_rows").fetchone()[0]


def ids_on(address: str) -> set[int]:
    with direct(address) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM hap_rows").fetchall()}


def test_built_from_nothing_with_pgpool_in_front(db_rows):
    b = db_rows
    assert b.deployed["writes_to"] == b.bare1 and b.bare2 in b.deployed["reads_served_by"]
    nodes = {n["hostname"]: n for n in b.deployed["nodes"]}
    assert (nodes[b.bare1]["role"], nodes[b.bare2]["role"]) == ("primary", "standby")
    assert nodes[b.bare2]["replication_sync_state"] == "sync"
    with direct(b.bare1) as conn:
        assert conn.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name"
                            " = %s", [STANDBY_APP]).fetchone() == ("sync",)  # fmt: skip
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("remote_apply",)
    passwd = (b.base / "pgpool" / "pool_passwd").read_text()
    assert "postgres:AES" in passwd and PASSWORD not in passwd
    for text in AuditEntry.objects.values_list("command", "output", "error"):
        assert PASSWORD not in " ".join(text) and PCP_PASSWORD not in " ".join(text)


def test_a_commit_through_pgpool_is_on_the_standby_at_once(db_rows):
    b = db_rows
    row = next_id(b.bare1)
    with pooled(b) as conn:
        conn.execute("INSERT INTO hap_rows VALUES (%s)", [row])
    # No polling: remote_apply returned the commit only once bare2 had applied it.
    with direct(b.bare2) as conn:
        assert conn.execute("SELECT id FROM hap_rows WHERE id = %s", [row]).fetchall() == [(row,)]
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)


def _select_cnt(conn, address: str) -> int:
    cur = conn.execute("SHOW POOL_NODES")
    columns = [c.name for c in cur.description]
    for row in cur.fetchall():
        r = dict(zip(columns, row, strict=True))
        if r["hostname"] == address:
            return int(r["select_cnt"])
    raise AssertionError(f"{address} not in SHOW POOL_NODES")


def test_reads_are_served_by_the_standby_and_writes_by_the_primary(db_rows):
    b = db_rows
    with pooled(b) as admin:
        before = _select_cnt(admin, b.bare2)
    served, sessions = [], 0
    deadline_at = time.monotonic() + 30
    while b.bare2 not in served:  # pgpool-II picks a load-balance node per session (1:1)
        assert time.monotonic() < deadline_at, f"no read reached bare2 in {sessions} sessions"
        with pooled(b) as conn:
            # (only stable functions: pgpool-II sends a statement calling a volatile one, such
            # as pg_is_in_recovery(), to the primary)
            server = conn.execute("SELECT inet_server_addr()::text").fetchone()[0]
        served.append(server.split("/")[0])
        sessions += 1
    with pooled(b) as admin:
        assert _select_cnt(admin, b.bare2) > before
    # Writes go to the primary, whatever node the session reads from.
    for _ in range(5):
        with pooled(b) as conn:
            server = conn.execute(
                "WITH w AS (INSERT INTO hap_rows SELECT coalesce(max(id), 0) + 1 FROM hap_rows"
                " RETURNING id) SELECT inet_server_addr()::text, (SELECT id FROM w)"
            ).fetchone()[0]
            assert server.split("/")[0] == b.bare1


def test_switchover_and_back_loses_no_row(db_rows):
    b = db_rows
    start = next_id(b.bare1)
    insert(b, range(start, start + 20))
    first = outside(ops.switchover, b.setup, node(STANDBY))
    assert first["primary"] == STANDBY
    assert (node(STANDBY).role, node(PRIMARY).role) == ("primary", "standby")
    with direct(b.bare2) as conn:  # bare1's node name, quoted: it has a "-"
        assert conn.execute("SHOW synchronous_standby_names").fetchone() == (
            f'FIRST 1 ("{PRIMARY}")',
        )
    # bare1 was started again by the HA code: its log went to its node's log file, and its
    # folder (root's, as provisioning left it) got no postgres.log.
    assert (b.base / "bare1").owner() == "root"
    assert not (b.base / "bare1" / "postgres.log").exists()
    assert (
        "database system is ready to accept read-only connections"
        in Path(node(PRIMARY).log_path).read_text()
    )
    insert(b, range(start + 20, start + 40))  # through pgpool-II, now to bare2
    with direct(b.bare2) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    with direct(b.bare1) as conn:  # remote_apply towards the new standby: there at once
        assert conn.execute("SELECT count(*) FROM hap_rows WHERE id >= %s",
                            [start + 20]).fetchone() == (20,)  # fmt: skip
    b.setup.refresh_from_db()
    second = outside(ops.switchover, b.setup, node(PRIMARY))
    assert second["primary"] == PRIMARY
    insert(b, range(start + 40, start + 60))
    written = set(range(start, start + 60))
    assert not written - ids_on(b.bare1), "a row written through pgpool-II is missing on bare1"
    assert not written - ids_on(b.bare2)
    with direct(b.bare1) as conn:  # bare2 is bare1's synchronous standby again
        assert conn.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name"
                            " = %s", [STANDBY_APP]).fetchone() == ("sync",)  # fmt: skip

    def pgpool_sees_it_back() -> bool:  # its sr_check reads the sync state every second
        pool = remote.pool_nodes(b.setup)
        return (pool[0]["role"], pool[0]["status"], pool[1]["status"],
                pool[1]["replication_sync_state"]) == ("primary", "up", "up", "sync")  # fmt: skip

    outside(remote.wait_for, pgpool_sees_it_back, 10, "pgpool-II to see bare2 sync again")
    entries = AuditEntry.objects.filter(action=audit.HA_SWITCHOVER).order_by("id")
    assert [e.node for e in entries] == [STANDBY, PRIMARY]


class Writer(threading.Thread):
    """Inserts through pgpool-II from `first` on, each commit under a 2 s client deadline (a
    commit waiting for a synchronous standby ignores statement_timeout); `acked` holds the ids
    whose commit returned before the deadline."""

    def __init__(self, built: Built, first: int):
        super().__init__(daemon=True)
        self.built, self.next_id = built, first
        self.acked: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = pooled(self.built, connect_timeout=2)
                fired = threading.Event()
                timer = threading.Timer(2.0, self._cancel, args=(conn, fired))
                timer.start()
                try:
                    conn.execute("INSERT INTO hap_rows (id) VALUES (%s)", [self.next_id])
                finally:
                    timer.cancel()
                if not fired.is_set():
                    self.acked.append(self.next_id)
            except (psycopg.Error, TimeoutError):
                if conn is not None:
                    conn.close()
                conn = None
                self.stop.wait(0.05)
            self.next_id += 1
            self.stop.wait(0.01)  # pace: about 100 commits a second at most
        if conn is not None:
            conn.close()

    @staticmethod
    def _cancel(conn: psycopg.Connection, fired: threading.Event) -> None:
        fired.set()
        with contextlib.suppress(psycopg.Error):  # the cancel itself times out during the cut
            conn.cancel_safe(timeout=1)

    def wait_rows(self, more: int, timeout: float = 30) -> None:
        start = len(self.acked)
        remote.wait_for(lambda: len(self.acked) >= start + more, timeout, "the writer to commit")

    def finish(self) -> list[int]:
        self.stop.set()
        self.join(10)
        return self.acked


def test_failover_after_bare1_is_cut_off_keeps_every_commit_and_fences_it(db_rows, lab):
    b = db_rows
    writer = Writer(b, next_id(b.bare1))
    writer.start()
    try:
        writer.wait_rows(20)
        with faults.cut(lab, "bare1"):
            cut_at = time.monotonic()
            # pgpool-II's health check fails over; its failover_command promotes bare2.
            try:
                outside(remote.wait_for, lambda: remote.pgpool_primary(b.setup) == 1, 45,
                        "pgpool-II to fail over")  # fmt: skip
            except remote.StepFailed as e:
                log = (b.base / "pgpool" / "pgpool.log").read_text()[-3000:]
                raise AssertionError(f"{e}; the end of pgpool.log:\n{log}") from None
            writer.wait_rows(20)
            recovered_in = time.monotonic() - cut_at
            found = outside(fence.reconcile, b.setup)  # what Celery beat runs every few seconds
            assert f"pgpool-II failed over from {PRIMARY} to {STANDBY}" in found["failover"]
            assert found["fences"] == [{"node": PRIMARY, "enforced": False}]  # not reachable
            assert (node(PRIMARY).role, node(STANDBY).role) == ("standby", "primary")
        # The link is back; bare1 still runs as a primary but cannot acknowledge a commit: its
        # synchronous standby is a primary now and no longer streams from it.
        with pytest.raises((TimeoutError, psycopg.Error)):
            with direct(b.bare1) as conn, deadline(conn, 3):
                conn.execute("INSERT INTO hap_rows (id) VALUES (-1)")
        found = outside(fence.reconcile, b.setup)
        assert found["fences"] == [{"node": PRIMARY, "enforced": True}]
        assert faults.connect_result(b.bare1, 5432) == "refused"  # stopped
        data = b.setup.backend_of(node(PRIMARY))["data_directory"]
        assert (Path(data) / "standby.signal").exists()  # any restart is read-only
        writer.wait_rows(10)
    finally:
        acked = writer.finish()
    assert acked and not set(acked) - ids_on(b.bare2), "an acknowledged commit is missing"
    assert -1 not in ids_on(b.bare2)
    assert recovered_in < 30
    assert FencedNode.objects.get(node=node(PRIMARY)).state == FencedNode.State.ENFORCED
    assert outside(remote.pool_nodes, b.setup)[0]["status"] == "down"  # never re-attached
    with pytest.raises(remote.StepFailed, match="fenced"):
        outside(ops.pcp_operation, b.setup, "attach", node(PRIMARY))


def test_the_fenced_bare1_is_rebuilt_as_a_synchronous_standby(db_rows):
    b = db_rows
    if not FencedNode.objects.filter(node=node(PRIMARY), cleared__isnull=True).exists():
        pytest.skip("needs the failover test before it (bare1 fenced)")
    result = outside(ops.rebuild, b.setup, node(PRIMARY))
    assert result["primary"] == STANDBY
    with direct(b.bare2) as conn:
        assert conn.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name"
                            " = %s", [PRIMARY]).fetchone() == ("sync",)  # fmt: skip
    with direct(b.bare1) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        # its own host settings, not bare2's (pg_rewind copied bare2's dbconsole.conf)
        assert conn.execute("SHOW listen_addresses").fetchone() == (b.bare1,)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == (
            str(b.base / "bare1" / "run"),
        )
    assert ids_on(b.bare1) == ids_on(b.bare2)


def test_a_rebuild_that_falls_back_to_a_base_backup_keeps_bare1s_own_settings(db_rows):
    """pg_rewind cannot work without bare1's pg_control: the fresh base backup goes into the
    data directory (its parent is root's) and bare1's own host files are put back."""
    b = db_rows
    fences = FencedNode.objects.filter(node=node(PRIMARY))
    if not fences.exists() or fences.filter(cleared__isnull=True).exists():
        pytest.skip("needs bare1 rebuilt as a standby before it")
    data = Path(b.setup.backend_of(node(PRIMARY))["data_directory"])
    subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "stop", "-D",
                    str(data), "-m", "fast", "-w", "-s"], check=True, timeout=60)  # fmt: skip
    (data / "global" / "pg_control").unlink()
    result = outside(ops.rebuild, b.setup, node(PRIMARY))
    assert result["method"] == "pg_basebackup"
    assert (b.base / "bare1").owner() == "root"
    with direct(b.bare1) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        assert conn.execute("SHOW listen_addresses").fetchone() == (b.bare1,)
    with direct(b.bare2) as conn:
        assert conn.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name"
                            " = %s", [PRIMARY]).fetchone() == ("sync",)  # fmt: skip
    assert ids_on(b.bare1) == ids_on(b.bare2)
