# ruff: noqa: F811 (the lab fixtures cluster, dba and lab_files come from tests/clusters/_hba_lab.py)
"""pg_hba.conf on the lab's real db1 (primary) and db2 (standby): import with comments, apply
a rule and see PostgreSQL enforce it, a file PostgreSQL refuses put back and never loaded,
rollback, drift after a hand edit over SSH. The pages and API are test_hba_views.py, the
renderer against the server's own parser test_hba_differential.py.

Every test starts from the lab's own files and puts them back afterwards (and reloads), since
later tests of the run rely on them."""

import ipaddress
import json
import os
import subprocess
import time
from dataclasses import replace

import pytest

from clusters import hba, hba_validate
from clusters.actions import hba as actions
from clusters.actions import hba_apply as apply_actions
from clusters.actions import hba_live as live_actions
from clusters.models import HbaNodeVersion, HbaVersion, Node
from clusters.models.hba import rule_to_json
from clusters.tasks import hba_apply, hba_read
from console import audit
from console.lab.net import LabNet
from console.models import AuditEntry, Job
from tests.clusters._hba_lab import (  # noqa: F401 (fixtures)
    PROBE,
    _apply,
    _files,
    _hosts,
    _import,
    _load_time,
    _log,
    _probe,
    _reject_probe,
    _run,
    _superuser,
    cluster,
    dba,
    lab_files,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_import_reads_both_nodes_with_comments(cluster, dba, django_capture_on_commit_callbacks):
    job = _import(cluster, dba, django_capture_on_commit_callbacks)
    assert job.status == Job.Status.SUCCEEDED, job.error
    rules = cluster.hba.rules_list()
    assert [(r.conn_type, r.user, r.method, r.target) for r in rules] == [
        ("local", "postgres", "peer", "both"),
        ("host", "replicator", "scram-sha-256", "both"),
        ("host", "all", "scram-sha-256", "both"),
    ]
    assert rules[0].comment.startswith("TYPE  DATABASE")  # the column title line, kept
    assert rules[2].address == os.environ["LAB_NET"]
    entry = AuditEntry.objects.filter(action=audit.HBA_IMPORTED).get()
    assert entry.actor == dba and "imported from db1, db2" in entry.output
    report, between = live_actions.drift_report(cluster)
    assert [(d.node.name, d.in_sync) for d in report] == [("db1", True), ("db2", True)]
    assert between == ["db1 and db2 have the same rules."]


def test_applied_reject_rule_is_enforced_on_both_nodes(
    cluster, dba, lab_files, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    _import(cluster, dba, capture)
    assert _probe("db1") == "ok" and _probe("db2") == "ok"
    _reject_probe(cluster.hba, dba)
    job = _apply(cluster, dba, capture)
    assert job.status == Job.Status.SUCCEEDED, job.error + _log(job)
    for name in ("db1", "db2"):
        assert "pg_hba.conf rejects connection" in _probe(name)
    # On disk: the console's rendering, same owner and mode, and a backup of the old file.
    files = _files(os.environ)
    for name, path in files.items():
        text = path.read_text()
        assert "# hba_probe may not log in (test)\nhost " in text
        assert text.index(PROBE) < text.index("replicator")
        old, stat = lab_files[name]
        assert (path.stat().st_uid, path.stat().st_mode) == (stat.st_uid, stat.st_mode)
        (backup,) = path.parent.glob("pg_hba.conf.dbconsole-*-v1")
        assert backup.read_bytes() == old
    version = HbaVersion.objects.get(number=1)
    assert version.status == HbaVersion.Status.APPLIED
    assert [(n.node.name, n.status) for n in version.node_files.all()] == [
        ("db1", "applied"), ("db2", "applied"),
    ]  # fmt: skip
    applied = AuditEntry.objects.filter(action=audit.HBA_APPLIED).order_by("id")
    assert [e.node for e in applied] == ["db2", "db1"]  # the standby first
    # Again: the same version, nothing written, no reload, and the job says so.
    loaded = {name: _load_time(name) for name in ("db1", "db2")}
    again = _apply(cluster, dba, capture)
    assert again.status == Job.Status.SUCCEEDED
    assert "already is version 1" in _log(again) and "nothing written, no reload" in _log(again)
    assert {name: _load_time(name) for name in ("db1", "db2")} == loaded
    assert HbaVersion.objects.count() == 1


def _psql_from(host: str, node: str) -> str:
    """Log in to `node`'s PostgreSQL from INSIDE lab host `host`'s network namespace (its own
    address) with the lab's superuser and password: 'ok <client address>' or psql's error."""
    lab_host = LabNet.from_env().hosts()[host]
    conninfo = (f"host={_hosts()[node]} port={os.environ['LAB_PG_PORT']} dbname=postgres "
                f"user={os.environ['LAB_PG_USER']}")  # fmt: skip
    argv = ["/usr/lib/postgresql/15/bin/psql", "-X", "-A", "-t", "-d", conninfo,
            "-c", "SELECT inet_client_addr()"]  # fmt: skip
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "PGCONNECT_TIMEOUT": "5",
           "PGPASSWORD": os.environ["LAB_PG_PASSWORD"]}  # fmt: skip
    done = subprocess.run(lab_host.argv(argv), env=env, capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    if done.returncode == 0:
        return f"ok {done.stdout.strip()}"
    return done.stderr.strip() or f"psql exited {done.returncode}"


def _until(check, want, seconds: float = 10.0) -> str:
    """Poll `check()` until `want(result)` or the deadline; the last result either way."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if want(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_a_rule_rejecting_a_lab_hosts_address_refuses_it_until_removed(
    cluster, dba, lab_files, django_capture_on_commit_callbacks
):
    """bare1 (no database server) logs in to db1 from its own namespace and address; a
    console rule rejecting that address, applied, refuses it while the root namespace still
    gets in; the rule deleted and applied again, bare1 gets in again."""
    capture = django_capture_on_commit_callbacks
    address = json.loads(os.environ["LAB_HOSTS"])["bare1"]
    assert LabNet.from_env().hosts()["bare1"].address == address
    _import(cluster, dba, capture)
    rules = cluster.hba.rules_list()
    allowing = next(
        i for i, r in enumerate(rules)
        if r.conn_type == "host" and r.method == "scram-sha-256" and r.user == "all"
        and ipaddress.ip_address(address) in ipaddress.ip_network(r.address)
    )  # fmt: skip
    assert _psql_from("bare1", "db1") == f"ok {address}"

    reject = hba.Rule("host", "all", "all", f"{address}/32", method="reject",
                      comment="bare1 may not log in (test)")  # fmt: skip
    obj = actions.save_rule(cluster.hba, reject, position=allowing, actor=dba)
    assert [r.address for r in cluster.hba.rules_list()][allowing] == f"{address}/32"
    job = _apply(cluster, dba, capture)
    assert job.status == Job.Status.SUCCEEDED, job.error + _log(job)
    refused = _until(lambda: _psql_from("bare1", "db1"), lambda r: not r.startswith("ok"))
    assert "pg_hba.conf rejects connection" in refused and f'host "{address}"' in refused
    with _superuser(_hosts()["db1"]) as conn:  # the root namespace (the bridge) still gets in
        assert conn.execute("SELECT 1").fetchone() == (1,)

    actions.delete_rule(cluster.hba, obj.pk, actor=dba)
    assert cluster.hba.rules_list() == rules
    job = _apply(cluster, dba, capture)
    assert job.status == Job.Status.SUCCEEDED, job.error + _log(job)
    assert _until(lambda: _psql_from("bare1", "db1"), lambda r: r.startswith("ok")) == (
        f"ok {address}"
    )
    deleted = AuditEntry.objects.filter(action=audit.HBA_CHANGED, output__contains="deleted")
    assert deleted.get().output.endswith(f"host all all {address}/32 reject")


def test_file_postgresql_refuses_is_put_back_and_never_loaded(
    cluster, dba, lab_files, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    _import(cluster, dba, capture)
    _reject_probe(cluster.hba, dba)
    assert _apply(cluster, dba, capture).status == Job.Status.SUCCEEDED
    files = _files(os.environ)
    before = {name: path.read_bytes() for name, path in files.items()}
    loaded = {name: _load_time(name) for name in ("db1", "db2")}
    # Valid for the console (it cannot know), refused by this server: SSL is off in the lab.
    rule = hba.Rule("hostssl", "all", "all", "10.0.0.0/8", method="scram-sha-256")
    assert hba_validate.validate(rule) == {}
    actions.save_rule(cluster.hba, replace(rule, comment="needs ssl"), position=1, actor=dba)
    job = _apply(cluster, dba, capture)
    assert job.status == Job.Status.FAILED
    assert "version 2 was refused" in job.error
    log = _log(job)
    assert "hostssl record cannot match because SSL is disabled" in log
    assert {name: path.read_bytes() for name, path in files.items()} == before
    assert {name: _load_time(name) for name in ("db1", "db2")} == loaded  # never reloaded
    assert "pg_hba.conf rejects connection" in _probe("db2")  # the old rules still in force
    db2 = HbaNodeVersion.objects.get(version__number=2, node__name="db2")
    assert db2.status == HbaNodeVersion.Status.REFUSED
    (error,) = db2.errors
    assert error["rule"] == 2 and error["rule_text"].startswith("hostssl all all 10.0.0.0/8")
    assert db2.text.splitlines()[error["line"] - 1].startswith("hostssl")
    assert "the old file was put back" in db2.detail and "not reloaded" in db2.detail
    db1 = HbaNodeVersion.objects.get(version__number=2, node__name="db1")
    assert db1.status == HbaNodeVersion.Status.SKIPPED  # the primary was never touched
    refused = AuditEntry.objects.get(action=audit.HBA_APPLY_REFUSED)
    assert refused.node == "db2" and "SSL is disabled" in refused.error


def test_a_line_refused_without_a_message_is_caught(
    cluster, dba, lab_files, django_capture_on_commit_callbacks, assert_no_secret_stored
):
    """Bypassing the validator: a version written straight to the database with a RADIUS
    server name that does not resolve. PostgreSQL 15 gives such a line no error text in
    pg_hba_file_rules (only a null type); the check catches it all the same."""
    _import(cluster, dba, django_capture_on_commit_callbacks)
    files = _files(os.environ)
    before = files["db2"].read_bytes()
    rules = cluster.hba.rules_list()
    options = (("radiusservers", "radius.invalid"), ("radiussecrets", "s3cr3t"))
    radius = hba.Rule("host", "all", "radius_users", "10.0.0.0/8", method="radius", options=options)
    version = HbaVersion.objects.create(
        ruleset=cluster.hba, number=7, rules=[rule_to_json(r) for r in [radius, *rules]]
    )
    result = apply_actions.apply_version(version, log=lambda line: None)
    assert result["status"] == "refused"
    nv = HbaNodeVersion.objects.get(version=version, node__name="db2")
    assert nv.errors[0]["rule"] == 1 and "gives no reason" in nv.errors[0]["error"]
    assert files["db2"].read_bytes() == before
    assert "s3cr3t" not in AuditEntry.objects.get(action=audit.HBA_APPLY_REFUSED).error
    assert_no_secret_stored("s3cr3t")


def test_invalid_rules_and_a_second_apply_never_reach_a_server(
    cluster, dba, lab_files, django_capture_on_commit_callbacks
):
    """A rule saved behind the validator's back (straight into the table) is refused at apply
    time, naming the rule, and nothing is queued; an apply while one is queued is refused."""
    capture = django_capture_on_commit_callbacks
    _import(cluster, dba, capture)
    bad = cluster.hba.rules.get(position=2)
    bad.options = [["map", "omicron"]]  # map is not valid with scram-sha-256
    bad.save()
    with pytest.raises(actions.HbaRefused, match="Rule 3 is not valid: options: map is only valid"):
        apply_actions.start_apply(cluster, confirm="lab-pg", actor=dba)
    assert not Job.objects.filter(kind="clusters.hba_apply").exists()
    assert not HbaVersion.objects.exists()
    bad.options = []
    bad.save()
    with capture(execute=False):
        apply_actions.start_apply(cluster, confirm="lab-pg", actor=dba)
    with pytest.raises(actions.HbaRefused, match="already queued or running"):
        apply_actions.start_apply(cluster, confirm="lab-pg", actor=dba)
    assert Job.objects.filter(kind="clusters.hba_apply").count() == 1


def test_rollback_to_an_earlier_version(
    cluster, dba, lab_files, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    _import(cluster, dba, capture)
    assert _apply(cluster, dba, capture).status == Job.Status.SUCCEEDED  # version 1
    first_rules = cluster.hba.rules_list()
    files = _files(os.environ)
    first_bytes = {name: path.read_bytes() for name, path in files.items()}
    _reject_probe(cluster.hba, dba)
    assert _apply(cluster, dba, capture).status == Job.Status.SUCCEEDED  # version 2
    assert "rejects connection" in _probe("db1")
    for name, path in files.items():
        assert path.read_bytes() != first_bytes[name]  # version 2 really changed each file
    with pytest.raises(actions.HbaRefused, match="Type the cluster's name"):
        apply_actions.start_rollback(cluster, 1, confirm="lab", actor=dba)
    with capture(execute=False):
        job = apply_actions.start_rollback(cluster, 1, confirm="lab-pg", actor=dba)
    job = _run(job, hba_apply.body)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert _probe("db1") == "ok" and _probe("db2") == "ok"
    # Each node's file is back to version 1 byte for byte: what was on disk after version 1
    # was applied, and what version 1 stored for that node.
    for name, path in files.items():
        stored = HbaNodeVersion.objects.get(version__number=1, node__name=name).text
        assert path.read_bytes() == first_bytes[name] == stored.encode()
    version = HbaVersion.objects.get(number=3)
    assert (version.kind, version.rolled_back_to, version.status) == ("rollback", 1, "applied")
    cluster.hba.refresh_from_db()
    assert cluster.hba.rules_list() == first_rules
    entry = AuditEntry.objects.get(action=audit.HBA_ROLLED_BACK)
    assert "rolled back to version 1" in entry.output


def test_hand_edit_over_ssh_shows_as_drift(
    cluster, dba, lab_files, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    _import(cluster, dba, capture)
    db2 = Node.objects.get(name="db2")
    path = str(_files(os.environ)["db2"])
    line = "host all hand_edit 10.9.9.9/32 trust"
    subprocess.run(
        ["ssh", "-i", os.environ["LAB_SSH_KEY"], "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={os.environ['LAB_DB2_SSH_KNOWN_HOSTS']}",
         "-o", "StrictHostKeyChecking=yes", f"root@{db2.address}",
         f"echo '{line}' >> {path}"],
        check=True, timeout=20,
    )  # fmt: skip
    with capture(execute=False):
        job = live_actions.start_read(cluster, adopt=False, actor=dba)
    assert _run(job, hba_read.body).status == Job.Status.SUCCEEDED
    report, between = live_actions.drift_report(cluster)
    by_name = {d.node.name: d for d in report}
    assert by_name["db1"].in_sync
    assert not by_name["db2"].in_sync
    assert by_name["db2"].changes == [f"only on the node: {line}"]
    assert f"-{line}" in by_name["db2"].diff
    (note,) = between
    assert "NOT as the console's targets intend" in note and "hand_edit" in note
