"""pgpool-II on lb1 in front of db1 (primary) and db2 (standby): nodes, load balancing,
pool_passwd and PCP."""

import psycopg
import pytest

from console.lab import seed
from console.lab.parts import pgha, pgpool
from tests.lab.ha import ha_from_env


@pytest.fixture(scope="module")
def ha(lab_env, lab):
    return ha_from_env(lab_env, lab)


@pytest.fixture
def pcp(ha):
    """Run a pcp_* command against the lab's pgpool: pcp("node_count") -> its output."""
    part = ha.lab.parts["pgpool"]
    rec = ha.lab.load()["parts"]["pgpool"]
    return lambda command, *args: part.pcp(rec, command, *args)


def test_pool_nodes_list_db1_primary_and_db2_standby_up(ha):
    nodes = pgpool.wait_for_pool_nodes(ha.pool, pgpool.NORMAL_NODES, timeout=10)
    assert [(n["hostname"], n["status"], n["role"]) for n in nodes.values()] == [
        (ha.primary["host"], "up", "primary"),
        (ha.standby["host"], "up", "standby"),
    ]


def test_pool_nodes_show_db2_replicating_synchronously(ha):
    # backend_application_name1 matches the standby's application_name; sr_check reads it.
    expected = {1: {"replication_state": "streaming", "replication_sync_state": "sync"}}
    pgpool.wait_for_pool_nodes(ha.pool, expected, timeout=10)


def test_read_only_queries_reach_db2(ha):
    before = int(pgpool.pool_nodes(ha.pool)[1]["select_cnt"])
    answers = set()
    # Load balancing picks a node per session (weights 1:1): 60 sessions all missing db2 would
    # happen once in 2**60. current_setting() is stable, so pgpool may send it to a standby.
    for _ in range(60):
        [(in_standby,)] = pgha.query(ha.pool, "SELECT current_setting('in_hot_standby')")
        answers.add(in_standby)
        if "on" in answers:
            break
    assert "on" in answers
    assert int(pgpool.pool_nodes(ha.pool)[1]["select_cnt"]) > before


def test_writes_through_pgpool_reach_the_primary(ha):
    with pgha.connect(ha.pool) as conn, pgha.deadline(conn, 10):
        conn.execute("CREATE TEMP TABLE here (address text)")
        conn.execute("INSERT INTO here SELECT host(inet_server_addr())")
        [(address,)] = conn.execute("SELECT address FROM here").fetchall()
    assert address == ha.primary["host"]


def test_functional_account_logs_in_through_pgpool(ha):
    account = seed.functional_account("billing_app")
    target = ha.as_user(ha.pool, "billing_app", seed.SEED_DB_PASSWORDS["billing_app"], "billing")
    assert account["database"] == "billing"
    assert pgha.query(target, "SELECT count(*) FROM invoices") == [(3,)]


def test_pgpool_refuses_a_login_missing_from_pool_passwd(ha):
    # alice is a personal account on db1 but not in pool_passwd: SCRAM through pgpool fails.
    password = seed.SEED_DB_PASSWORDS["alice"]
    assert pgha.query(ha.as_user(ha.primary, "alice", password, "postgres"), "SELECT 1") == [(1,)]
    with pytest.raises(psycopg.OperationalError):
        pgha.query(ha.as_user(ha.pool, "alice", password, "postgres"), "SELECT 1")


def test_pool_passwd_holds_only_aes_encrypted_passwords(ha):
    lines = (ha.lab.parts["pgpool"].dir / "pool_passwd").read_text().splitlines()
    users = {line.split(":", 1)[0] for line in lines}
    assert users == {"postgres", *(a["name"] for a in seed.SEED_FUNCTIONAL_ACCOUNTS)}
    assert all(line.split(":", 1)[1].startswith("AES") for line in lines)


def test_pcp_answers_without_a_prompt(pcp):
    assert pcp("node_count").strip() == "2"


def test_pcp_node_info_shows_db2_as_a_sync_standby(ha, pcp):
    fields = pcp("node_info", "-n", "1").split()
    assert fields[0] == ha.standby["host"]
    assert fields[4:8] == ["up", "up", "standby", "standby"]
    assert fields[9:11] == ["streaming", "sync"]
