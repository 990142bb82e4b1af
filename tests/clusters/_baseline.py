"""Shared by the security baseline tests (test_baseline*.py), which run against the lab's
real servers: the `nodes` fixture (the lab registered), `my1_insecure` (my1 unhardened, and put
back afterwards), and small helpers that query my1 directly, run checks, and list the
baseline.fixed audit entries of a node.

my1 starts from the lab's own state (unhardened as installed: anonymous accounts, a `test`
database granted to PUBLIC, local_infile ON) plus what the tests add (root@'%', an account
without a password, two OS users with a history file or none). Every test that changes my1,
db1 or the OS puts back what it changed (fixtures `my1_insecure` here, `history_users` in
test_baseline_mariadb.py, ...).
"""

import os
from pathlib import Path

import MySQLdb
import pytest

from clusters import baseline
from clusters.baseline import quote_account
from clusters.models import Node
from console import audit
from console.lab.demo import register_demo
from console.models import AuditEntry

lab_db = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions


def _my(sql: str, params=()) -> list[tuple]:
    conn = MySQLdb.connect(
        host=os.environ["LAB_MYSQL_HOST"], port=int(os.environ["LAB_MYSQL_PORT"]),
        user=os.environ["LAB_MYSQL_USER"], password=os.environ["LAB_MYSQL_PASSWORD"],
        autocommit=True,
    )  # fmt: skip
    try:
        cur = conn.cursor()
        cur.execute(sql, params)  # always a format template, as the executor does
        return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def _my_cnf() -> Path:
    return Path(os.environ["LAB_DIR"]) / "mariadb" / "my.cnf"


def _accounts() -> set[tuple[str, str]]:
    return {(u, h) for u, h in _my("SELECT User, Host FROM mysql.user WHERE is_role = 'N'")}


@pytest.fixture
def nodes(lab_env) -> dict[str, Node]:
    register_demo(os.environ)
    return {node.name: node for node in Node.objects.all()}


@pytest.fixture
def my1_insecure(lab):
    """my1 as the lab made it, plus root@'%' and an account without a password; afterwards
    everything the tests changed is put back: accounts, test database and its grants, the
    option file, local_infile."""
    cnf = _my_cnf()
    original_cnf = cnf.read_text()
    original_accounts = _accounts()
    public_grants = [g for (g,) in _my("SHOW GRANTS FOR PUBLIC") if "`test" in g]
    _my("CREATE USER IF NOT EXISTS `root`@`%%` IDENTIFIED BY 'bl-remote-root'")
    _my("CREATE USER IF NOT EXISTS `bl_nopw`@`%%`")
    yield
    for user, host in _accounts() - original_accounts:
        _my(f"DROP USER {quote_account(user, host)}")
    for user, host in original_accounts - _accounts():
        _my(f"CREATE USER {quote_account(user, host)}")
    _my("CREATE DATABASE IF NOT EXISTS test")
    for grant in public_grants:
        _my(grant.replace("%", "%%"))
    cnf.write_text(original_cnf)
    for backup in cnf.parent.glob("my.cnf.dbconsole-*"):
        backup.unlink()
    _my("SET GLOBAL local_infile = 1")


def _verdicts(node, **kw):
    return baseline.run_checks(node, **kw)


def _fixed_entries(node):
    return AuditEntry.objects.filter(action=audit.BASELINE_FIXED, node=node.name).order_by("id")
