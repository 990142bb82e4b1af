"""The security baseline against the lab's real servers: checks, fixes, jobs, audit, report.

my1 starts from the lab's own state (unhardened as installed: anonymous accounts, a `test`
database granted to PUBLIC, local_infile ON) plus what the tests add (root@'%', an account
without a password, two OS users with a history file or none). Every test that changes my1,
db1 or the OS puts back what it changed (fixtures `my1_insecure`, `history_users`, ...).

The lab's hosts share this machine's /etc/passwd and filesystem: the history tests create their
own OS users with homes under the lab directory and ignore every other user (through
BASELINE_HISTORY_IGNORE_USERS), so nothing outside the lab is touched.
"""

import csv
import io
import os
import pwd
import subprocess
from pathlib import Path

import MySQLdb
import psycopg
import pytest
from django.test import override_settings
from django.urls import reverse

from clusters import baseline
from clusters.actions.baseline import (
    FixFailed,
    FixRefused,
    check_node,
    fix_all,
    fix_check,
    latest_results,
)
from clusters.baseline import quote_account
from clusters.models import BaselineResult, Node
from console import audit
from console.lab.demo import register_demo
from console.models import AuditEntry, Job
from console.secrets import store_credential

lab_db = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions
TEST_USERS = ("blhist1", "blhist2")


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


def _pg(sql: str, host: str = "LAB_PG") -> list[tuple]:
    with psycopg.connect(
        host=os.environ[f"{host}_HOST"], port=os.environ[f"{host}_PORT"], user="postgres",
        password=os.environ["LAB_PG_PASSWORD"], dbname="postgres", autocommit=True,
    ) as conn:  # fmt: skip
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


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


@pytest.fixture
def history_users(lab):
    """Two OS users with homes under the lab directory: blhist1 has a history file, blhist2
    none. Every other OS user of the machine is ignored by the check; both are deleted after."""
    homes = Path(os.environ["LAB_DIR"]) / "home"
    for name in TEST_USERS:
        home = homes / name
        subprocess.run(["useradd", "-M", "-d", str(home), "-s", "/bin/bash", name], check=True)
        home.mkdir(parents=True)
        subprocess.run(["chown", f"{name}:{name}", str(home)], check=True)
    history = homes / "blhist1" / ".mysql_history"
    history.write_text("select * from secrets;\n")
    subprocess.run(["chown", "blhist1:blhist1", str(history)], check=True)
    others = [p.pw_name for p in pwd.getpwall() if p.pw_name not in TEST_USERS]
    with override_settings(BASELINE_HISTORY_IGNORE_USERS=others):
        yield {name: homes / name for name in TEST_USERS}
    for name in TEST_USERS:
        subprocess.run(["userdel", name], check=True)
        subprocess.run(["rm", "-rf", "--", str(homes / name)], check=True)


def _verdicts(node, **kw):
    return baseline.run_checks(node, **kw)


# --- MariaDB: each check fails with evidence on the insecure server -------------------------


@lab_db
def test_mariadb_checks_fail_with_evidence_on_an_unhardened_server(nodes, my1_insecure, dba):
    v = _verdicts(nodes["my1"], actor=dba)
    assert v["mariadb.local_infile"].status == "fail"
    assert "@@local_infile = ON" in v["mariadb.local_infile"].evidence
    assert "local_infile is not set" in v["mariadb.local_infile"].evidence
    assert str(_my_cnf()) in v["mariadb.local_infile"].evidence
    assert v["mariadb.anonymous_accounts"].status == "fail"
    assert "(anonymous)@localhost" in v["mariadb.anonymous_accounts"].evidence
    assert v["mariadb.remote_root"].status == "fail"
    assert "root@%" in v["mariadb.remote_root"].evidence
    assert v["mariadb.test_database"].status == "fail"
    assert "database `test` exists (0 tables)" in v["mariadb.test_database"].evidence
    assert "mysql.db grants test\\_% to PUBLIC" in v["mariadb.test_database"].evidence
    assert v["mariadb.no_password"].status == "fail"
    assert "bl_nopw@%" in v["mariadb.no_password"].evidence
    assert "lab_admin" not in v["mariadb.no_password"].evidence
    assert v["mariadb.root_auth"].status == "pass"
    assert ("root@localhost: mysql_native_password or unix_socket (no usable password: 'invalid')"
            in v["mariadb.root_auth"].evidence)  # fmt: skip
    assert all(v[k].fixable for k in v if v[k].status == "fail")


@lab_db
def test_history_check_and_fix_link_to_dev_null_keeping_ownership(nodes, history_users, dba):
    v = _verdicts(nodes["my1"], actor=dba, keys={"mariadb.mysql_history"})["mariadb.mysql_history"]
    assert v.status == "fail", v.evidence
    assert "blhist1: " in v.evidence and "a regular file" in v.evidence
    assert "blhist2: " in v.evidence and "missing" in v.evidence
    message = fix_check(nodes["my1"], "mariadb.mysql_history", actor=dba)
    assert "blhist1" in message and "blhist2" in message
    for name, home in history_users.items():
        link = home / ".mysql_history"
        assert link.is_symlink() and os.readlink(link) == "/dev/null"
        assert link.lstat().st_uid == pwd.getpwnam(name).pw_uid
    assert Path("/dev/null").stat().st_uid == 0  # chown -h: /dev/null itself untouched
    latest = latest_results([nodes["my1"]])[nodes["my1"].pk]["mariadb.mysql_history"]
    assert latest.status == "pass"
    again = fix_check(nodes["my1"], "mariadb.mysql_history", actor=dba)
    assert again == "the check already passes: nothing done"


@lab_db
def test_history_fix_replaces_a_link_elsewhere_without_touching_its_target(
    nodes, history_users, dba, tmp_path
):
    target = tmp_path / "kept.txt"
    target.write_text("not a history\n")
    link = history_users["blhist2"] / ".mysql_history"
    link.symlink_to(target)
    fix_check(nodes["my1"], "mariadb.mysql_history", actor=dba)
    assert os.readlink(link) == "/dev/null"
    assert target.read_text() == "not a history\n"


# --- MariaDB fixes ----------------------------------------------------------------------------


def _fixed_entries(node):
    return AuditEntry.objects.filter(action=audit.BASELINE_FIXED, node=node.name).order_by("id")


@lab_db
def test_each_mariadb_fix_passes_afterwards_is_audited_and_idempotent(nodes, my1_insecure, dba):
    my1 = nodes["my1"]
    keys = [
        "mariadb.local_infile",
        "mariadb.anonymous_accounts",
        "mariadb.remote_root",
        "mariadb.test_database",
        "mariadb.no_password",
    ]
    for key in keys:
        fix_check(my1, key, actor=dba)
    after = _verdicts(my1, actor=dba)
    assert {k: after[k].status for k in keys} == dict.fromkeys(keys, "pass")
    # on the server itself
    assert _my("SELECT @@local_infile") == [(0,)]
    assert "local-infile=0" in _my_cnf().read_text()
    assert not [a for a in _accounts() if a[0] == ""]
    assert ("root", "%") not in _accounts()
    assert _my("SHOW DATABASES LIKE 'test'") == []
    assert _my("SELECT Db FROM mysql.db WHERE Db IN (%s, %s)", ("test", "test\\_%")) == []
    assert "ACCOUNT LOCK" in _my("SHOW CREATE USER `bl_nopw`@`%%`")[0][0]
    # audited: one succeeded baseline.fixed per fix, no secret in any entry
    entries = list(_fixed_entries(my1))
    assert [e.status for e in entries] == ["succeeded"] * len(keys)
    assert all(e.actor_name == "dba" for e in entries)
    assert not AuditEntry.objects.filter(command__contains=os.environ["LAB_MYSQL_PASSWORD"])
    assert not AuditEntry.objects.filter(output__contains="bl-remote-root")
    # the option file was written atomically with a backup, owner and mode kept
    backups = list(_my_cnf().parent.glob("my.cnf.dbconsole-*.bak"))
    assert len(backups) == 1 and "local-infile" not in backups[0].read_text()
    # again: nothing to do, said so
    for key in keys:
        assert fix_check(my1, key, actor=dba) == "the check already passes: nothing done"
    assert len(list(_my_cnf().parent.glob("my.cnf.dbconsole-*.bak"))) == 1


@lab_db
def test_dropping_the_consoles_own_account_is_refused(nodes, my1_insecure, dba):
    """A node whose console account is root@'%': the fix would cut the console off."""
    _my("GRANT ALL PRIVILEGES ON *.* TO `root`@`%%`")
    credential = store_credential("bl-root", "password", "bl-remote-root", actor=None,
                                  username="root")  # fmt: skip
    my1 = nodes["my1"]
    as_root = Node.objects.create(
        name="my1-as-root", service="mariadb", address=my1.address, db_port=my1.db_port,
        known_hosts=my1.known_hosts, ssh_credential=my1.ssh_credential, db_credential=credential,
    )  # fmt: skip
    with pytest.raises(FixFailed, match="connects to this server as root@%"):
        fix_check(as_root, "mariadb.remote_root", actor=dba)
    assert ("root", "%") in _accounts()
    entry = _fixed_entries(as_root).last()
    assert entry.status == "failed" and "Nothing was changed" in entry.error
    assert "bl-remote-root" not in entry.error + entry.output


@lab_db
def test_a_local_infile_fix_that_cannot_win_restores_the_option_file(nodes, my1_insecure, dba):
    """A later [mariadb] group sets local_infile=1: writing [mysqld] cannot win, so the fix
    puts the file back as it was and says why; the server keeps running as it was."""
    cnf = _my_cnf()
    cnf.write_text(cnf.read_text() + "\n[mariadb]\nlocal_infile = 1\n")
    before = cnf.read_text()
    mode, uid = cnf.stat().st_mode, cnf.stat().st_uid
    with pytest.raises(FixFailed, match="another option file or group still sets local_infile"):
        fix_check(nodes["my1"], "mariadb.local_infile", actor=dba)
    assert cnf.read_text() == before
    assert (cnf.stat().st_mode, cnf.stat().st_uid) == (mode, uid)
    assert _my("SELECT @@local_infile") == [(1,)]
    entry = _fixed_entries(nodes["my1"]).last()
    assert entry.status == "failed" and "restored from" in entry.error
    assert not list(cnf.parent.glob(".my.cnf.dbconsole-*"))  # no temporary file left


@lab_db
def test_a_test_database_holding_tables_is_not_dropped(nodes, my1_insecure, dba):
    _my("CREATE TABLE test.kept (id int)")
    try:
        with pytest.raises(FixFailed, match="holds 1 tables"):
            fix_check(nodes["my1"], "mariadb.test_database", actor=dba)
        assert _my("SELECT COUNT(*) FROM test.kept") == [(0,)]
    finally:
        _my("DROP TABLE IF EXISTS test.kept")


def _root_over_the_network():
    """A MySQLdb login as root@'%' from this machine to my1's lab address."""
    return MySQLdb.connect(
        host=os.environ["LAB_MYSQL_HOST"], port=int(os.environ["LAB_MYSQL_PORT"]),
        user="root", password="bl-remote-root", connect_timeout=5,
    )  # fmt: skip


MARIADB_FIXABLE = [
    "mariadb.local_infile",
    "mariadb.anonymous_accounts",
    "mariadb.remote_root",
    "mariadb.test_database",
    "mariadb.no_password",
]


@lab_db
def test_fix_all_hardens_the_unhardened_my1_and_root_over_the_network_is_refused(
    nodes, my1_insecure, dba
):
    """Issue 5: my1 as the lab built it (plus root@'%' with a password and an account without
    one) fails; "fix all" makes every MariaDB check pass. The console connects as lab_admin
    (not root@'%'), so dropping root's remote account keeps it. mariadb.root_auth has no fix
    (a person sets root's password); it passes here already. The history check is kept out
    (every OS user of this shared machine ignored: the history tests cover its fix)."""
    with override_settings(BASELINE_HISTORY_IGNORE_USERS=[p.pw_name for p in pwd.getpwall()]):
        _fix_all_on_my1(nodes["my1"], dba)


def _fix_all_on_my1(my1, dba):
    assert my1.db_credential.username == os.environ["LAB_MYSQL_USER"] != "root"
    conn = _root_over_the_network()  # before: root logs in over the network
    assert conn.cursor().execute("SELECT CURRENT_USER()") == 1
    conn.close()
    before = check_node(my1, actor=dba)
    failing = {r.check_key: r for r in before.results.all() if r.status == "fail"}
    assert sorted(failing) == sorted(MARIADB_FIXABLE)
    assert "root@%" in failing["mariadb.remote_root"].evidence
    assert "@@local_infile = ON" in failing["mariadb.local_infile"].evidence

    with pytest.raises(FixRefused, match="type the server's name, my1"):
        fix_all(my1, actor=dba, confirm="db1")
    assert ("root", "%") in _accounts()  # a wrong name changes nothing

    result = fix_all(my1, actor=dba, confirm="my1")
    assert list(result.fixed) == MARIADB_FIXABLE  # in the registry's order
    assert result.refused == {} and result.skipped == {}
    after = {r.check_key: r.status for r in result.run.results.all()}
    others = ["mariadb.root_auth", "mariadb.mysql_history"]
    assert after == dict.fromkeys([*MARIADB_FIXABLE, *others], "pass")
    with pytest.raises(MySQLdb.OperationalError) as refused:
        _root_over_the_network()
    assert refused.value.args[0] == 1045  # access denied: no root account for this host
    assert _my("SELECT CURRENT_USER()")[0][0].startswith(os.environ["LAB_MYSQL_USER"] + "@")
    assert check_node(my1, actor=dba).results.filter(status="error").count() == 0
    # audited: one baseline.fixed per check, then the summary; the final re-check recorded
    entries = list(_fixed_entries(my1))
    assert [e.target for e in entries] == [f"node:my1 {k}" for k in MARIADB_FIXABLE] + [
        "node:my1 all"
    ]
    assert {e.status for e in entries} == {"succeeded"}
    assert not AuditEntry.objects.filter(output__contains="bl-remote-root")

    again = fix_all(my1, actor=dba, confirm="my1")  # idempotent: nothing to do, said so
    assert again.nothing_to_do and again.fixed == {}
    assert (
        _fixed_entries(my1).last().output
        == "nothing to do: every check with an automatic fix already passes"
    )
    assert len(list(_my_cnf().parent.glob("my.cnf.dbconsole-*.bak"))) == 1


@lab_db
def test_fix_all_reports_a_refused_fix_and_runs_the_others(nodes, my1_insecure, dba):
    """A `test` database holding a table: its fix is refused, the other fixes still run."""
    _my("CREATE TABLE test.kept (id int)")
    try:
        with override_settings(BASELINE_HISTORY_IGNORE_USERS=[p.pw_name for p in pwd.getpwall()]):
            result = fix_all(nodes["my1"], actor=dba, confirm="my1")
        assert list(result.refused) == ["mariadb.test_database"]
        assert "holds 1 tables" in result.refused["mariadb.test_database"]
        assert "mariadb.remote_root" in result.fixed and "mariadb.no_password" in result.fixed
        assert _my("SELECT COUNT(*) FROM test.kept") == [(0,)]
        summary = _fixed_entries(nodes["my1"]).last()
        assert summary.target == "node:my1 all" and summary.status == "failed"
    finally:
        _my("DROP TABLE IF EXISTS test.kept")


@lab_db
def test_fix_all_view_needs_the_name_and_the_job_runs_it(client, nodes, my1_insecure, dba):
    from clusters.tasks import baseline_fix_all
    from console.jobs import run_job

    my1 = nodes["my1"]
    check_node(my1, actor=dba)
    client.force_login(dba)
    page = client.get(reverse("clusters:baseline_node", args=[my1.pk])).content.decode()
    assert "Fix all failing checks on my1" in page
    url = reverse("clusters:baseline_fix_all", args=[my1.pk])
    wrong = client.post(url, {"confirm": "my2"})
    assert wrong.status_code == 200 and "type the server" in wrong.content.decode()
    assert not Job.objects.filter(kind="clusters.baseline_fix_all").exists()
    assert client.post(url, {"confirm": "my1"}).status_code == 302
    job = Job.objects.get(kind="clusters.baseline_fix_all")
    assert job.params == {"node": my1.pk, "confirm": "my1"}
    with override_settings(BASELINE_HISTORY_IGNORE_USERS=[p.pw_name for p in pwd.getpwall()]):
        assert run_job(job.pk, baseline_fix_all.body) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.result["pass"] == job.result["checks"] == 7
    page = client.get(reverse("clusters:baseline_node", args=[my1.pk])).content.decode()
    assert "Fix all failing checks" not in page  # nothing left to fix


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


# --- Jobs, the report, permissions --------------------------------------------------------------


@lab_db
def test_check_job_records_a_run_per_node_and_an_audit_entry(nodes, dba):
    from clusters.tasks import baseline_check
    from console.jobs import enqueue, run_job

    job = enqueue("clusters.baseline_check", "baseline", user=dba,
                  params={"nodes": [nodes["db1"].pk, nodes["my1"].pk]})  # fmt: skip
    assert run_job(job.pk, baseline_check.body) == "succeeded"
    assert run_job(job.pk, baseline_check.body) == "skipped"  # a second delivery does nothing
    job.refresh_from_db()
    assert job.result["nodes"] == 2
    checked = AuditEntry.objects.filter(action=audit.BASELINE_CHECKED, job_id=job.pk)
    assert sorted(e.node for e in checked) == ["db1", "my1"]
    assert BaselineResult.objects.filter(run__job=job).count() == 13


@lab_db
def test_fix_job_of_a_refused_fix_fails_with_the_reason(nodes, dba):
    from clusters.tasks import baseline_fix
    from console.jobs import enqueue, run_job

    job = enqueue("clusters.baseline_fix", "fix", user=dba,
                  params={"node": nodes["db1"].pk, "check": "pg.superusers"})  # fmt: skip
    assert run_job(job.pk, baseline_fix.body) == Job.Status.FAILED
    job.refresh_from_db()
    assert "no automatic fix" in job.error


@lab_db
def test_report_page_csv_and_node_page(client, nodes, dba, manager, outsider):
    check_node(nodes["db1"], actor=dba)
    check_node(nodes["my1"], actor=dba)
    client.force_login(manager)
    page = client.get(reverse("clusters:baseline_report"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "db1" in text and "my1" in text and "no anonymous accounts" in text
    failing = client.get(reverse("clusters:baseline_report"), {"failing": "1"}).content.decode()
    assert "my1" in failing and ">db1<" not in failing  # db1 has no failing check
    response = client.get(reverse("clusters:baseline_export"))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["node", "cluster", "service", "check"]
    assert {r[0] for r in rows[1:]} >= {"db1", "my1"}
    assert "3 other hosts (pgpool-II, bare hosts) have no baseline checks" in text
    db1_page = client.get(reverse("clusters:baseline_node", args=[nodes["db1"].pk])).content
    settings_url = reverse("clusters:node_setting", args=[nodes["db1"].pk, "ssl"])
    assert f'<a href="{settings_url}">fix it there</a>' in db1_page.decode()  # ssl: review
    node_page = client.get(reverse("clusters:baseline_node", args=[nodes["my1"].pk]))
    assert "anonymous accounts let anyone log in" in node_page.content.decode()
    assert "Fix: drop the anonymous accounts" not in node_page.content.decode()  # manager
    assert "Check now" not in node_page.content.decode()
    fix_url = reverse("clusters:baseline_fix", args=[nodes["my1"].pk])
    assert client.post(fix_url, {"check": "mariadb.remote_root"}).status_code == 403
    client.force_login(outsider)
    assert client.get(reverse("clusters:baseline_report")).status_code == 403


@lab_db
def test_fix_view_needs_the_node_name_typed_and_enqueues_a_job(client, nodes, dba):
    check_node(nodes["my1"], actor=dba)
    client.force_login(dba)
    url = reverse("clusters:baseline_fix", args=[nodes["my1"].pk])
    wrong = client.post(url, {"check": "mariadb.anonymous_accounts", "confirm": "db1"})
    assert wrong.status_code == 200 and "type the server" in wrong.content.decode()
    assert not Job.objects.filter(kind="clusters.baseline_fix").exists()
    ok = client.post(url, {"check": "mariadb.anonymous_accounts", "confirm": "my1"})
    job = Job.objects.get(kind="clusters.baseline_fix")
    assert ok.status_code == 302 and ok["Location"] == reverse("job_detail", args=[job.pk])
    assert job.params == {"node": nodes["my1"].pk, "check": "mariadb.anonymous_accounts"}
    assert client.get(url).status_code == 405


@lab_db
def test_a_server_that_is_down_gives_error_verdicts_with_one_connection_attempt(nodes, dba):
    """A MariaDB node registered at bare2, where nothing listens on 3306 (sshd does)."""
    my1 = nodes["my1"]
    bare2 = nodes["bare2"]
    down = Node.objects.create(
        name="my-down", service="mariadb", address=bare2.address, db_port=3306,
        known_hosts=bare2.known_hosts, ssh_credential=bare2.ssh_credential,
        db_credential=my1.db_credential,
    )  # fmt: skip
    run = check_node(down, actor=dba)
    results = {r.check_key: r for r in run.results.all()}
    history = results.pop("mariadb.mysql_history")  # files over SSH: read while the server is down
    assert history.status in ("pass", "fail") and "OS users in scope" in history.evidence
    assert len(results) == 6 and {r.status for r in results.values()} == {"error"}
    assert all("cannot connect to my-down" in r.evidence for r in results.values())
    sql_calls = AuditEntry.objects.filter(node="my-down", action=audit.REMOTE_SQL,
                                          status="started")  # fmt: skip
    assert sql_calls.count() == 1
    with pytest.raises(FixFailed, match="could not be made before fixing, so nothing was done"):
        fix_check(down, "mariadb.anonymous_accounts", actor=dba)


@lab_db
def test_csv_cells_that_a_spreadsheet_would_run_are_guarded(client, nodes, auditor, dba):
    check_node(nodes["my1"], actor=dba)
    client.force_login(auditor)
    response = client.get(reverse("clusters:baseline_export"), {"failing": "1"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    [infile] = [r for r in rows if r["check"] == "mariadb.local_infile"]
    assert infile["evidence"].startswith("'@@local_infile = ON")
    assert {r["status"] for r in rows} <= {"fail", "error", "review", "pass"}


@lab_db
def test_permissions_methods_and_unknown_servers(client, nodes, dba, manager, auditor, helpdesk):
    my1 = nodes["my1"]
    report = reverse("clusters:baseline_report")
    node_page = reverse("clusters:baseline_node", args=[my1.pk])
    run = reverse("clusters:baseline_run", args=[my1.pk])
    fix = reverse("clusters:baseline_fix", args=[my1.pk])
    for user in (manager, auditor):
        client.force_login(user)
        assert client.get(report).status_code == 200
        assert client.get(node_page).status_code == 200
        assert client.post(run).status_code == 403
        assert (
            client.post(fix, {"check": "mariadb.remote_root", "confirm": "my1"}).status_code == 403
        )
    client.force_login(helpdesk)
    assert client.get(report).status_code == 403
    client.force_login(dba)
    assert client.get(run).status_code == 405
    assert client.post(report).status_code == 405
    lb1 = reverse("clusters:baseline_node", args=[nodes["lb1"].pk])  # pgpool: no baseline
    assert client.get(lb1).status_code == 404
    assert client.get(reverse("clusters:baseline_node", args=[99999])).status_code == 404
    # a PostgreSQL check key on a MariaDB server is refused as a form error, nothing queued
    response = client.post(fix, {"check": "pg.password_encryption", "confirm": "my1"})
    assert response.status_code == 200
    assert not Job.objects.filter(kind="clusters.baseline_fix").exists()
    assert client.post(run).status_code == 302
    assert Job.objects.get(kind="clusters.baseline_check").params == {"nodes": [my1.pk]}


@lab_db
def test_the_daily_beat_entry_enqueues_one_job_at_a_time(settings):
    from clusters.tasks import baseline_check_all

    assert settings.CELERY_BEAT_SCHEDULE["clusters.baseline_check_all"]["schedule"] == 86400.0
    baseline_check_all()
    baseline_check_all()  # the first is still pending: not piled up
    job = Job.objects.get(kind="clusters.baseline_check")
    assert job.source == AuditEntry.Source.SCHEDULE and job.params == {}
