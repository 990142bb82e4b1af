"""The security baseline's jobs, report, CSV export and pages, and who may use them, against
the lab's real servers (engine checks and fixes: test_baseline_mariadb.py,
test_baseline_fixes.py, test_baseline_postgresql.py)."""

import csv
import io

import pytest
from django.urls import reverse

from clusters.actions.baseline import FixFailed, check_node, fix_check
from clusters.models import BaselineResult, Node
from console import audit
from console.models import AuditEntry, Job
from tests.clusters import _baseline
from tests.clusters._baseline import lab_db

nodes = _baseline.nodes

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
