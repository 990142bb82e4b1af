# ruff: noqa: F811  (ha_setup is test_ha_pgpool's fixture, imported)
"""Switchover, failover and rebuild on the lab's db1/db2 behind the console's own pgpool-II on
lb1 (test_ha_pgpool's fixture: the lab's pgpool-II stopped, ours on its port; every part
rebuilt afterwards). A writer commits through pgpool-II the whole time and records every commit
it was told succeeded; afterwards each of them must be on the new primary."""

import os
import threading
import time

import psycopg
import pytest

from clusters.ha import deploy, fence, ops, prechecks, remote
from clusters.models import FencedNode, Node
from console import audit
from console.lab import faults
from console.lab.parts.pgha import deadline
from console.models import AuditEntry
from tests.clusters.test_ha_pgpool import (  # noqa: F401  (fixtures)
    APP_PASSWORD,
    APP_USER,
    ensure_app_role,
    ha_setup,
    superuser,
    through_pgpool,
)

pytestmark = pytest.mark.django_db(transaction=True)


class CommitDeadline:
    """Cancel what `conn` runs after `seconds`; `fired` says the client gave up on it (a
    cancelled wait for a synchronous standby returns normally: not an acknowledgement)."""

    def __init__(self, conn, seconds: float):
        self.conn, self.fired = conn, threading.Event()
        self.timer = threading.Timer(seconds, self.cancel)
        self.timer.start()

    def cancel(self) -> None:
        self.fired.set()
        try:
            self.conn.cancel_safe(timeout=1)
        except psycopg.Error:
            pass  # the cancel itself times out while the link is cut


class Writer(threading.Thread):
    """Inserts 1, 2, 3… through pgpool-II, each commit under a 2 s client deadline (a commit
    waiting for a synchronous standby ignores statement_timeout); `acked` holds the ids whose
    commit returned."""

    def __init__(self):
        super().__init__(daemon=True)
        self.acked: list[int] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        next_id, conn = 1, None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = through_pgpool(autocommit=True, connect_timeout=2)
                limit = CommitDeadline(conn, 2.0)
                try:
                    conn.execute("INSERT INTO ha_drill (id) VALUES (%s)", [next_id])
                finally:
                    limit.timer.cancel()
                if not limit.fired.is_set():
                    self.acked.append(next_id)
            except (psycopg.Error, TimeoutError) as e:
                self.errors.append(str(e)[:200])
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
            next_id += 1
            time.sleep(0.01)
        if conn is not None:
            conn.close()

    def finish(self) -> list[int]:
        self.stop.set()
        self.join(10)
        return self.acked


def rows_on(host: str) -> set[int]:
    with superuser(host) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM ha_drill").fetchall()}


def fresh_table() -> None:
    with superuser(os.environ["LAB_PG_HOST"]) as conn:
        conn.execute("DROP TABLE IF EXISTS ha_drill")
        conn.execute("CREATE TABLE ha_drill (id int PRIMARY KEY)")
        conn.execute(f"GRANT ALL ON ha_drill TO {APP_USER}")


def wait_rows(writer: Writer, more: int, timeout: float = 20) -> None:
    start = len(writer.acked)
    remote.wait_for(lambda: len(writer.acked) >= start + more, timeout, "the writer to commit")


def node(name: str) -> Node:
    return Node.objects.get(name=name)


def test_switchover_and_back_loses_no_row(ha_setup):
    fresh_table()
    deploy.deploy_pgpool(ha_setup)
    db1, db2 = os.environ["LAB_PG_HOST"], os.environ["LAB_PG_STANDBY_HOST"]
    writer = Writer()
    writer.start()
    try:
        wait_rows(writer, 20)
        first = ops.switchover(ha_setup, node("db2"))
        assert first["primary"] == "db2"
        assert (node("db2").role, node("db1").role) == ("primary", "standby")
        wait_rows(writer, 20)
        ha_setup.refresh_from_db()
        second = ops.switchover(ha_setup, node("db1"))
        assert second["primary"] == "db1"
        wait_rows(writer, 20)
    finally:
        acked = writer.finish()
    assert acked and not set(acked) - rows_on(db1), "an acknowledged commit is missing on db1"
    assert not set(acked) - rows_on(db2)
    with superuser(db1) as conn:  # synchronous again, as the primary sees it
        states = conn.execute("SELECT sync_state FROM pg_stat_replication").fetchall()
    assert states == [("sync",)]
    # pgpool-II reads the sync state at its next sr_check (every sr_check_period): poll.
    pool = remote.wait_for(
        lambda: (p := remote.pool_nodes(ha_setup))[1]["replication_sync_state"] == "sync" and p,
        15, "pgpool-II to see db2 synchronous",
    )  # fmt: skip
    assert (pool[0]["role"], pool[0]["status"]) == ("primary", "up")
    assert pool[1]["status"] == "up"
    with superuser(db2) as conn:  # its slot from its time as the primary is gone
        assert conn.execute("SELECT slot_name FROM pg_replication_slots").fetchall() == []
    entries = AuditEntry.objects.filter(action=audit.HA_SWITCHOVER).order_by("id")
    assert [e.node for e in entries] == ["db2", "db1"]


def test_switchover_refused_unless_standby_synchronous_changes_nothing(ha_setup):
    deploy.deploy_pgpool(ha_setup)
    db1 = node("db1")
    remote.set_synchronous(db1, [], "on")
    try:
        check = prechecks.switchover_precheck(ha_setup, node("db2"))
        assert not check.ok and "synchronous with zero replay lag" in check.failures()
        with pytest.raises(remote.StepFailed, match="refused, nothing changed"):
            ops.switchover(ha_setup, node("db2"))
        assert remote.recovery(db1)["in_recovery"] is False
        assert remote.recovery(node("db2"))["in_recovery"] is True
        assert remote.pool_nodes(ha_setup)[0]["role"] == "primary"
        assert not AuditEntry.objects.filter(action=audit.HA_SWITCHOVER).exists()
    finally:
        remote.set_synchronous(db1, ["db2"], "remote_apply")


def test_failover_after_primary_cut_off_keeps_every_commit_and_fences_db1(ha_setup, lab):
    fresh_table()
    deploy.deploy_pgpool(ha_setup)
    db1, db2 = os.environ["LAB_PG_HOST"], os.environ["LAB_PG_STANDBY_HOST"]
    writer = Writer()
    writer.start()
    try:
        wait_rows(writer, 20)
        with faults.cut(lab, "db1"):
            cut_at = time.monotonic()
            # pgpool-II's health check fails over and its failover_command promotes db2.
            remote.wait_for(lambda: remote.pgpool_primary(ha_setup) == 1, 30, "pgpool failover")
            wait_rows(writer, 20)
            recovered_in = time.monotonic() - cut_at
            found = fence.reconcile(ha_setup)  # what Celery beat runs every few seconds
            assert "pgpool-II failed over from db1 to db2" in found["failover"]
            assert found["fences"] == [{"node": "db1", "enforced": False}]  # not reachable yet
            assert (node("db1").role, node("db2").role) == ("standby", "primary")
            assert node("db2").status.role_seen == "primary"  # the page's topology, at once
        # The link is back and db1 still runs as a primary: it cannot acknowledge a commit
        # (its synchronous standby is now a primary and no longer streams from it).
        with pytest.raises((TimeoutError, psycopg.Error)):
            with superuser(db1) as conn, deadline(conn, 3):
                conn.execute("INSERT INTO ha_drill (id) VALUES (-1)")
        found = fence.reconcile(ha_setup)
        assert found["fences"] == [{"node": "db1", "enforced": True}]
        assert faults.connect_result(db1, 5432) == "refused"  # stopped
        data = ha_setup.backend_of(node("db1"))["data_directory"]
        assert os.path.exists(f"{data}/standby.signal")  # any restart is read-only
        wait_rows(writer, 10)
    finally:
        acked = writer.finish()
    assert not set(acked) - rows_on(db2), "an acknowledged commit is missing on the new primary"
    assert recovered_in < 30
    assert remote.pool_nodes(ha_setup)[0]["status"] == "down"  # never re-attached
    with pytest.raises(remote.StepFailed, match="fenced"):
        ops.pcp_operation(ha_setup, "attach", node("db1"))
    # Rebuild: db1 rewound from db2, a synchronous standby again, attached, fence cleared.
    result = ops.rebuild(ha_setup, node("db1"))
    assert result["method"] == "pg_rewind"  # the diverged WAL rewound, the rest from the archive
    assert FencedNode.objects.get(node=node("db1")).state == "cleared"
    pool = remote.pool_nodes(ha_setup)
    assert pool[0]["status"] == "up" and pool[1]["role"] == "primary"
    assert remote.replication(node("db2"))["db1"]["sync_state"] == "sync"
    assert not set(acked) - rows_on(db1)


def test_failover_started_by_a_dba_promotes_the_synchronous_standby(ha_setup, lab):
    ha_setup.health_check_period = 0  # pgpool-II does not notice by itself: the DBA acts
    ha_setup.save()
    fresh_table()
    deploy.deploy_pgpool(ha_setup)
    with through_pgpool(autocommit=True) as conn:
        conn.execute("INSERT INTO ha_drill VALUES (1)")
    from console.lab.parts.pgha import kill_server

    kill_server(lab.parts["primary"])
    check = prechecks.failover_precheck(ha_setup)
    assert check.ok, check.failures()
    assert check.facts == {"old": "db1", "new": "db2", "promoted_already": False}
    result = ops.failover(ha_setup)
    assert result == {"primary": "db2", "fenced": "db1", "fence_enforced": True}
    with through_pgpool(autocommit=True) as conn:
        conn.execute("INSERT INTO ha_drill VALUES (2)")
        assert (
            conn.execute("SELECT inet_server_addr()::text")
            .fetchone()[0]
            .startswith(os.environ["LAB_PG_STANDBY_HOST"])
        )
    assert rows_on(os.environ["LAB_PG_STANDBY_HOST"]) == {1, 2}
    data = ha_setup.backend_of(node("db1"))["data_directory"]
    assert os.path.exists(f"{data}/standby.signal")
