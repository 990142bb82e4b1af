"""Alerting against the lab: rules checked after each collection cycle raise and clear alerts,
audited and mailed through Django's email layer (the test outbox); maintenance windows silence a
cluster. Mail through a real SMTP server: test_alerts_mail.py; rules and windows that refuse
bad values: test_alerts_rules.py; the alert pages: test_alerts_pages.py.

The must-show of issue 4: db2's PostgreSQL stopped raises the no-sync-standby alert (firing,
audited, mailed) within two collection cycles, and started again clears it."""

import os
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from clusters import alerts
from clusters.actions.alerts import create_maintenance, end_maintenance, update_rule
from clusters.models import Alert, Cluster, Node
from clusters.tasks import collect as collect_task
from console import audit, jobs
from console.lab import faults
from console.lab.parts import pgha
from console.models import AuditEntry, Job
from tests.clusters import _alerts, test_collect
from tests.clusters._alerts import DBA_LIST, _cycle, _open
from tests.factories import make_job
from tests.lab.ha import ha_from_env

pytestmark = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions

# Every alert test runs with the default rules and the DBA list as recipient (autouse fixtures).
rules = _alerts.rules
alert_mail_to = _alerts.alert_mail_to

# The lab fixtures of the collector's tests: the demo clusters registered, db2 restored after.
demo = _alerts.demo
db2_stopped_then_restored = _alerts.db2_stopped_then_restored


def _cycles_until(nodes, check, cycles: int = 2) -> int:
    """Run up to `cycles` collection cycles, each followed by the evaluation; return how many
    it took until check() was true (0: never)."""
    for n in range(1, cycles + 1):
        _cycle(nodes)
        if check():
            return n
    return 0


def _mails(kind: str, key_title: str, outbox) -> list:
    return [m for m in outbox if f"] {kind} " in m.subject and key_title in m.subject]


# --- the must-show ------------------------------------------------------------------------------


def test_db2_stopped_raises_no_sync_standby_within_two_cycles_and_started_clears_it(
    demo, db2_stopped_then_restored, mailoutbox
):
    ha = db2_stopped_then_restored
    _cycle(demo)
    assert _open("no_sync_standby") is None and not mailoutbox

    faults.stop_server(ha.lab, "standby")
    took = _cycles_until(demo, lambda: getattr(_open("no_sync_standby"), "state", "") == "firing")
    assert took in (1, 2), "no_sync_standby not firing within two cycles"
    alert = _open("no_sync_standby")
    lab_pg = Cluster.objects.get(name="lab-pg")
    assert (alert.cluster, alert.subject, alert.severity) == (lab_pg, "cluster", "critical")
    assert "standby db2 is down" in alert.message and alert.raised is not None
    assert _open("node_down", node__name="db2").state == "firing"
    raised = AuditEntry.objects.get(action=audit.ALERT_RAISED, output__startswith="no_sync")
    assert (raised.source, raised.target) == ("schedule", "cluster:lab-pg")
    [fired] = _mails("FIRING", "No synchronous standby", mailoutbox)
    assert fired.to == [DBA_LIST] and "[lab-pg] FIRING critical" in fired.subject
    assert "standby db2 is down" in fired.body
    alert.refresh_from_db()
    assert alert.notified is not None and alert.notify_due == ""

    faults.start_server(ha.lab, "standby")
    pgha.wait_for_sync(ha.primary, timeout=30)
    test_collect._attach_standby_in_pgpool(ha)
    assert _cycles_until(demo, lambda: _open("no_sync_standby") is None) in (1, 2)
    alert.refresh_from_db()
    assert (alert.state, alert.cleared is not None) == ("cleared", True)
    assert _open("node_down", node__name="db2") is None
    cleared = AuditEntry.objects.get(action=audit.ALERT_CLEARED, output__startswith="no_sync")
    assert (cleared.source, cleared.target, cleared.id > raised.id) == (
        "schedule", "cluster:lab-pg", True,
    )  # fmt: skip
    [gone] = _mails("CLEARED", "No synchronous standby", mailoutbox)
    assert gone.to == [DBA_LIST]
    assert AuditEntry.objects.filter(action=audit.ALERT_NOTIFIED, status="succeeded").count() >= 2


# --- other conditions on the lab's real servers -----------------------------------------------


def _failed_login(lab_env) -> None:
    """A real FATAL line in db1's server log: a login with a wrong password."""
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host=lab_env["LAB_PG_HOST"], port=lab_env["LAB_PG_PORT"], user="postgres",
            password="wrong", dbname="postgres", connect_timeout=5,
        )  # fmt: skip


def test_a_fatal_line_in_the_server_log_raises_log_panic_fatal_then_clears(demo, lab_env):
    db1 = [n for n in demo if n.name == "db1"]
    _cycle(db1)  # places the log cursor at the end
    assert _open("log_panic_fatal") is None
    _failed_login(lab_env)
    deadline = time.monotonic() + 15  # the server writes the line on its own schedule
    while _open("log_panic_fatal") is None and time.monotonic() < deadline:
        _cycle(db1)
    alert = _open("log_panic_fatal")
    assert (alert.state, alert.severity, alert.node.name) == ("firing", "warning", "db1")
    assert "FATAL" in alert.message and alert.value >= 1
    assert AuditEntry.objects.filter(action=audit.ALERT_RAISED, node="db1").exists()
    _cycle(db1)  # no new line: the condition is gone
    alert.refresh_from_db()
    assert alert.state == "cleared"
    assert AuditEntry.objects.filter(action=audit.ALERT_CLEARED, node="db1").exists()


@pytest.fixture
def archiving_broken(lab, lab_env):
    """db1's archive_command fails (`false`) until the test ends; then it is reset."""
    ha = ha_from_env(lab_env, lab)
    pgha.query(ha.primary, "ALTER SYSTEM SET archive_command = 'false'")
    pgha.query(ha.primary, "SELECT pg_reload_conf()")
    yield ha
    pgha.query(ha.primary, "ALTER SYSTEM RESET archive_command")
    pgha.query(ha.primary, "SELECT pg_reload_conf()")


def _poll(nodes, check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        _cycle(nodes)
    return check()


def test_failing_archiving_raises_archive_failures_and_wal_ready_and_archiving_clears_them(
    demo, rules, archiving_broken
):
    ha, db1 = archiving_broken, [n for n in demo if n.name == "db1"]
    update_rule(rules["wal_ready"], warning=1, critical=3, for_seconds=0, actor=None)
    _cycle(db1)
    for _ in range(4):  # four segments wait: each switch after some WAL
        pgha.query(ha.primary, "SELECT txid_current()")
        pgha.query(ha.primary, "SELECT pg_switch_wal()")
    assert _poll(db1, lambda: _open("archive_failures") is not None, 20)
    alert = _open("archive_failures")
    assert (alert.state, alert.severity, alert.node.name) == ("firing", "warning", "db1")
    assert alert.message.startswith("archiving fails on db1")
    assert _poll(db1, lambda: getattr(_open("wal_ready"), "severity", "") == "critical", 10)
    assert (
        _open("wal_ready").value >= 4 and "wait to be archived on db1" in _open("wal_ready").message
    )

    pgha.query(ha.primary, "ALTER SYSTEM RESET archive_command")
    pgha.query(ha.primary, "SELECT pg_reload_conf()")  # wakes the archiver, which retries
    assert _poll(db1, lambda: _open("archive_failures") is None and _open("wal_ready") is None, 30)
    assert AuditEntry.objects.filter(action=audit.ALERT_CLEARED, node="db1").exists()


@pytest.fixture
def replay_paused(lab, lab_env):
    """db2 receives WAL but does not replay it until the test ends; the table the test fills on
    db1 is dropped afterwards."""
    ha = ha_from_env(lab_env, lab)
    pgha.query(ha.primary, "CREATE TABLE IF NOT EXISTS alert_lag (t text)")
    pgha.query(ha.standby, "SELECT pg_wal_replay_pause()")
    yield ha
    pgha.query(ha.standby, "SELECT pg_wal_replay_resume()")
    pgha.query(ha.primary, "DROP TABLE IF EXISTS alert_lag")


def _write_wal(ha, mib: int) -> None:
    """About `mib` MiB of WAL on db1, committed locally (the lab's commits wait for db2 to
    apply them, remote_apply, and db2 does not replay now)."""
    local = "-c synchronous_commit=local"
    with pgha.connect(ha.primary, autocommit=True, options=local) as conn:
        conn.execute("INSERT INTO alert_lag SELECT repeat('x', 900) FROM generate_series(1, %s)",
                     [mib * 1100])  # fmt: skip


def test_replay_lag_raises_a_warning_then_critical_on_one_alert_and_clears(
    demo, rules, replay_paused
):
    ha, nodes = replay_paused, [n for n in demo if n.name in ("db1", "db2")]
    update_rule(rules["replication_lag"], for_seconds=0, actor=None)
    _cycle(nodes)
    assert _open("replication_lag") is None
    _write_wal(ha, 3)
    assert _poll(nodes, lambda: _open("replication_lag") is not None, 15)
    alert = _open("replication_lag")
    assert (alert.state, alert.severity, alert.node.name) == ("firing", "warning", "db2")
    assert 1048576 < alert.value <= 10485760 and "behind its primary" in alert.message
    _write_wal(ha, 12)
    assert _poll(nodes, lambda: _open("replication_lag").severity == "critical", 15)
    assert _open("replication_lag").pk == alert.pk and alert.value < _open("replication_lag").value

    pgha.query(ha.standby, "SELECT pg_wal_replay_resume()")
    assert _poll(nodes, lambda: _open("replication_lag") is None, 30)
    assert AuditEntry.objects.filter(action=audit.ALERT_RAISED, node="db2").count() == 1
    assert AuditEntry.objects.filter(action=audit.ALERT_CLEARED, node="db2").count() == 1


@pytest.fixture
def db2_detached_from_pgpool(lab, lab_env):
    """pgpool-II on lb1 detaches backend 1 (db2), as after a failed health check; attached
    again afterwards."""
    ha = ha_from_env(lab_env, lab)
    part, rec = lab.parts["pgpool"], lab.load()["parts"]["pgpool"]
    part.pcp(rec, "detach_node", "-n", "1")
    yield ha
    test_collect._attach_standby_in_pgpool(ha)


def test_a_backend_pgpool_reports_down_raises_pgpool_backend_down(
    demo, db2_detached_from_pgpool, lab, mailoutbox
):
    lb1 = [n for n in demo if n.name == "lb1"]
    assert _poll(lb1, lambda: _open("pgpool_backend_down") is not None, 10)
    alert = _open("pgpool_backend_down")
    assert (alert.state, alert.severity, alert.node.name) == ("firing", "critical", "lb1")
    assert alert.subject == f"node:{alert.node_id}:backend:1" and "backend 1" in alert.message
    assert [m.subject for m in mailoutbox] == [
        "[lab-pg] FIRING critical: pgpool-II backend down on lb1"
    ]
    test_collect._attach_standby_in_pgpool(db2_detached_from_pgpool)
    assert _poll(lb1, lambda: _open("pgpool_backend_down") is None, 10)


def test_a_node_that_does_not_answer_raises_node_down(demo, rules, lab_env, mailoutbox):
    db1 = Node.objects.get(name="db1")
    # bare2 runs sshd only: its port 5432 refuses at once
    down = Node.objects.create(
        name="db9",
        service=Node.Service.POSTGRESQL,
        role=Node.Role.STANDBY,
        cluster=db1.cluster,
        address=os.environ["LAB_BARE2_SSH_HOST"],
        db_port=5432,
        known_hosts="",
        db_credential=db1.db_credential,
    )
    _cycle([down])
    alert = _open("node_down", node=down)
    assert (alert.state, alert.severity, alert.subject) == ("firing", "critical", f"node:{down.pk}")
    assert alert.message.startswith("db9 does not answer")
    assert [m.subject for m in mailoutbox] == ["[lab-pg] FIRING critical: Node down on db9"]


def test_alerts_of_a_node_that_is_down_are_left_as_they_are(demo, rules):
    update_rule(rules["disk_used"], warning=0, critical=None, actor=None)
    _cycle(demo, disk=True)
    disk_db2 = _open("disk_used", node__name="db2")
    assert disk_db2.state == "firing"
    db2 = Node.objects.get(name="db2")
    db2.status.state = "down"
    db2.status.save()
    alerts.evaluate(None)  # the stored view: db2 down, its disk unknown
    disk_db2.refresh_from_db()
    assert disk_db2.state == "firing"  # neither cleared nor changed


def test_the_collect_job_evaluates_the_rules_after_its_cycle(demo, rules):
    update_rule(rules["disk_used"], warning=0, critical=None, actor=None)
    job = make_job(kind="clusters.collect")
    assert jobs.run_job(job.pk, collect_task.body) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.result["alerts"]["raised"] >= 3  # db1, db2 and my1 use some disk
    raised = AuditEntry.objects.filter(action=audit.ALERT_RAISED, job_id=job.pk)
    assert {e.node for e in raised} >= {"db1", "db2", "my1"}


def test_evaluating_again_keeps_one_open_alert_and_one_raise(demo, rules, mailoutbox):
    update_rule(rules["disk_used"], warning=0, critical=None, actor=None)
    _cycle(demo, disk=True)
    first = _open("disk_used", node__name="db1")
    for _ in range(2):
        alerts.evaluate(None)
    assert Alert.objects.filter(rule__key="disk_used", node__name="db1").count() == 1
    raises = AuditEntry.objects.filter(action=audit.ALERT_RAISED, node="db1")
    assert raises.count() == 1
    assert len([m for m in mailoutbox if "on db1" in m.subject]) == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(
            rule=first.rule, cluster=first.cluster, subject=first.subject, severity="warning",
            message="a duplicate", first_seen=timezone.now(), last_seen=timezone.now(),
        )  # fmt: skip


def test_for_seconds_keeps_an_alert_pending_until_the_condition_held_that_long(demo, rules):
    update_rule(rules["disk_used"], warning=0, critical=None, for_seconds=600, actor=None)
    _cycle(demo, disk=True)
    alert = _open("disk_used", node__name="db1")
    assert (alert.state, alert.raised, alert.notify_due) == ("pending", None, "")
    assert not AuditEntry.objects.filter(action=audit.ALERT_RAISED).exists()
    alerts.evaluate(None, now=alert.first_seen + timedelta(seconds=599))
    alert.refresh_from_db()
    assert alert.state == "pending"
    alerts.evaluate(None, now=alert.first_seen + timedelta(seconds=600))
    alert.refresh_from_db()
    assert alert.state == "firing" and alert.raised == alert.first_seen + timedelta(seconds=600)
    assert AuditEntry.objects.filter(action=audit.ALERT_RAISED, node="db1").count() == 1


def test_a_maintenance_window_silences_raising_and_mails_once_it_ends(demo, rules, dba, mailoutbox):
    lab_pg = Cluster.objects.get(name="lab-pg")
    now = timezone.now()
    window = create_maintenance(lab_pg, starts=now, ends=now + timedelta(hours=1),
                                reason="minor upgrade", actor=dba)  # fmt: skip
    assert alerts.in_maintenance(lab_pg) == window
    update_rule(rules["disk_used"], warning=0, critical=None, actor=dba)
    _cycle(demo, disk=True)
    silenced = _open("disk_used", node__name="db1")
    assert (silenced.state, silenced.silenced, silenced.notified) == ("firing", True, None)
    raised = AuditEntry.objects.get(action=audit.ALERT_RAISED, node="db1")
    assert "silenced: maintenance: minor upgrade" in raised.output
    my1 = _open("disk_used", node__name="my1")  # lab-mariadb is not in maintenance
    assert my1.silenced is False
    assert [m.subject for m in mailoutbox] == ["[lab-mariadb] FIRING warning: "
                                               "Data directory disk use on my1"]  # fmt: skip

    assert end_maintenance(window, actor=dba) is True
    assert end_maintenance(window, actor=dba) is False  # safe to retry
    assert alerts.in_maintenance(lab_pg) is None
    alerts.evaluate(None)
    assert len([m for m in mailoutbox if m.subject.startswith("[lab-pg] FIRING")]) == 2  # db1, db2
    alerts.evaluate(None)
    assert len(mailoutbox) == 3  # once only
    actions = list(AuditEntry.objects.filter(action__startswith="maintenance.").order_by("id")
                   .values_list("action", "actor_name", "target"))  # fmt: skip
    assert actions == [("maintenance.created", "dba", "cluster:lab-pg"),
                       ("maintenance.ended", "dba", "cluster:lab-pg")]  # fmt: skip
