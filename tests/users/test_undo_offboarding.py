"""Undo of an offboarding, against the lab: every cluster at once (the offboarding's pool, one
executor session per account), audited, safe to retry. erin (test_offboarding's fixture: the
role erin on db1, replicated to db2, and the MariaDB user erin@% on my1) is offboarded, then:

- undone by a DBA: both logins work again, each unlock is audited with the DBA and the page's
  source: a read and the unlock per account;
- undone while my1 does not answer: db1 is unlocked while the MariaDB connection still waits
  (the undo ends at the connect timeout, not after it plus db1's time), the undo is refused
  naming the account and server, the run stays offboarded with db1's step recorded unlocked;
  the retry, my1 back, unlocks only erin@% (nothing is sent to db1 again) and ends the run undone;
- with the per-server deadline passed, nothing is sent and nothing changes.
"""

import time

import pytest
from django.test import override_settings
from django.utils import timezone

from console.lab import faults
from console.models import AuditEntry
from tests.users.test_offboarding import (  # noqa: F401  (erin is a fixture)
    DB_PASSWORD,
    UID,
    _my_refusal,
    _offboard_job,
    _pg_refusal,
    erin,
    my_connect,
    pg_connect,
)
from users.actions import offboarding
from users.models import DatabaseAccount, OffboardingRun

pytestmark = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions

MY_LOGIN = "'erin'@'%'"


def _offboarded(person, helpdesk) -> OffboardingRun:
    run = offboarding.start_offboarding(person, actor=helpdesk, confirmation=UID)
    assert _offboard_job(run).status == "succeeded"
    run.refresh_from_db()
    assert run.state == "offboarded"
    assert "not permitted to log in" in _pg_refusal(UID, DB_PASSWORD)
    assert _my_refusal(UID, DB_PASSWORD) == 4151
    return run


def _unlocks(since: int) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(pk__gt=since, action="account.unlocked",
                                          status="succeeded").order_by("pk"))  # fmt: skip


def test_undo_unlocks_every_server_with_a_read_and_an_unlock_each_audited(erin, helpdesk, dba):  # noqa: F811
    run = _offboarded(erin, helpdesk)
    before = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first()
    run = offboarding.undo_offboarding(run, actor=dba, confirmation=UID)
    assert run.state == "undone" and run.undone_by_name == "dba"
    pg_connect(UID, DB_PASSWORD).close()
    my_connect(UID, DB_PASSWORD).close()
    unlocks = _unlocks(before)
    assert sorted(e.node for e in unlocks) == ["db1", "my1"]
    assert all(e.actor_name == "dba" and e.source == "ui" for e in unlocks)
    assert {s.result for s in run.steps.filter(kind="lock")} == {"unlocked"}
    assert not DatabaseAccount.objects.filter(person=erin, kind="personal", locked=True).exists()
    # Per account: a read and the unlock (one executor session), each statement audited (intent
    # and outcome), nothing else.
    statements = AuditEntry.objects.filter(pk__gt=before, status="started").exclude(
        action__startswith="offboarding.")  # fmt: skip
    assert sorted(statements.values_list("node", "action")) == [
        ("db1", "account.state_read"), ("db1", "account.unlocked"),
        ("my1", "account.state_read"), ("my1", "account.unlocked"),
    ]  # fmt: skip
    undone = AuditEntry.objects.get(action="offboarding.undone", target="person:erin")
    assert undone.actor_name == "dba" and "2 account(s) unlocked" in undone.output
    # Twice changes nothing: the undone run comes back as it is, nothing is sent.
    entries = AuditEntry.objects.count()
    assert offboarding.undo_offboarding(run, actor=dba, confirmation=UID).state == "undone"
    assert AuditEntry.objects.count() == entries


@override_settings(EXECUTOR_CONNECT_TIMEOUT=3)
def test_undo_with_a_server_down_is_refused_and_a_retry_unlocks_only_the_rest(
    erin,  # noqa: F811
    helpdesk,
    dba,
    lab,
):
    run = _offboarded(erin, helpdesk)
    before = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first()
    started = time.monotonic()
    with faults.cut(lab, "my1"):
        with pytest.raises(offboarding.OffboardingRefused) as refused:
            offboarding.undo_offboarding(run, actor=dba, confirmation=UID)
        waited, ended = time.monotonic() - started, timezone.now()
    assert "could not unlock every account" in str(refused.value)
    assert MY_LOGIN in str(refused.value) and "my1" in str(refused.value)
    assert 3 <= waited < 10, waited  # the connect timeout, my1's cluster alone
    run.refresh_from_db()
    assert run.state == "offboarded"  # not undone while an account stays locked
    pg_step, my_step = run.steps.get(login=UID), run.steps.get(login=MY_LOGIN)
    assert pg_step.result == "unlocked" and my_step.result == "verified"
    assert my_step.unlocked_at is None
    # db1 was done while the MariaDB connection was still waiting, not after it.
    assert (ended - pg_step.unlocked_at).total_seconds() > 2
    pg_connect(UID, DB_PASSWORD).close()
    assert _my_refusal(UID, DB_PASSWORD) == 4151
    failed = AuditEntry.objects.filter(pk__gt=before, node="my1", status="failed")
    assert failed.exists()  # the attempt on my1 is audited as failed

    # The retry, my1 back: only erin@% is unlocked; nothing is sent to db1 again.
    middle = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first()
    run = offboarding.undo_offboarding(run, actor=dba, confirmation=UID)
    assert run.state == "undone"
    assert [e.node for e in _unlocks(middle)] == ["my1"]
    assert not AuditEntry.objects.filter(pk__gt=middle, node="db1").exists()
    my_connect(UID, DB_PASSWORD).close()
    assert "2 account(s) unlocked" in AuditEntry.objects.get(action="offboarding.undone").output


def test_past_the_per_server_deadline_nothing_is_sent(erin, helpdesk, dba, monkeypatch):  # noqa: F811
    run = _offboarded(erin, helpdesk)
    monkeypatch.setattr(offboarding, "SERVER_SECONDS", 0.0)
    before = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first()
    with pytest.raises(offboarding.OffboardingRefused) as refused:
        offboarding.undo_offboarding(run, actor=dba, confirmation=UID)
    assert "the deadline for this server has passed" in str(refused.value)
    run.refresh_from_db()
    assert run.state == "offboarded"
    assert "not permitted to log in" in _pg_refusal(UID, DB_PASSWORD)
    assert _my_refusal(UID, DB_PASSWORD) == 4151
    # The refusals are audited (the statement and why it was not sent), and no unlock.
    outcomes = AuditEntry.objects.filter(pk__gt=before, action="account.state_read",
                                         status="failed")  # fmt: skip
    assert sorted(outcomes.values_list("node", flat=True)) == ["db1", "my1"]
    assert not _unlocks(before)
