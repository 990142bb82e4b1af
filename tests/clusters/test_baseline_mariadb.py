"""The MariaDB checks of the security baseline against the lab's my1: each fails with evidence
on the unhardened server; the history check and its fix (links to /dev/null).

The lab's hosts share this machine's /etc/passwd and filesystem: the history tests create their
own OS users with homes under the lab directory and ignore every other user (through
BASELINE_HISTORY_IGNORE_USERS), so nothing outside the lab is touched.
"""

import os
import pwd
import subprocess
from pathlib import Path

import pytest
from django.test import override_settings

from clusters.actions.baseline import fix_check, latest_results
from tests.clusters import _baseline
from tests.clusters._baseline import _my_cnf, _verdicts, lab_db

nodes = _baseline.nodes
my1_insecure = _baseline.my1_insecure
TEST_USERS = ("blhist1", "blhist2")


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
