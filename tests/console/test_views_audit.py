"""The audit page: access, filters, keyset paging, exports and the verify button."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from console import audit
from console.models import AuditEntry, Job
from tests.factories import make_audit_entry

pytestmark = pytest.mark.django_db


def _export(client, fmt: str, **params) -> tuple:
    response = client.get(reverse("audit_export", args=[fmt]), params)
    return response, b"".join(response.streaming_content).decode()


def _listed_ids(response) -> list[int]:
    return [entry.pk for entry in response.context["page"].rows]


# --- Access ---------------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(reverse("audit_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_helpdesk_may_not_read_the_audit_log(client, helpdesk):
    client.force_login(helpdesk)
    assert client.get(reverse("audit_list")).status_code == 403


def test_refusal_page_keeps_the_console_layout(client, helpdesk):
    client.force_login(helpdesk)
    content = client.get(reverse("audit_list")).content.decode()
    assert "Not allowed" in content
    assert 'aria-label="Main"' in content


def test_auditor_sees_the_audit_log(client, auditor):
    entry = make_audit_entry("role.lock", target="role:alice", actor_name="bob")
    client.force_login(auditor)
    response = client.get(reverse("audit_list"))
    assert response.status_code == 200
    assert entry.pk in _listed_ids(response)
    assert b"role:alice" in response.content


def test_audit_page_refuses_post(client, dba):
    client.force_login(dba)
    assert client.post(reverse("audit_list")).status_code == 405


def test_entry_output_is_escaped(client, dba):
    make_audit_entry("remote.command", output="<script>alert(1)</script>", command="ls")
    client.force_login(dba)
    response = client.get(reverse("audit_list"))
    assert b"<script>alert(1)</script>" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content


# --- Filters --------------------------------------------------------------------------------


def test_filter_by_exact_actor(client, dba):
    mine = make_audit_entry(actor_name="carol")
    make_audit_entry(actor_name="carolyn")
    client.force_login(dba)
    assert _listed_ids(client.get(reverse("audit_list"), {"actor": "carol"})) == [mine.pk]


def test_filter_by_actor_prefix(client, dba):
    a = make_audit_entry(actor_name="carol")
    b = make_audit_entry(actor_name="carolyn")
    make_audit_entry(actor_name="dave")
    client.force_login(dba)
    assert _listed_ids(client.get(reverse("audit_list"), {"actor": "carol*"})) == [b.pk, a.pk]


def test_filter_by_action_prefix_with_a_dot(client, dba):
    login = make_audit_entry("auth.login")
    failed = make_audit_entry("auth.login_failed")
    make_audit_entry("role.lock")
    client.force_login(dba)
    ids = _listed_ids(client.get(reverse("audit_list"), {"action": "auth."}))
    assert set(ids) >= {login.pk, failed.pk}
    assert all(e.action.startswith("auth.") for e in AuditEntry.objects.filter(pk__in=ids))


def test_filter_by_exact_action(client, dba):
    make_audit_entry("auth.login")
    failed = make_audit_entry("auth.login_failed")
    client.force_login(dba)
    assert _listed_ids(client.get(reverse("audit_list"), {"action": "auth.login_failed"})) == [
        failed.pk
    ]


def test_filter_by_target_and_status(client, dba):
    make_audit_entry(target="node:db1", status="succeeded")
    failed = make_audit_entry(target="node:db1", status="failed")
    make_audit_entry(target="node:db2", status="failed")
    client.force_login(dba)
    response = client.get(reverse("audit_list"), {"target": "node:db1", "status": "failed"})
    assert _listed_ids(response) == [failed.pk]


def test_filter_by_time_range(client, dba):
    entry = make_audit_entry("time.test")
    client.force_login(dba)
    at = timezone.localtime(entry.created).replace(second=0, microsecond=0)
    fmt = "%Y-%m-%dT%H:%M"
    inside = {"action": "time.test", "since": at.strftime(fmt)}
    inside["until"] = (at + timedelta(minutes=1)).strftime(fmt)
    later = {"action": "time.test", "since": (at + timedelta(minutes=2)).strftime(fmt)}
    assert _listed_ids(client.get(reverse("audit_list"), inside)) == [entry.pk]
    assert _listed_ids(client.get(reverse("audit_list"), later)) == []


def test_bad_filter_shows_an_error_and_runs_no_query_on_entries(client, dba):
    client.force_login(dba)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("audit_list"), {"since": "yesterday-ish"})
    assert response.status_code == 200
    assert response.context["page"] is None
    assert "since" in response.context["form"].errors
    assert not any("console_auditentry" in q["sql"] for q in queries.captured_queries)


def test_until_before_since_is_refused(client, dba):
    client.force_login(dba)
    response = client.get(
        reverse("audit_list"), {"since": "2026-01-02T00:00", "until": "2026-01-01T00:00"}
    )
    assert "until" in response.context["form"].errors


# --- Keyset paging --------------------------------------------------------------------------


def test_pages_follow_each_other_without_repeating(client, dba):
    created = [make_audit_entry("page.test").pk for _ in range(120)]
    client.force_login(dba)
    first = client.get(reverse("audit_list"), {"action": "page.test"})
    page = first.context["page"]
    assert len(page.rows) == 50 and page.newer_after is None
    second = client.get(reverse("audit_list"), {"action": "page.test", "before": page.older_before})
    third = client.get(
        reverse("audit_list"),
        {"action": "page.test", "before": second.context["page"].older_before},
    )
    seen = _listed_ids(first) + _listed_ids(second) + _listed_ids(third)
    assert seen == sorted(created, reverse=True)
    assert third.context["page"].older_before is None


def test_newer_link_returns_to_the_previous_page(client, dba):
    for _ in range(60):
        make_audit_entry("page.test")
    client.force_login(dba)
    first = client.get(reverse("audit_list"), {"action": "page.test"})
    second = client.get(
        reverse("audit_list"), {"action": "page.test", "before": first.context["page"].older_before}
    )
    back = client.get(
        reverse("audit_list"), {"action": "page.test", "after": second.context["page"].newer_after}
    )
    assert _listed_ids(back) == _listed_ids(first)


def test_paging_uses_no_offset_and_no_count(client, dba):
    for _ in range(60):
        make_audit_entry("page.test")
    client.force_login(dba)
    first = client.get(reverse("audit_list"))
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("audit_list"), {"before": first.context["page"].older_before})
    audit_sql = [
        q["sql"].upper() for q in queries.captured_queries if "AUDITENTRY" in q["sql"].upper()
    ]
    assert audit_sql
    assert not any("OFFSET" in sql or "COUNT(" in sql for sql in audit_sql)


def test_bad_page_id_is_an_error_not_a_crash(client, dba):
    client.force_login(dba)
    response = client.get(reverse("audit_list"), {"before": "abc"})
    assert response.status_code == 200
    assert response.context["page"] is None


# --- Export ---------------------------------------------------------------------------------


def test_csv_export_holds_only_the_filtered_entries(client, dba):
    wanted = make_audit_entry("export.test", target="node:db1")
    make_audit_entry("export.test", target="node:db2")
    client.force_login(dba)
    response, body = _export(client, "csv", action="export.test", target="node:db1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="audit-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [int(r["id"]) for r in rows] == [wanted.pk]
    assert rows[0]["hash"] == wanted.hash


def test_jsonl_export_holds_only_the_filtered_entries(client, dba):
    old = make_audit_entry("export.test", status="failed")
    new = make_audit_entry("export.test", status="failed")
    make_audit_entry("export.test", status="succeeded")
    client.force_login(dba)
    response, body = _export(client, "jsonl", action="export.test", status="failed")
    lines = [json.loads(line) for line in body.splitlines()]
    assert [line["id"] for line in lines] == [old.pk, new.pk]
    assert lines[0]["status"] == "failed"


def test_export_is_audited_with_its_filters(client, dba):
    client.force_login(dba)
    _export(client, "jsonl", action="auth.", status="failed")
    entry = AuditEntry.objects.filter(action=audit.AUDIT_EXPORT).latest("id")
    assert entry.actor_name == "dba"
    assert entry.source == "ui"
    assert json.loads(entry.output) == {
        "format": "jsonl",
        "filters": {"action": "auth.", "status": "failed"},
    }


def test_export_does_not_include_its_own_audit_entry(client, dba):
    client.force_login(dba)
    _, body = _export(client, "jsonl", action=audit.AUDIT_EXPORT)
    assert body == ""


def test_csv_export_guards_against_formula_injection(client, dba):
    make_audit_entry("export.test", target='=HYPERLINK("http://x")', output="+1", error="@SUM")
    make_audit_entry("export.test", target="-2", node="plain")
    client.force_login(dba)
    _, body = _export(client, "csv", action="export.test")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows[0]["target"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["output"] == "'+1"
    assert rows[0]["error"] == "'@SUM"
    assert rows[1]["target"] == "'-2"
    assert rows[1]["node"] == "plain"


def test_export_streams_more_entries_than_one_batch(client, dba, monkeypatch):
    monkeypatch.setattr("console.views.EXPORT_BATCH", 7)
    for _ in range(20):
        make_audit_entry("batch.test")
    client.force_login(dba)
    _, body = _export(client, "jsonl", action="batch.test")
    ids = [json.loads(line)["id"] for line in body.splitlines()]
    assert len(ids) == 20 and ids == sorted(set(ids))


def test_unknown_export_format_is_not_found(client, dba):
    client.force_login(dba)
    assert client.get(reverse("audit_export", args=["xml"])).status_code == 404


def test_export_needs_the_export_permission(client, dba):
    dba.user_permissions.clear()
    group = dba.groups.get()
    group.permissions.remove(group.permissions.get(codename="export_auditentry"))
    client.force_login(dba)
    assert client.get(reverse("audit_export", args=["csv"])).status_code == 403


def test_helpdesk_may_not_export(client, helpdesk):
    client.force_login(helpdesk)
    assert client.get(reverse("audit_export", args=["csv"])).status_code == 403


def test_export_refuses_post(client, dba):
    client.force_login(dba)
    assert client.post(reverse("audit_export", args=["csv"])).status_code == 405


def test_export_with_bad_filters_exports_nothing(client, dba):
    client.force_login(dba)
    response = client.get(reverse("audit_export", args=["csv"]), {"since": "nope"})
    assert response.status_code == 302
    assert not AuditEntry.objects.filter(action=audit.AUDIT_EXPORT).exists()


# --- Verify ---------------------------------------------------------------------------------


def test_verify_enqueues_a_job_and_shows_it(client, dba, django_capture_on_commit_callbacks):
    client.force_login(dba)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("audit_verify"))
    job = Job.objects.get(kind="console.verify_audit")
    assert response.status_code == 302
    assert response["Location"] == reverse("job_detail", args=[job.pk])
    assert job.user == dba and job.status == Job.Status.PENDING
    assert len(callbacks) == 1  # sent to Celery only after the commit


def test_verify_refuses_get(client, dba):
    client.force_login(dba)
    assert client.get(reverse("audit_verify")).status_code == 405


def test_helpdesk_may_not_verify(client, helpdesk):
    client.force_login(helpdesk)
    assert client.post(reverse("audit_verify")).status_code == 403
    assert not Job.objects.exists()


def test_anonymous_verify_is_sent_to_sign_in(client):
    response = client.post(reverse("audit_verify"))
    assert response.status_code == 302
    assert not Job.objects.exists()
