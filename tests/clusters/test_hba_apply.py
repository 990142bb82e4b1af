"""pg_hba.conf on the lab's real db1 (primary) and db2 (standby): import with comments, apply
a rule and see PostgreSQL enforce it, a file PostgreSQL refuses put back and never loaded,
rollback, drift after a hand edit over SSH.

Every test starts from the lab's own files and puts them back afterwards (and reloads), since
later tests of the run rely on them."""

import ipaddress
import json
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from clusters import hba
from clusters.actions import hba as actions
from clusters.models import Cluster, HbaNodeVersion, HbaVersion, Node
from clusters.models.hba import rule_to_json
from clusters.tasks import hba_apply, hba_read
from console import audit, jobs
from console.lab.demo import register_demo
from console.lab.net import LabNet
from console.models import AuditEntry, Job, JobLogLine
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)

PROBE = "hba_probe"
PROBE_PASSWORD = "probe-password-8c1d"


def _superuser(host: str):
    return psycopg.connect(host=host, port=os.environ["LAB_PG_PORT"], dbname="postgres",
                           user="postgres", password=os.environ["LAB_PG_PASSWORD"],
                           connect_timeout=5, autocommit=True)  # fmt: skip


def _files(lab_env) -> dict[str, Path]:
    base = Path(lab_env["LAB_DIR"])
    return {"db1": base / "primary" / "data" / "pg_hba.conf",
            "db2": base / "standby" / "data" / "pg_hba.conf"}  # fmt: skip


def _hosts() -> dict[str, str]:
    return {"db1": os.environ["LAB_PG_HOST"], "db2": os.environ["LAB_PG_STANDBY_HOST"]}


def _load_time(name: str):
    with _superuser(_hosts()[name]) as conn:
        return conn.execute("SELECT pg_conf_load_time()").fetchone()[0]


@pytest.fixture
def lab_files(lab_env):
    """The lab's pg_hba.conf of db1 and db2 as they were; put back (and reloaded) afterwards,
    with the console's backup copies removed. Also a login role for probing, dropped after."""
    files = _files(lab_env)
    saved = {name: (path.read_bytes(), path.stat()) for name, path in files.items()}
    with _superuser(_hosts()["db1"]) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {PROBE}")
        conn.execute(f"CREATE ROLE {PROBE} LOGIN PASSWORD '{PROBE_PASSWORD}'")
    yield saved
    for name, path in files.items():
        text, stat = saved[name]
        path.write_bytes(text)
        os.chown(path, stat.st_uid, stat.st_gid)
        os.chmod(path, stat.st_mode)
        for extra in path.parent.glob("*pg_hba.conf*dbconsole*"):
            extra.unlink()
        with _superuser(_hosts()[name]) as conn:
            conn.execute("SELECT pg_reload_conf()")
    with _superuser(_hosts()["db1"]) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {PROBE}")


def _probe(name: str) -> str:
    """'ok' when hba_probe logs in to the node from the lab bridge, else the server's refusal."""
    try:
        with psycopg.connect(host=_hosts()[name], port=os.environ["LAB_PG_PORT"],
                             dbname="postgres", user=PROBE, password=PROBE_PASSWORD,
                             connect_timeout=5):  # fmt: skip
            return "ok"
    except psycopg.OperationalError as e:
        return str(e)


@pytest.fixture
def cluster(lab_env, lab_files):
    register_demo(os.environ)
    return Cluster.objects.get(name="lab-pg")


@pytest.fixture
def dba(db):
    return make_user("dana", persona="dba")


def _run(job: Job, body) -> Job:
    jobs.run_job(job.pk, body)
    job.refresh_from_db()
    return job


def _log(job: Job) -> str:
    return "\n".join(JobLogLine.objects.filter(job=job).values_list("message", flat=True))


def _import(cluster, dba, capture) -> Job:
    with capture(execute=False):
        job = actions.start_read(cluster, adopt=True, actor=dba)
    return _run(job, hba_read.body)


def _apply(cluster, dba, capture) -> Job:
    with capture(execute=False):
        job = actions.start_apply(cluster, confirm=cluster.name, actor=dba)
    return _run(job, hba_apply.body)


def _reject_probe(ruleset, dba):
    rule = hba.Rule("host", "all", PROBE, "10.0.0.0/8", method="reject",
                    comment="hba_probe may not log in (test)")  # fmt: skip
    return actions.save_rule(ruleset, rule, position=0, actor=dba)


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
    report, between = actions.drift_report(cluster)
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
    assert hba.validate(rule) == {}
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
    result = actions.apply_version(version, log=lambda line: None)
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
        actions.start_apply(cluster, confirm="lab-pg", actor=dba)
    assert not Job.objects.filter(kind="clusters.hba_apply").exists()
    assert not HbaVersion.objects.exists()
    bad.options = []
    bad.save()
    with capture(execute=False):
        actions.start_apply(cluster, confirm="lab-pg", actor=dba)
    with pytest.raises(actions.HbaRefused, match="already queued or running"):
        actions.start_apply(cluster, confirm="lab-pg", actor=dba)
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
        actions.start_rollback(cluster, 1, confirm="lab", actor=dba)
    with capture(execute=False):
        job = actions.start_rollback(cluster, 1, confirm="lab-pg", actor=dba)
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
        job = actions.start_read(cluster, adopt=False, actor=dba)
    assert _run(job, hba_read.body).status == Job.Status.SUCCEEDED
    report, between = actions.drift_report(cluster)
    by_name = {d.node.name: d for d in report}
    assert by_name["db1"].in_sync
    assert not by_name["db2"].in_sync
    assert by_name["db2"].changes == [f"only on the node: {line}"]
    assert f"-{line}" in by_name["db2"].diff
    (note,) = between
    assert "NOT as the console's targets intend" in note and "hand_edit" in note


# --- Pages and API (the same actions; no server is touched by these) ----------------------------


@pytest.fixture
def imported(cluster, dba, django_capture_on_commit_callbacks):
    _import(cluster, dba, django_capture_on_commit_callbacks)
    return cluster


def test_page_shows_rules_lint_and_drift_to_a_dba_and_a_manager(client, imported, dba):
    make_user("mona", persona="manager")
    ruleset = imported.hba
    actions.save_rule(ruleset, hba.Rule("host", "all", "all", "0.0.0.0/0", method="md5"),
                      actor=dba)  # fmt: skip
    url = f"/clusters/{imported.pk}/hba/"
    client.force_login(dba)
    page = client.get(url).content.decode()
    assert "TYPE  DATABASE" in page and "replicator" in page
    assert "open to every address" in page and "md5 where scram-sha-256 is possible" in page
    assert "missing on the node: host all all 0.0.0.0/0 md5" in page  # the new rule: drift
    assert "Add a rule" in page and "Edit" in page
    client.force_login(make_user("mona2", persona="manager"))
    page = client.get(url).content.decode()
    assert "replicator" in page and "Add a rule" not in page and "Import from the nodes" not in page
    assert (
        client.post(f"/clusters/{imported.pk}/hba/apply/", {"confirm": "lab-pg"}).status_code == 403
    )
    assert client.post(f"/clusters/{imported.pk}/hba/read/").status_code == 403
    client.force_login(make_user("hugo", persona="helpdesk"))
    assert client.get(url).status_code == 403
    client.force_login(dba)
    assert client.post(url).status_code == 405
    other = Cluster.objects.get(name="lab-mariadb")
    assert client.get(f"/clusters/{other.pk}/hba/").status_code == 404
    assert client.get(f"/clusters/{imported.pk + 999}/hba/").status_code == 404


def test_rule_form_names_each_bad_field_and_saves_nothing(client, imported, dba):
    client.force_login(dba)
    before = list(imported.hba.rules.values_list("pk", "database"))
    response = client.post(f"/clusters/{imported.pk}/hba/rules/new/", {
        "target": "both", "conn_type": "host", "database": "db one", "user": "all",
        "address": "10.0.0.300/8", "method": "md5", "options": "map=x",
    })  # fmt: skip
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"database", "address", "options"}
    assert "separate names with commas" in form.errors["database"][0]
    assert "not an IP address" in form.errors["address"][0]
    response = client.post(f"/clusters/{imported.pk}/hba/rules/new/", {
        "target": "both", "conn_type": "host", "database": "app", "user": "all",
        "address": "10.0.0.0/8", "method": "md5", "options": "map=x",
    })  # fmt: skip
    assert "only valid for method ident" in response.context["form"].errors["options"][0]
    assert list(imported.hba.rules.values_list("pk", "database")) == before
    assert not AuditEntry.objects.filter(action=audit.HBA_CHANGED).exists()


def test_editing_reordering_and_masked_secrets(client, imported, dba):
    client.force_login(dba)
    base = f"/clusters/{imported.pk}/hba"
    response = client.post(f"{base}/rules/new/", {
        "target": "standbys", "conn_type": "host", "database": "app", "user": "+readers",
        "address": "10.0.0.0/8", "method": "ldap", "position": "1",
        "options": 'ldapserver=ldap.example.org ldapbasedn="dc=example, dc=org" '
                   "ldapbinddn=cn=reader ldapbindpasswd=hunter22",
        "comment": "readers from the directory",
    })  # fmt: skip
    assert response.status_code == 302
    first = imported.hba.rules.get(position=0)
    assert (first.user, first.target) == ("+readers", "standbys")
    # The edit form shows the secret masked, and keeps it when sent back masked.
    page = client.get(f"{base}/rules/{first.pk}/").content.decode()
    assert "hunter22" not in page and "ldapbindpasswd=********" in page
    form = client.get(f"{base}/rules/{first.pk}/").context["form"]
    data = {**form.initial, "comment": "readers, from LDAP"}
    assert client.post(f"{base}/rules/{first.pk}/", data).status_code == 302
    first.refresh_from_db()
    assert ["ldapbindpasswd", "hunter22"] in first.options and first.comment == "readers, from LDAP"
    assert "hunter22" not in client.get(f"{base}/").content.decode()
    assert "hunter22" not in client.get(f"{base}/preview/").content.decode()
    assert not AuditEntry.objects.filter(output__contains="hunter22").exists()
    client.post(f"{base}/rules/{first.pk}/move/", {"position": "down"})
    first.refresh_from_db()
    assert first.position == 1
    client.post(f"{base}/rules/{first.pk}/delete/")
    assert not imported.hba.rules.filter(pk=first.pk).exists()
    assert AuditEntry.objects.filter(action=audit.HBA_CHANGED).count() == 4


def test_apply_needs_the_typed_name(client, imported, dba, django_capture_on_commit_callbacks):
    client.force_login(dba)
    response = client.post(f"/clusters/{imported.pk}/hba/apply/", {"confirm": "lab"})
    assert response.status_code == 302 and response.url.endswith("/hba/preview/")
    assert not Job.objects.filter(kind="clusters.hba_apply").exists()
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/clusters/{imported.pk}/hba/apply/", {"confirm": "lab-pg"})
    job = Job.objects.get(kind="clusters.hba_apply")
    assert response.url == f"/jobs/{job.pk}/" and job.params["version"] == 1


def test_api_edits_with_field_errors_and_applies(
    client, imported, dba, django_capture_on_commit_callbacks
):
    client.force_login(dba)
    url = f"/api/hba/{imported.pk}/"
    body = {"conn_type": "host", "address": "10.0.0.0/40", "method": "trust"}
    bad = client.post(f"{url}rules/", body, content_type="application/json")
    assert bad.status_code == 400 and "address" in bad.json()
    body = {"conn_type": "host", "database": "app", "user": "all", "address": "10.1.0.0/16",
            "method": "scram-sha-256", "position": 1}  # fmt: skip
    good = client.post(f"{url}rules/", body, content_type="application/json")
    assert good.status_code == 201 and good.json()["position"] == 1
    rule_id = good.json()["id"]
    moved = client.post(f"{url}move/", {"rule": rule_id, "position": 2},
                        content_type="application/json")  # fmt: skip
    assert [r["id"] for r in moved.json()["rules"]].index(rule_id) == 1
    data = client.get(url).json()
    assert data["rules"][1]["line"] == "host app all 10.1.0.0/16 scram-sha-256"
    assert data["drift"][0]["node"] == "db1"
    refused = client.post(f"{url}apply/", {"confirm": "nope"}, content_type="application/json")
    assert refused.status_code == 400 and "confirm" in refused.json()
    with django_capture_on_commit_callbacks(execute=False):
        accepted = client.post(f"{url}apply/", {"confirm": "lab-pg"},
                               content_type="application/json")  # fmt: skip
    assert accepted.status_code == 202 and accepted.json()["version"] == 1
    assert client.delete(f"{url}rules/{rule_id}/").status_code == 204


def test_postgresql_reads_rendered_rules_as_the_console_means_them(lab_files):
    """Differential check of the renderer against PostgreSQL's own parser: random rules
    (quoted names, keywords, groups, lists, CIDR and netmask addresses, host names, options
    with spaces and commas) rendered into db1's file, read back through pg_hba_file_rules.
    The file is never loaded (no reload) and the lab's file is put back afterwards."""
    import ipaddress
    import random

    rnd = random.Random(15)
    names = ["app", "my db", 'we"ird', "a,b", "x#y", "über", "all", "replication", "+grp"]

    def field(user: bool) -> tuple[str, list[str]]:
        tokens = []
        for _ in range(rnd.randint(1, 3)):
            name = rnd.choice(names)
            if name == "+grp" and not user:
                name = "grp"
            tokens.append(
                hba.Token(name, quoted=name in ("all", "replication") and rnd.random() < 0.5)
            )
        return hba.render_field(tokens), [t.text for t in tokens]

    addresses = ["10.0.0.0/8", "192.168.1.7/32", "::1/128", "all", "samenet", ".example.org",
                 ("10.1.0.0", "255.255.0.0")]  # fmt: skip
    rules, expected = [], []
    for _ in range(40):
        conn_type = rnd.choice(["local", "host", "hostnossl", "hostgssenc", "hostnogssenc"])
        (database, dbs), (user, users) = field(False), field(True)
        address = netmask = ""
        if conn_type != "local":
            choice = rnd.choice(addresses)
            address, netmask = choice if isinstance(choice, tuple) else (choice, "")
        method = rnd.choice(["trust", "reject", "md5", "scram-sha-256", "ldap"])
        options = ()
        if method == "ldap":
            options = (("ldapserver", "ldap.example.org"), ("ldapbasedn", "dc=example, dc=org"),
                       ("ldapbindpasswd", 'pw "x", y'))  # fmt: skip
        rule = hba.Rule(conn_type, database, user, address, netmask, method, options)
        assert hba.validate(rule) == {}, rule
        rules.append(rule)
        expected.append((conn_type, dbs, users, address, netmask, method, options))
    text, lines = hba.render(rules, header="differential test")
    _files(os.environ)["db1"].write_text(text)
    with _superuser(_hosts()["db1"]) as conn:
        rows = conn.execute(
            "SELECT line_number, type, database, user_name, address, netmask, auth_method, "
            "options, error FROM pg_hba_file_rules ORDER BY line_number"
        ).fetchall()
    assert [r[0] for r in rows] == lines
    for row, (conn_type, dbs, users, address, netmask, method, options) in zip(
        rows, expected, strict=True
    ):
        assert row[8] is None, row
        assert (row[1], row[2], row[3], row[6]) == (conn_type, dbs, users, method)
        if "/" in address:
            network = ipaddress.ip_network(address, strict=False)
            assert (row[4], row[5]) == (str(network.network_address), str(network.netmask))
        elif conn_type != "local":
            assert (row[4], row[5] or "") == (address, netmask)
        assert all(f"{k}={v}" in (row[7] or []) for k, v in options)
