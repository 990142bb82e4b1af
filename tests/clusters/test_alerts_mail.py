"""Alert mail through a real SMTP server (aiosmtpd on loopback): what the server receives, and
a server that refuses, recorded once on the alert and in the audit log without breaking the
cycle. Mail through the test outbox is checked with each condition in test_alerts.py."""

import pytest
from django.test import override_settings

from clusters import alerts
from clusters.actions.alerts import update_rule
from console import audit
from console.models import AuditEntry
from tests._smtp import free_port
from tests.clusters import _alerts
from tests.clusters._alerts import DBA_LIST, _cycle, _open

pytestmark = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions

# Every alert test runs with the default rules and the DBA list as recipient (autouse fixtures).
rules = _alerts.rules
alert_mail_to = _alerts.alert_mail_to
demo = _alerts.demo


# --- mail through a real SMTP server ------------------------------------------------------------


def test_alert_mail_goes_through_a_real_smtp_server(demo, rules, smtp_server):
    controller, inbox = smtp_server
    smtp = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": controller.port,
        "DEFAULT_FROM_EMAIL": "dbconsole@example.org",
    }
    update_rule(rules["disk_used"], warning=0, critical=None, email_to="oncall@example.org",
                actor=None)  # fmt: skip
    with override_settings(**smtp):
        summary = _cycle([n for n in demo if n.name == "my1"], disk=True)
    assert (summary["mailed"], summary["mail_failed"]) == (1, 0)
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "dbconsole@example.org"
    assert envelope.rcpt_tos == ["oncall@example.org", DBA_LIST]
    text = envelope.content.decode()
    assert "Subject: [lab-mariadb] FIRING warning: Data directory disk use on my1" in text
    assert "Cluster:    lab-mariadb" in text


def test_a_mail_server_that_refuses_is_recorded_and_does_not_break_the_cycle(demo, rules):
    closed_port = free_port()
    update_rule(rules["disk_used"], warning=0, critical=None, actor=None)
    smtp = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": closed_port}  # fmt: skip
    with override_settings(**smtp):
        summary = _cycle(demo, disk=True)
        again = alerts.evaluate(None)
    assert summary["mailed"] == 0 and summary["mail_failed"] == summary["raised"] >= 3
    assert again["mail_failed"] == 0  # recorded once, not retried every cycle
    alert = _open("disk_used", node__name="db1")
    assert alert.state == "firing" and "ConnectionRefusedError" in alert.notify_error
    failed = AuditEntry.objects.filter(action=audit.ALERT_NOTIFIED, status="failed")
    assert failed.count() == summary["raised"] and "Connection refused" in failed[0].error
