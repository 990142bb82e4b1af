"""Shared by the alert tests (test_alerts*.py): the default rules and the DBA list as mail
recipient (autouse fixtures: every alert test module binds both, so each of its tests gets them),
the lab fixtures of the collector's tests, and small helpers that run a cycle with the rules'
evaluation, look up an open alert, or make a cluster and an alert row."""

import importlib

import pytest
from django.test import override_settings
from django.utils import timezone

from clusters import alerts
from clusters.collect import collect_cycle
from clusters.models import Alert, AlertRule, Cluster, Environment
from tests.clusters import test_collect

# The lab fixtures of the collector's tests: the demo clusters registered, db2 restored after.
demo = test_collect.demo
db2_stopped_then_restored = test_collect.db2_stopped_then_restored
DBA_LIST = "dba-team@example.org"
_defaults = importlib.import_module("clusters.migrations.0005_alert_defaults")


@pytest.fixture(autouse=True)
def rules(db):
    """The default rules as migration 0005 creates them (a transactional test's flush removes
    the rows a data migration wrote)."""
    _defaults.create_default_rules(django_apps(), None)
    return {r.key: r for r in AlertRule.objects.all()}


def django_apps():
    from django.apps import apps

    return apps


@pytest.fixture(autouse=True)
def alert_mail_to():
    with override_settings(ALERT_EMAIL_TO=[DBA_LIST]):
        yield


def _cluster(name: str) -> Cluster:
    env, _ = Environment.objects.get_or_create(name="test")
    return Cluster.objects.create(name=name, kind=Cluster.Kind.POSTGRESQL, environment=env)


def _cycle(nodes, **kwargs):
    result = collect_cycle(nodes, disk=kwargs.pop("disk", False))
    return alerts.evaluate(result, **kwargs)


def _open(key: str, **filters) -> Alert | None:
    return Alert.objects.filter(rule__key=key, cleared__isnull=True, **filters).first()


def _alert(rule: AlertRule, cluster: Cluster, state: str, severity: str, message: str) -> Alert:
    now = timezone.now()
    return Alert.objects.create(
        rule=rule, cluster=cluster, subject="cluster", state=state, severity=severity,
        message=message, first_seen=now, last_seen=now,
        raised=now if state == "firing" else None, cleared=now if state == "cleared" else None,
    )  # fmt: skip
