"""The PostgreSQL checks of the security baseline on the lab's primary and standby, trust rules
found on disk, and the password_encryption fix on both."""

import os
from pathlib import Path

import psycopg
import pytest

from clusters.actions.baseline import FixRefused, fix_check
from tests.clusters import _baseline
from tests.clusters._baseline import _fixed_entries, _verdicts, lab_db

nodes = _baseline.nodes


def _pg(sql: str, host: str = "LAB_PG") -> list[tuple]:
    with psycopg.connect(
        host=os.environ[f"{host}_HOST"], port=os.environ[f"{host}_PORT"], user="postgres",
        password=os.environ["LAB_PG_PASSWORD"], dbname="postgres", autocommit=True,
    ) as conn:  # fmt: skip
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


# --- PostgreSQL --------------------------------------------------------------------------------


@lab_db
def test_postgresql_checks_on_primary_and_standby(nodes, dba):
    for name in ("db1", "db2"):
        v = _verdicts(nodes[name], actor=dba)
        assert v["pg.password_encryption"].status == "pass", v["pg.password_encryption"].evidence
        assert v["pg.hba_trust_host"].status == "pass"
        assert "3 rules read" in v["pg.hba_trust_host"].evidence
        assert v["pg.local_postgres"].status == "pass"
        assert "line 2: local all postgres peer" in v["pg.local_postgres"].evidence
        assert v["pg.ssl"].status == "review" and "ssl = off" in v["pg.ssl"].evidence
        assert v["pg.listen_addresses"].status == "pass"
        assert nodes[name].address in v["pg.listen_addresses"].evidence
        assert v["pg.superusers"].status == "pass"


@pytest.fixture
def db1_hba(lab):
    path = Path(os.environ["LAB_DIR"]) / "primary" / "data" / "pg_hba.conf"
    original = path.read_text()
    yield path
    path.write_text(original)  # never reloaded: the running server's rules did not change


@lab_db
def test_trust_rules_on_disk_are_found_in_order(nodes, dba, db1_hba):
    db1_hba.write_text(db1_hba.read_text() + "local all all trust\n"
                       "host all all 10.77.99.0/24 trust\n")  # fmt: skip
    v = _verdicts(nodes["db1"], actor=dba)
    assert v["pg.hba_trust_host"].status == "fail"
    assert "line 6: host all all 10.77.99.0 255.255.255.0 trust" in v["pg.hba_trust_host"].evidence
    # postgres is decided by line 2 (peer) before the local trust of line 5
    assert v["pg.local_postgres"].status == "pass"
    db1_hba.write_text("local all all trust\n" + db1_hba.read_text())
    v = _verdicts(nodes["db1"], actor=dba, keys={"pg.local_postgres"})
    assert v["pg.local_postgres"].status == "fail"
    assert "line 1: local all all trust" in v["pg.local_postgres"].evidence
    with pytest.raises(FixRefused, match="no automatic fix; fix it on the pg_hba page"):
        fix_check(nodes["db1"], "pg.hba_trust_host", actor=dba)


@pytest.fixture(params=[("db1", "LAB_PG"), ("db2", "LAB_PG_STANDBY")], ids=["primary", "standby"])
def md5_node(request, lab):
    """db1 or db2 with password_encryption = md5 in postgresql.auto.conf; reset afterwards (the
    lab sets nothing there: scram-sha-256 is the default)."""
    name, env = request.param
    _pg("ALTER SYSTEM SET password_encryption = 'md5'", env)
    _pg("SELECT pg_reload_conf()", env)
    yield name, env
    _pg("ALTER SYSTEM RESET password_encryption", env)
    _pg("SELECT pg_reload_conf()", env)


@lab_db
def test_password_encryption_fix_on_primary_and_standby(nodes, dba, md5_node):
    name, env = md5_node
    node = nodes[name]
    v = _verdicts(node, actor=dba, keys={"pg.password_encryption"})["pg.password_encryption"]
    assert v.status == "fail" and "password_encryption = md5" in v.evidence
    assert "postgresql.auto.conf" in v.evidence
    message = fix_check(node, "pg.password_encryption", actor=dba)
    assert "ALTER SYSTEM SET password_encryption" in message
    assert _pg("SHOW password_encryption", env) == [("scram-sha-256",)]
    assert _fixed_entries(node).last().status == "succeeded"
    assert fix_check(node, "pg.password_encryption", actor=dba).startswith("the check already")
