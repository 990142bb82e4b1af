"""Alert rules and maintenance windows refuse bad values (field named, nothing changed), a
change is audited once, and the default rules' migration is idempotent and reversible."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from clusters.actions.alerts import create_maintenance, update_rule
from clusters.models import AlertRule, MaintenanceWindow
from console import audit
from console.models import AuditEntry
from tests.clusters import _alerts
from tests.clusters._alerts import _alert, _cluster, _defaults, django_apps

pytestmark = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions

# Every alert test runs with the default rules and the DBA list as recipient (autouse fixtures).
rules = _alerts.rules
alert_mail_to = _alerts.alert_mail_to


# --- rules and windows refuse bad values ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "fields", "field"),
    [
        ("replication_lag", {"warning": 20.0, "critical": 10.0}, "warning"),
        ("disk_used", {"warning": -1.0}, "warning"),
        ("disk_used", {"critical": -5.0}, "critical"),
        ("disk_used", {"warning": None, "critical": None}, "warning"),
        ("node_down", {"warning": 1.0}, "warning"),
        ("node_down", {"email_to": "dba@example.org, not an address"}, "email_to"),
    ],
)
def test_a_rule_refuses_bad_values_and_nothing_changes(rules, dba, key, fields, field):
    rule = rules[key]
    before = AlertRule.objects.filter(pk=rule.pk).values().get()
    with pytest.raises(ValidationError) as refused:
        update_rule(rule, actor=dba, **fields)
    assert field in refused.value.message_dict
    assert AlertRule.objects.filter(pk=rule.pk).values().get() == before
    assert not AuditEntry.objects.filter(action=audit.ALERT_RULE_CHANGED).exists()


def test_changing_a_rule_is_audited_once(rules, dba):
    rule = rules["replication_lag"]
    assert update_rule(rule, warning=2097152.0, enabled=False, actor=dba) is True
    assert update_rule(rule, warning=2097152.0, enabled=False, actor=dba) is False
    entry = AuditEntry.objects.get(action=audit.ALERT_RULE_CHANGED)
    assert (entry.actor_name, entry.target) == ("dba", "alert-rule:replication_lag")
    assert (
        "warning: 1048576.0 -> 2097152.0" in entry.output
        and "enabled: True -> False" in entry.output
    )


def test_the_default_rules_migration_is_idempotent(rules):
    rules["disk_used"].warning = 70.0
    rules["disk_used"].save()
    _defaults.create_default_rules(django_apps(), None)
    assert AlertRule.objects.count() == 8
    assert AlertRule.objects.get(key="disk_used").warning == 70.0  # a DBA's change is kept
    lag = AlertRule.objects.get(key="replication_lag")
    assert (lag.warning, lag.critical) == (1048576, 10485760)


def test_reversing_the_defaults_removes_only_rules_that_never_raised_an_alert(rules):
    _alert(rules["node_down"], _cluster("c1"), "cleared", "critical", "history")
    _defaults.remove_unused_default_rules(django_apps(), None)
    assert list(AlertRule.objects.values_list("key", flat=True)) == ["node_down"]
    _defaults.create_default_rules(django_apps(), None)
    assert AlertRule.objects.count() == 8


def test_a_maintenance_window_needs_a_reason_and_an_end_after_its_start(db, dba):
    cluster = _cluster("c1")
    now = timezone.now()
    with pytest.raises(ValidationError) as refused:
        create_maintenance(cluster, starts=now, ends=now - timedelta(minutes=1), reason=" ",
                           actor=dba)  # fmt: skip
    assert set(refused.value.message_dict) == {"reason", "ends"}
    assert not MaintenanceWindow.objects.exists()
    first = create_maintenance(cluster, starts=now, ends=now + timedelta(hours=1),
                               reason="disk swap", actor=dba)  # fmt: skip
    again = create_maintenance(cluster, starts=now, ends=now + timedelta(hours=1),
                               reason="disk swap", actor=dba)  # fmt: skip
    assert first == again and MaintenanceWindow.objects.count() == 1
    assert AuditEntry.objects.filter(action=audit.MAINTENANCE_CREATED).count() == 1
