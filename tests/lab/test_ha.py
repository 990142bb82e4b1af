"""PostgreSQL HA in the lab: db1 primary, db2 synchronous hot standby, WAL archive, failover.

The failover tests break the topology; each rebuilds the HA parts when it ends, so later tests
get db1 primary and db2 standby again.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from console.lab import faults
from console.lab.parts import pgha, pgpool
from console.lab.proc import LabError
from tests.lab.ha import ha_from_env

WRITE_AGAIN_WITHIN = 30  # seconds from the crash until pgpool must accept writes again


@pytest.fixture(scope="module")
def ha(lab_env, lab):
    return ha_from_env(lab_env, lab)


@pytest.fixture
def scratch_table(ha):
    """A table created through pgpool (so on the primary), dropped at the end if still there."""
    name = f"ha_scratch_{time.monotonic_ns()}"
    pgha.query(
        ha.pool, sql.SQL("CREATE TABLE {} (id integer PRIMARY KEY)").format(sql.Identifier(name))
    )
    yield name
    if pgha.is_primary(ha.primary):
        pgha.query(ha.primary, sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def broken_then_rebuilt(ha):
    """The normal topology at the start; rebuilt at the end, also when the test failed."""
    pgpool.wait_for_pool_nodes(ha.pool, pgpool.NORMAL_NODES, timeout=20)
    yield ha
    ha.rebuild()


def insert(conn: psycopg.Connection, table: str, value: int, timeout: float = 10) -> None:
    with pgha.deadline(conn, timeout):
        conn.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(sql.Identifier(table)), [value])


def test_row_committed_through_pgpool_is_readable_on_db2_at_once(ha, scratch_table):
    select = sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(sql.Identifier(scratch_table))
    missed = []
    with (
        pgha.connect(ha.pool, autocommit=True) as pool,
        pgha.connect(ha.standby, autocommit=True) as standby,
    ):
        for value in range(200):  # with synchronous_commit = on, about 3 % were missed
            insert(pool, scratch_table, value)
            with pgha.deadline(standby, 10):
                if standby.execute(select, [value]).fetchone() is None:
                    missed.append(value)
    assert missed == []


def test_db2_is_a_hot_standby(ha):
    assert pgha.query(ha.standby, "SELECT pg_is_in_recovery()") == [(True,)]


def test_primary_reports_db2_as_a_synchronous_standby(ha):
    rows = pgha.query(
        ha.primary,
        "SELECT application_name, state, sync_state, host(client_addr) FROM pg_stat_replication",
    )
    assert rows == [("db2", "streaming", "sync", ha.standby["host"])]


def test_primary_waits_for_the_standby_to_apply_each_commit(ha):
    rows = pgha.query(
        ha.primary,
        "SELECT name, setting FROM pg_settings"
        " WHERE name IN ('synchronous_commit', 'synchronous_standby_names') ORDER BY name",
    )
    assert rows == [("synchronous_commit", "remote_apply"), ("synchronous_standby_names", "db2")]


def test_standby_would_not_be_synchronous_once_promoted(ha):
    # ALTER SYSTEM ran on the primary after the base backup, so db2 did not inherit it.
    assert pgha.query(ha.standby, "SHOW synchronous_standby_names") == [("",)]


def test_primary_has_data_checksums(ha):
    assert pgha.query(ha.primary, "SHOW data_checksums") == [("on",)]


def test_wal_is_archived_into_the_shared_directory(ha, lab_env):
    pgha.query(ha.primary, "SELECT pg_current_xact_id()")  # some WAL, so that the switch is real
    [(segment,)] = pgha.query(ha.primary, "SELECT pg_walfile_name(pg_switch_wal())")
    archived = Path(lab_env["LAB_DIR"]) / "archive" / segment
    deadline = time.monotonic() + 10
    while not archived.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert archived.exists()


def test_standby_restores_from_the_shared_archive(ha, lab_env):
    [(command,)] = pgha.query(ha.standby, "SHOW restore_command")
    assert command.startswith(f"cp {lab_env['LAB_DIR']}/archive/%f ")


@pytest.fixture
def partition_db1_db2(ha):
    """db1 and db2 cut from each other inside the block; afterwards healed and back in sync
    (rebuilt if they do not get there)."""
    yield lambda: faults.partitioned(ha.lab, "db1", "db2")
    faults.heal(ha.lab, "db1", "db2")
    try:
        pgha.wait_for_sync(ha.primary, timeout=30)
    except LabError:
        ha.rebuild()


def test_commit_waits_for_a_partitioned_standby_until_the_client_deadline(
    ha, scratch_table, partition_db1_db2
):
    select = sql.SQL("SELECT id FROM {}").format(sql.Identifier(scratch_table))
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
    with partition_db1_db2(), pgha.connect(ha.primary, autocommit=True) as conn:
        with ThreadPoolExecutor(1) as pool:
            commit = pool.submit(insert, conn, scratch_table, 1, timeout=3)
            faults.wait_until(lambda: pgha.query(ha.primary, waiting) == [(1,)], 3, "SyncRep")
            with pytest.raises(TimeoutError):
                commit.result()
        # The cancel released the wait, but the row had already committed on db1.
        assert pgha.query(ha.primary, select) == [(1,)]


def test_primary_drops_a_partitioned_standby_within_wal_sender_timeout(ha, partition_db1_db2):
    with partition_db1_db2():
        cut = time.monotonic()
        faults.wait_until(
            lambda: pgha.replication_state(ha.primary, "db2") is None, 15, "db2 to be dropped"
        )
        print(f"db1 dropped the partitioned db2 after {time.monotonic() - cut:.1f} s")


def test_crashing_db1_makes_pgpool_promote_db2_and_writes_succeed_again(
    broken_then_rebuilt, scratch_table
):
    ha = broken_then_rebuilt
    with pgha.connect(ha.pool, autocommit=True) as pool:
        insert(pool, scratch_table, 1)  # committed before the crash: must survive it
    faults.crash_host(ha.lab, "db1")
    crashed = time.monotonic()
    errors = []
    while time.monotonic() - crashed < WRITE_AGAIN_WITHIN:
        try:
            with pgha.connect(ha.pool, autocommit=True) as pool:
                insert(pool, scratch_table, 2)
            break
        except (psycopg.Error, TimeoutError) as e:
            errors.append(type(e).__name__)
    took = time.monotonic() - crashed
    print(f"writes through pgpool again {took:.2f} s after the crash ({len(errors)} failures)")
    assert took < WRITE_AGAIN_WITHIN, errors[-3:]
    nodes = pgpool.pool_nodes(ha.pool)
    assert (nodes[0]["status"], nodes[1]["status"], nodes[1]["role"]) == ("down", "up", "primary")
    assert pgha.is_primary(ha.standby)
    select = sql.SQL("SELECT id FROM {} ORDER BY id").format(sql.Identifier(scratch_table))
    assert pgha.query(ha.pool, select) == [(1,), (2,)]


def test_health_check_fails_over_a_crashed_primary_without_client_traffic(broken_then_rebuilt):
    ha = broken_then_rebuilt
    faults.crash_host(ha.lab, "db1")
    crashed = time.monotonic()
    promoted = {0: {"status": "down"}, 1: {"status": "up", "role": "primary"}}
    part = ha.lab.parts["pgpool"]
    rec = ha.lab.load()["parts"]["pgpool"]
    pgpool.wait_for_pcp_nodes(part, rec, promoted, timeout=WRITE_AGAIN_WITHIN)  # no client
    print(f"health check failed over {time.monotonic() - crashed:.2f} s after the crash")
    assert pgha.is_primary(ha.standby)


def test_old_primary_rejoins_as_a_standby_of_db2(broken_then_rebuilt, scratch_table):
    ha = broken_then_rebuilt
    primary, standby = ha.lab.parts["primary"], ha.lab.parts["standby"]
    faults.crash_host(ha.lab, "db1")
    part, rec = ha.lab.parts["pgpool"], ha.lab.load()["parts"]["pgpool"]
    promoted = {0: {"status": "down"}, 1: {"status": "up", "role": "primary"}}
    pgpool.wait_for_pcp_nodes(part, rec, promoted, timeout=WRITE_AGAIN_WITHIN)
    started = time.monotonic()
    pgha.rejoin_as_standby(primary, standby, "db1")
    part.pcp(rec, "attach_node", "-n", "0")
    rejoined = {0: {"status": "up", "role": "standby"}, 1: {"status": "up", "role": "primary"}}
    pgpool.wait_for_pool_nodes(ha.pool, rejoined, timeout=20)  # "waiting" until a client comes
    print(f"db1 rejoined as a standby {time.monotonic() - started:.2f} s after the failover")
    with pgha.connect(ha.pool, autocommit=True) as pool:
        insert(pool, scratch_table, 3)
    select = sql.SQL("SELECT id FROM {}").format(sql.Identifier(scratch_table))
    db1 = ha.primary  # now a standby of db2, replicating asynchronously
    faults.wait_until(lambda: pgha.query(db1, select) == [(3,)], 10, "the row to reach db1")
    assert pgha.query(db1, "SELECT pg_is_in_recovery()") == [(True,)]
