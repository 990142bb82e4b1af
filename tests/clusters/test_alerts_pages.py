"""The alert pages (open alerts, history, rules, maintenance windows) and who may use them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters import alerts
from clusters.models import AlertRule, Cluster, MaintenanceWindow
from console import audit
from console.models import AuditEntry
from tests.clusters import _alerts
from tests.clusters._alerts import _alert, _cluster

pytestmark = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions

# Every alert test runs with the default rules and the DBA list as recipient (autouse fixtures).
rules = _alerts.rules
alert_mail_to = _alerts.alert_mail_to


# --- pages and who may use them -------------------------------------------------------------------


@pytest.fixture
def some_alerts(rules):
    c1, c2 = _cluster("c1"), _cluster("c2")
    return [
        _alert(rules["wal_ready"], c1, "pending", "critical", "pending critical"),
        _alert(rules["disk_used"], c1, "firing", "warning", "firing warning"),
        _alert(rules["node_down"], c2, "firing", "critical", "firing critical"),
        _alert(rules["replication_lag"], c2, "cleared", "critical", "cleared long ago"),
    ]


def test_the_alerts_page_lists_open_alerts_firing_then_critical_first(client, dba, some_alerts):
    client.force_login(dba)
    page = client.get("/clusters/alerts/")
    assert page.status_code == 200
    order = [a.message for a in page.context["alerts"]]
    assert order == ["firing critical", "firing warning", "pending critical"]
    assert b"cleared long ago" not in page.content


def test_the_history_filters_and_pages_by_keyset(client, manager, some_alerts, rules):
    client.force_login(manager)
    page = client.get("/clusters/alerts/history/", {"state": "cleared"})
    assert [a.message for a in page.context["page"].rows] == ["cleared long ago"]
    page = client.get("/clusters/alerts/history/", {"rule": "node_down", "severity": "critical"})
    assert [a.message for a in page.context["page"].rows] == ["firing critical"]
    bad = client.get("/clusters/alerts/history/", {"severity": "dire"})
    assert bad.context["page"] is None and "severity" in bad.context["form"].errors
    c1 = Cluster.objects.get(name="c1")
    for n in range(55):
        _alert(rules["log_panic_fatal"], c1, "cleared", "warning", f"old {n}")
    first = client.get("/clusters/alerts/history/", {"cluster": c1.pk})
    assert len(first.context["page"].rows) == 50 and first.context["page"].older_before
    before = first.context["page"].older_before
    older = client.get("/clusters/alerts/history/", {"cluster": c1.pk, "before": before})
    assert len(older.context["page"].rows) == 2 + 55 - 50


def test_a_dba_edits_a_rule_and_a_bad_value_names_the_field(client, dba, rules):
    client.force_login(dba)
    rule = rules["replication_lag"]
    url = f"/clusters/alerts/rules/{rule.pk}/"
    form = {"warning": "5000000", "critical": "1000000", "for_seconds": "30", "enabled": "on",
            "notify": "on", "email_to": ""}  # fmt: skip
    refused = client.post(url, form)
    assert refused.status_code == 200
    assert "warning" in refused.context["form"].errors
    assert b"must not be above the critical" in refused.content
    assert AlertRule.objects.get(pk=rule.pk).warning == 1048576
    form["critical"] = "20000000"
    assert client.post(url, form).status_code == 302
    rule.refresh_from_db()
    assert (rule.warning, rule.critical, rule.for_seconds) == (5000000, 20000000, 30)
    assert AuditEntry.objects.get(action=audit.ALERT_RULE_CHANGED).actor_name == "dba"
    fixed = client.get(f"/clusters/alerts/rules/{rules['node_down'].pk}/")
    assert "warning" not in fixed.context["form"].fields


def test_a_manager_reads_the_rules_but_cannot_edit_or_maintain(client, manager, rules):
    client.force_login(manager)
    page = client.get("/clusters/alerts/rules/")
    assert page.status_code == 200 and not page.context["can_edit"]
    assert b"/clusters/alerts/rules/" + str(rules["disk_used"].pk).encode() not in page.content
    assert client.get(f"/clusters/alerts/rules/{rules['disk_used'].pk}/").status_code == 403
    assert client.post(f"/clusters/alerts/rules/{rules['disk_used'].pk}/", {}).status_code == 403
    assert client.get("/clusters/alerts/maintenance/").status_code == 200
    assert client.get("/clusters/alerts/maintenance/new/").status_code == 403


@pytest.mark.parametrize("persona", ["helpdesk", "outsider"])
def test_helpdesk_and_outsiders_see_no_alert_page(client, request, persona, rules):
    client.force_login(request.getfixturevalue(persona))
    for url in ("/clusters/alerts/", "/clusters/alerts/history/", "/clusters/alerts/rules/",
                "/clusters/alerts/maintenance/", "/clusters/alerts/maintenance/new/"):  # fmt: skip
        assert client.get(url).status_code == 403, url
    assert b'href="/clusters/alerts/"' not in client.get("/").content


def test_a_dba_creates_a_window_and_ends_it_with_field_errors_first(client, dba):
    cluster = _cluster("c1")
    client.force_login(dba)
    now = timezone.localtime().replace(second=0, microsecond=0)
    fmt = "%Y-%m-%dT%H:%M"
    form = {"cluster": cluster.pk, "starts": now.strftime(fmt),
            "ends": (now - timedelta(hours=1)).strftime(fmt), "reason": ""}  # fmt: skip
    refused = client.post("/clusters/alerts/maintenance/new/", form)
    assert set(refused.context["form"].errors) == {"ends", "reason"}
    assert not MaintenanceWindow.objects.exists()
    form.update(ends=(now + timedelta(hours=2)).strftime(fmt), reason="kernel update")
    assert client.post("/clusters/alerts/maintenance/new/", form).status_code == 302
    window = MaintenanceWindow.objects.get()
    assert (window.reason, window.created_by_name) == ("kernel update", "dba")
    assert alerts.in_maintenance(cluster) == window
    listed = client.get("/clusters/alerts/")
    assert b"kernel update" in listed.content
    assert client.get(f"/clusters/alerts/maintenance/{window.pk}/end/").status_code == 405
    assert client.post(f"/clusters/alerts/maintenance/{window.pk}/end/").status_code == 302
    assert client.post(f"/clusters/alerts/maintenance/{window.pk}/end/").status_code == 302
    assert alerts.in_maintenance(cluster) is None
    assert AuditEntry.objects.filter(action=audit.MAINTENANCE_ENDED).count() == 1
    assert client.post("/clusters/alerts/maintenance/999999/end/").status_code == 404
