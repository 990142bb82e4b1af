"""After a failover the cluster heals by itself: every remaining standby follows the new primary,
and the new primary is synchronous again as soon as one of them streams (clusters.ha.follow).

On the lab's bare hosts, built by the console's own jobs as test_ha_provisioned builds it
(primary on bare1, synchronous standby on bare2, pgpool-II on bare2), plus a third server: a
second, asynchronous, standby on bare2 (port 5433, its own directories), added with the
console's standby job and made a pgpool-II backend. bare1's link is cut: pgpool-II fails over
to bare2, the reconcile (what Celery beat runs) records it and queues one follow job, for the
third server only; the job, run as a worker runs it, re-points it at bare2, and the test polls
with a deadline until it streams from bare2 and bare2 has a synchronous standby again. A commit on
bare2 is then on the follower at once (remote_apply); running the follow again changes
nothing; bare1 stays fenced.

The module's fixture removes everything it made (servers, pgpool-II, LAB_DIR/ha-follow, the
test database's rows), restores bare1's link, and rebuilds bare1's and bare2's hosts
(rebuild_parts) so the next module finds the lab as `lab up` left it.
"""

import contextlib
import shutil
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command

from clusters.ha import deploy, fence, follow, ops, remote
from clusters.ha import tasks as ha_tasks
from clusters.models import Cluster, FencedNode, HaSetup, Node
from clusters.provision.standby import StandbySpec, start_add_standby
from console import audit, jobs
from console.lab import faults
from console.models import AuditEntry, Job
from tests.clusters.test_ha_provisioned import (
    NAME,
    PASSWORD,
    PG_BIN,
    PRIMARY,
    STANDBY,
    Built,
    _build,
    _kill_our_pgpool,
    _run,
    _stop_servers,
    node,
    outside,
    pooled,
)
from tests.factories import make_user

pytestmark = pytest.mark.django_db

THIRD, THIRD_APP, THIRD_PORT = "hap-bare2b", "hap_bare2b", 5433
FOLLOW_DEADLINE = 240  # seconds: a pg_rewind or a base backup of a small cluster, on a busy box


def connect(address: str, port: int = 5432) -> psycopg.Connection:
    return psycopg.connect(host=address, port=port, user="postgres", password=PASSWORD,
                           dbname="postgres", connect_timeout=3, autocommit=True)  # fmt: skip


def _add_third(built: Built) -> Built:
    """A second standby on bare2 (port 5433), a backend of pgpool-II too (redeployed)."""
    dba = make_user("hap-follow-dba", persona="dba")
    folder = built.base / "bare2b"
    spec = StandbySpec(node_name=THIRD, application_name=THIRD_APP, port=THIRD_PORT,
                       data_directory=str(folder / "data"), socket_directory=str(folder / "run"),
                       log_file=str(folder / "postgresql.log"), listen_addresses=[built.bare2],
                       synchronous=False)  # fmt: skip
    job = _run(start_add_standby(built.cluster, node("bare2"), spec, actor=dba))
    assert job.status == Job.Status.SUCCEEDED, job.error
    setup = built.setup
    setup.refresh_from_db()
    setup = deploy.save_setup(
        built.cluster, pgpool=setup.pgpool, directory=setup.directory,
        pcp_credential=setup.pcp_credential, replication_credential=setup.replication_credential,
        client_networks=setup.client_networks, weights={PRIMARY: 1, STANDBY: 1, THIRD: 1},
        actor=dba, source=AuditEntry.Source.CLI,
    )  # fmt: skip
    found = deploy.deploy_pgpool(setup, actor=dba)
    setup.refresh_from_db()
    return replace(built, setup=setup, deployed=found)


@pytest.fixture(scope="module")
def built(lab, lab_env, django_db_setup, django_db_blocker, rebuild_parts):
    base = Path(lab_env["LAB_DIR"]) / "ha-follow"
    _stop_servers(base)
    shutil.rmtree(base, ignore_errors=True)
    rebuild_parts("ssh-bare1", "ssh-bare2")  # after the module, whatever happens here
    with django_db_blocker.unblock():
        try:
            yield _add_third(_build(lab, base))
        finally:
            try:
                faults.restore_link(lab, "bare1")
            finally:
                setup = HaSetup.objects.filter(cluster__name=NAME).first()
                if setup is not None:
                    with contextlib.suppress(Exception):
                        deploy.stop_pgpool(setup, remote.call())
                _kill_our_pgpool(base / "pgpool")
                _stop_servers(base)
                shutil.rmtree(base, ignore_errors=True)
                call_command("flush", verbosity=0, interactive=False)


def replication(address: str) -> dict[str, tuple[str, str]]:
    """pg_stat_replication of the server at `address`: application_name -> (state, sync_state)."""
    with connect(address) as conn:
        rows = conn.execute("SELECT application_name, state, sync_state FROM pg_stat_replication")
        return {name: (state, sync) for name, state, sync in rows.fetchall()}


def follow_jobs(n: Node):
    return Job.objects.filter(kind=follow.FOLLOW_KIND, params__node=n.pk)


def test_the_third_server_streams_from_bare1_before_the_failover(built):
    assert replication(built.bare1).get(THIRD_APP, ("?",))[0] == "streaming"
    assert [b["name"] for b in built.setup.backends] == [PRIMARY, STANDBY, THIRD]
    pool = outside(remote.pool_nodes, built.setup)
    assert pool[2]["status"] in ("up", "waiting") and pool[0]["role"] == "primary"


def test_after_a_failover_the_other_standby_follows_and_sync_is_restored(built, lab):
    b = built
    with pooled(b) as conn:
        conn.execute("INSERT INTO hap_rows (id) SELECT coalesce(max(id), 0) + 1 FROM hap_rows")
    with faults.cut(lab, "bare1"):
        # pgpool-II's health check fails over; its failover_command promotes bare2 (node 1).
        outside(remote.wait_for, lambda: remote.pgpool_primary(b.setup) == 1, 60,
                "pgpool-II to fail over")  # fmt: skip
        found = outside(fence.reconcile, b.setup)  # what Celery beat runs every few seconds
        assert f"pgpool-II failed over from {PRIMARY} to {STANDBY}" in found["failover"]
        assert "follow jobs queued" in found["failover"]
        third = node(THIRD)
        queued = list(follow_jobs(third))
        assert len(queued) == 1 and queued[0].status == Job.Status.PENDING
        assert queued[0].target_id == str(b.cluster.pk)  # shown with the cluster's jobs
        # Neither the new primary nor the fenced old one gets a job.
        assert not follow_jobs(node(PRIMARY)).exists() and not follow_jobs(node(STANDBY)).exists()
        # Idempotent: the reconcile again, or the failover's enqueue again, queues nothing more.
        outside(fence.reconcile, b.setup)
        assert outside(follow.enqueue_follows, b.setup, node(STANDBY)) == []
        assert follow_jobs(third).count() == 1
        requested = AuditEntry.objects.filter(action=audit.HA_REQUESTED, node=THIRD)
        assert requested.count() == 1 and f"job {queued[0].pk}" in requested.get().output

        # The job runs as a Celery worker runs it (bare1 still cut off); the test watches the
        # servers, as a DBA would, until the cluster has healed.
        worker = threading.Thread(
            target=outside, args=(jobs.run_job, queued[0].pk, ha_tasks.ha_follow.body)
        )
        worker.start()
        deadline_at = time.monotonic() + FOLLOW_DEADLINE
        seen: dict = {}
        while True:
            with contextlib.suppress(psycopg.Error):
                seen = replication(b.bare2)
                if seen.get(THIRD_APP, ("", ""))[0] == "streaming" and any(
                    sync == "sync" for _, sync in seen.values()
                ):
                    break
            assert time.monotonic() < deadline_at, f"not healed in time: {seen}"
            time.sleep(0.5)  # polling interval, the loop's deadline is above
        healed_in = FOLLOW_DEADLINE - (deadline_at - time.monotonic())
        worker.join(FOLLOW_DEADLINE)
        job = Job.objects.get(pk=queued[0].pk)
        assert job.status == Job.Status.SUCCEEDED, job.error
        print(f"follow: healed {healed_in:.1f} s after the job started ({job.result['method']}),"
              f" job {(job.finished - job.started).total_seconds():.1f} s")  # fmt: skip
        assert job.result["primary"] == STANDBY and job.result["changed"]
        assert seen[THIRD_APP] == ("streaming", "sync")

        # RPO 0 again: a commit on the new primary returns once the follower applied it.
        with connect(b.bare2) as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("remote_apply",)
            row = conn.execute("INSERT INTO hap_rows (id) SELECT coalesce(max(id), 0) + 1 FROM"
                               " hap_rows RETURNING id").fetchone()[0]  # fmt: skip
        with connect(b.bare2, THIRD_PORT) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            assert conn.execute("SELECT id FROM hap_rows WHERE id = %s", [row]).fetchall() == [
                (row,)
            ]
            # its own host settings kept (pg_rewind copies the source's files)
            assert conn.execute("SHOW port").fetchone() == (str(THIRD_PORT),)
        pool = outside(remote.pool_nodes, b.setup)
        assert pool[2]["status"] in ("up", "waiting") and pool[1]["role"] == "primary"
        entry = AuditEntry.objects.filter(action=audit.HA_FOLLOWED).latest("id")
        assert entry.target == f"node:{THIRD}" and f"follows {STANDBY}" in entry.output

        # Safe to retry: the follow again leaves the streaming standby alone and says so.
        b.setup.refresh_from_db()
        again = outside(follow.follow_primary, b.setup, third)
        assert again["changed"] == [] and again["method"] == "none"
        assert "nothing changed" in AuditEntry.objects.filter(
            action=audit.HA_FOLLOWED).latest("id").output  # fmt: skip
        assert replication(b.bare2)[THIRD_APP] == ("streaming", "sync")

    # The link is back: bare1 stays fenced (stopped, standby.signal), is never followed.
    found = outside(fence.reconcile, b.setup)
    assert found["failover"] is None
    assert found["fences"] == [{"node": PRIMARY, "enforced": True}]
    assert FencedNode.objects.filter(node=node(PRIMARY), cleared__isnull=True).exists()
    assert faults.connect_result(b.bare1, 5432) == "refused"
    assert not follow_jobs(node(PRIMARY)).exists()
    assert outside(remote.pool_nodes, b.setup)[0]["status"] == "down"
    assert Cluster.objects.get(name=NAME).nodes.get(name=STANDBY).role == Node.Role.PRIMARY


def test_a_dbas_failover_queues_the_follow_too(built):
    """The other road: bare1 rebuilt as bare2's synchronous standby, then bare2's server dies
    (its host still up) and a DBA's failover promotes a standby (bare1, the synchronous one, or
    bare2b when pgpool-II's own failover_command was quicker); the other one follows it."""
    b = built
    if not FencedNode.objects.filter(node=node(PRIMARY), cleared__isnull=True).exists():
        pytest.skip("needs the failover test before it (bare1 fenced, bare2 primary)")
    b.setup.refresh_from_db()
    outside(ops.rebuild, b.setup, node(PRIMARY))
    assert replication(b.bare2)[PRIMARY] == ("streaming", "sync")
    b.setup.refresh_from_db()
    data = b.setup.backend_of(node(STANDBY))["data_directory"]
    stop = ["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "stop", "-D", data, "-m",
            "immediate", "-w"]  # fmt: skip
    subprocess.run(stop, check=True, capture_output=True, timeout=60)  # the server dies
    result = outside(ops.failover, b.setup)
    assert result["fenced"] == STANDBY and result["primary"] in (PRIMARY, THIRD)
    servers = {PRIMARY: (b.bare1, 5432, PRIMARY), THIRD: (b.bare2, THIRD_PORT, THIRD_APP)}
    new = servers.pop(result["primary"])
    ((follower, (address, port, app)),) = servers.items()
    queued = list(follow_jobs(node(follower)).filter(status=Job.Status.PENDING))
    assert len(queued) == 1 and not follow_jobs(node(STANDBY)).exists()
    assert Job.objects.filter(kind=follow.FOLLOW_KIND, status=Job.Status.PENDING).count() == 1
    assert outside(follow.enqueue_follows, b.setup, node(result["primary"])) == []  # pending
    outside(jobs.run_job, queued[0].pk, ha_tasks.ha_follow.body)
    job = Job.objects.get(pk=queued[0].pk)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["primary"] == result["primary"]
    with connect(new[0], new[1]) as conn:
        rows = conn.execute("SELECT application_name, state, sync_state FROM pg_stat_replication")
        assert (app, "streaming", "sync") in rows.fetchall()
        row = conn.execute("INSERT INTO hap_rows (id) SELECT coalesce(max(id), 0) + 1 FROM"
                           " hap_rows RETURNING id").fetchone()[0]  # fmt: skip
    with connect(address, port) as conn:  # remote_apply: there at once
        assert conn.execute("SELECT count(*) FROM hap_rows WHERE id = %s", [row]).fetchone() == (1,)
    assert FencedNode.objects.filter(node=node(STANDBY), cleared__isnull=True).exists()
