"""Offboarding against the lab (issue 6 part 4): erin, a seed person with the PostgreSQL role
`erin` on db1 (replicated to db2) and the MariaDB user erin@% on my1, owns the functional
account billing_app. She is removed from slapd, the next sync job starts her offboarding, and
the offboarding job locks her accounts, ends her open sessions (held by the test) and verifies
the locks on every server, while billing_app still logs in and is listed for hand-over.
Also: a MariaDB server that is down leaves the run incomplete with the reason until a retry
finds it up; a second run changes nothing; undo unlocks; the approval-required mode. Every
lock is undone at the end of each test, also when it fails."""

import csv
import io
import os
from collections.abc import Iterator

import MySQLdb
import psycopg
import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from psycopg import sql
from pypdf import PdfReader

from console import jobs
from console.lab import faults, seed
from console.models import AuditEntry, Job
from users import actions, tasks
from users.actions import offboarding
from users.models import DatabaseAccount, OffboardingRun, Person

pytestmark = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions

UID = "erin"
DB_PASSWORD = seed.SEED_DB_PASSWORDS[UID]
FUNCTIONAL = "billing_app"


def pg_connect(role: str, password: str, host: str | None = None) -> psycopg.Connection:
    return psycopg.connect(
        host=host or os.environ["LAB_PG_HOST"], port=int(os.environ["LAB_PG_PORT"]),
        dbname="postgres", user=role, password=password, autocommit=True, connect_timeout=5,
        sslmode="disable",
    )  # fmt: skip


def my_connect(user: str, password: str):
    return MySQLdb.connect(
        host=os.environ["LAB_MYSQL_HOST"], port=int(os.environ["LAB_MYSQL_PORT"]), user=user,
        password=password, connect_timeout=5, charset="utf8mb4",
    )  # fmt: skip


def _unlock_everywhere() -> None:
    """Put erin's seed accounts back as the lab made them (unlocked), bypassing the console."""
    with pg_connect(os.environ["LAB_PG_USER"], os.environ["LAB_PG_PASSWORD"]) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(UID)))
    admin = my_connect(os.environ["LAB_MYSQL_USER"], os.environ["LAB_MYSQL_PASSWORD"])
    try:
        admin.cursor().execute("ALTER USER %s@'%%' ACCOUNT UNLOCK", (UID,))
    finally:
        admin.close()


@pytest.fixture
def erin(demo, directory, dba) -> Iterator[Person]:
    """erin synced, the fleet's accounts imported, billing_app hers to hand over; her accounts
    unlocked again at the end whatever the test did."""
    try:
        assert actions.sync_directory().status == "applied"
        for cluster in demo.values():
            assert actions.import_accounts(cluster).status == "succeeded"
        person = Person.objects.get(uid=UID)
        billing = DatabaseAccount.objects.get(cluster__name="lab-pg", name=FUNCTIONAL)
        actions.mark_account_functional(billing, owner_person=person, owner_team="team-billing",
                                        purpose="billing application", actor=dba)  # fmt: skip
        personal = DatabaseAccount.objects.filter(person=person, kind="personal")
        assert sorted(a.login for a in personal) == ["'erin'@'%'", "erin"]
        yield person
    finally:
        _unlock_everywhere()


def _run_job(job: Job, body) -> Job:
    jobs.run_job(job.pk, body)
    job.refresh_from_db()
    return job


def _offboard_job(run: OffboardingRun) -> Job:
    run.refresh_from_db()
    return _run_job(run.job, tasks.offboard_person.body)


def _pg_refusal(role: str, password: str) -> str:
    with pytest.raises(psycopg.OperationalError) as refused:
        pg_connect(role, password).close()
    return str(refused.value)


def _my_refusal(user: str, password: str) -> int:
    with pytest.raises(MySQLdb.OperationalError) as refused:
        my_connect(user, password).close()
    return refused.value.args[0]


def _pg_session_gone(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def _my_session_gone(conn) -> bool:
    try:
        conn.cursor().execute("SELECT 1")
    except MySQLdb.OperationalError:
        return True
    return False


def test_a_person_removed_from_slapd_is_offboarded_by_the_next_sync(erin, directory):
    primary = pg_connect(UID, DB_PASSWORD)
    standby = pg_connect(UID, DB_PASSWORD, host=os.environ["LAB_PG_STANDBY_HOST"])
    mariadb = my_connect(UID, DB_PASSWORD)
    directory.remove(UID)
    sync = _run_job(Job.objects.create(kind="users.sync_directory", title="sync"),
                    tasks.sync_directory.body)  # fmt: skip
    assert sync.status == "succeeded" and sync.result["left"] == 1
    run = OffboardingRun.objects.get(person=erin)
    assert (run.state, run.source, run.job.status) == ("requested", "ldap-sync", "pending")

    job = _offboard_job(run)
    run.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert run.state == "offboarded" and run.completed_at is not None and run.reason == ""
    # The logins fail, for the reason that the account is locked (the test knows the password).
    assert "not permitted to log in" in _pg_refusal(UID, DB_PASSWORD)
    assert _my_refusal(UID, DB_PASSWORD) == 4151  # ER_ACCOUNT_HAS_BEEN_LOCKED
    # Her open sessions, on the primary, the standby and MariaDB, are gone.
    assert _pg_session_gone(primary) and _pg_session_gone(standby) and _my_session_gone(mariadb)
    # The functional account she owns still works and is listed for hand-over.
    pg_connect(FUNCTIONAL, seed.SEED_DB_PASSWORDS[FUNCTIONAL]).close()
    steps = {(s.kind, s.login): s for s in run.steps.all()}
    assert steps[("handover", FUNCTIONAL)].result == "listed"
    pg_step, my_step = steps[("lock", UID)], steps[("lock", "'erin'@'%'")]
    assert pg_step.result == my_step.result == "verified"
    assert pg_step.servers == "db1, db2" and my_step.servers == "my1"
    assert "db1: rolcanlogin=false, 0 session(s); db2: rolcanlogin=false" in pg_step.evidence
    assert my_step.evidence == "my1: account_locked=true, 0 session(s)"
    assert pg_step.sessions_ended == 2 and my_step.sessions_ended == 1
    assert pg_step.locked_before is False and pg_step.locked_at is not None
    # Her objects are kept: the role is locked, not dropped.
    assert DatabaseAccount.objects.get(cluster__name="lab-pg", name=UID).locked
    done = AuditEntry.objects.get(action="offboarding.completed", target="person:erin")
    assert "2 account(s) locked and verified, 0 not" in done.output
    assert AuditEntry.objects.filter(action="account.locked", status="succeeded").count() == 2
    assert not AuditEntry.objects.filter(output__contains=DB_PASSWORD).exists()


def test_a_directory_outage_offboards_nobody_and_the_next_sync_does(erin, directory, lab):
    """erin is removed from slapd, then slapd stops before the sync: the sync holds, she stays
    active, no offboarding starts and she still logs in everywhere. slapd back, the next sync
    finds her gone and her offboarding starts."""
    directory.remove(UID)
    faults.stop_server(lab, "ldap")
    try:
        held = _run_job(Job.objects.create(kind="users.sync_directory", title="sync"),
                        tasks.sync_directory.body)  # fmt: skip
    finally:
        faults.start_server(lab, "ldap")
    assert held.status == "failed" and "cannot reach the directory" in held.error
    erin.refresh_from_db()
    assert erin.state == "active" and not OffboardingRun.objects.exists()
    pg_connect(UID, DB_PASSWORD).close()
    my_connect(UID, DB_PASSWORD).close()
    assert not AuditEntry.objects.filter(action="account.locked").exists()
    sync = _run_job(Job.objects.create(kind="users.sync_directory", title="sync"),
                    tasks.sync_directory.body)  # fmt: skip
    assert sync.status == "succeeded" and sync.result["left"] == 1
    assert OffboardingRun.objects.get(person=erin).state == "requested"


def test_running_it_twice_changes_nothing_more(erin, helpdesk):
    run = offboarding.start_offboarding(erin, actor=helpdesk, confirmation=UID)
    assert _offboard_job(run).status == "succeeded"
    entries = AuditEntry.objects.count()
    again = offboarding.start_offboarding(erin, actor=helpdesk, confirmation=UID)
    assert again.pk == run.pk and again.state == "offboarded"
    assert offboarding.run_offboarding(again).state == "offboarded"
    assert AuditEntry.objects.count() == entries  # nothing sent, nothing recorded
    assert OffboardingRun.objects.filter(person=erin).count() == 1


def test_a_mariadb_server_down_leaves_it_incomplete_until_a_retry_succeeds(erin, helpdesk, lab):
    faults.stop_server(lab, "mariadb")
    try:
        run = offboarding.start_offboarding(erin, actor=helpdesk, confirmation=UID)
        job = _offboard_job(run)
        run.refresh_from_db()
        assert job.status == "failed" and "not offboarded yet" in job.error
        assert run.state == "incomplete" and "'erin'@'%' on lab-mariadb" in run.reason
        assert "cannot connect to my1" in run.reason and run.next_retry_at > timezone.now()
        assert "not permitted to log in" in _pg_refusal(UID, DB_PASSWORD)  # the rest is done
        assert offboarding.retry_offboardings() == []  # not due yet
    finally:
        faults.start_server(lab, "mariadb")
    # The retry time comes (moved, not waited for): the beat task queues the run again.
    OffboardingRun.objects.filter(pk=run.pk).update(next_retry_at=timezone.now())
    assert [r.pk for r in offboarding.retry_offboardings()] == [run.pk]
    run.refresh_from_db()
    assert run.state == "requested" and run.job_id != job.pk and run.job.source == "schedule"
    assert _offboard_job(run).status == "succeeded"
    run.refresh_from_db()
    assert (run.state, run.attempts, run.reason) == ("offboarded", 2, "")
    assert _my_refusal(UID, DB_PASSWORD) == 4151
    assert run.steps.get(login=UID).attempts == 1  # the PostgreSQL lock was not redone
    assert AuditEntry.objects.filter(action="offboarding.incomplete", status="failed").exists()


def test_undo_unlocks_what_the_offboarding_locked_and_is_audited(erin, helpdesk, dba):
    run = offboarding.start_offboarding(erin, actor=helpdesk, confirmation=UID)
    assert _offboard_job(run).status == "succeeded"
    with pytest.raises(offboarding.OffboardingRefused) as refused:
        offboarding.undo_offboarding(run, actor=dba, confirmation="eri")
    assert refused.value.field == "confirmation"
    run = offboarding.undo_offboarding(run, actor=dba, confirmation=UID)
    assert run.state == "undone" and run.undone_by_name == "dba"
    pg_connect(UID, DB_PASSWORD).close()
    my_connect(UID, DB_PASSWORD).close()
    entry = AuditEntry.objects.get(action="offboarding.undone", target="person:erin")
    assert entry.actor_name == "dba" and "2 account(s) unlocked" in entry.output
    # A new offboarding can start after an undo.
    again = offboarding.start_offboarding(erin, actor=helpdesk, confirmation=UID)
    assert again.pk != run.pk and again.state == "requested"


def test_an_account_locked_before_stays_locked_after_undo(erin, helpdesk, dba):
    with pg_connect(os.environ["LAB_PG_USER"], os.environ["LAB_PG_PASSWORD"]) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(UID)))
    run = offboarding.start_offboarding(erin, actor=helpdesk, confirmation=UID)
    assert _offboard_job(run).status == "succeeded"
    assert run.steps.get(login=UID).locked_before is True
    offboarding.undo_offboarding(run, actor=dba, confirmation=UID)
    assert "not permitted to log in" in _pg_refusal(UID, DB_PASSWORD)
    my_connect(UID, DB_PASSWORD).close()


def test_a_wrong_confirmation_is_refused_and_changes_nothing(erin, helpdesk):
    with pytest.raises(offboarding.OffboardingRefused) as refused:
        offboarding.start_offboarding(erin, actor=helpdesk, confirmation="Erin")
    assert refused.value.field == "confirmation" and "erin" in str(refused.value)
    assert not OffboardingRun.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="offboarding.").exists()


@override_settings(PEOPLE_OFFBOARD_APPROVAL=True)
def test_with_approval_required_the_sync_waits_for_a_person(erin, directory, helpdesk):
    directory.remove(UID)
    assert actions.sync_directory().left == 1
    run = OffboardingRun.objects.get(person=erin)
    assert (run.state, run.approval_required, run.job) == ("awaiting_approval", True, None)
    assert offboarding.retry_offboardings() == []  # waiting is not retried
    pg_connect(UID, DB_PASSWORD).close()  # nothing was locked
    run = offboarding.start_offboarding(erin, actor=helpdesk, confirmation=UID)
    assert run.approved_by_name == "helpdesk" and run.state == "requested"
    assert AuditEntry.objects.filter(action="offboarding.approved", actor_name="helpdesk").exists()
    assert _offboard_job(run).status == "succeeded"
    run.refresh_from_db()
    assert run.state == "offboarded"


# --- pages and evidence -------------------------------------------------------------------------


def _page(client, user, url, **kwargs):
    client.force_login(user)
    return client.get(url, **kwargs)


def test_the_helpdesk_offboards_from_the_person_page_with_a_typed_confirmation(
    erin, helpdesk, client
):
    client.force_login(helpdesk)
    url = reverse("users:person_offboard", args=[UID])
    assert client.get(url).status_code == 405
    refused = client.post(url, {"offboard-confirmation": "Erin Evans"})
    assert refused.status_code == 400 and "type the person&#x27;s uid, erin" in refused.text
    assert not OffboardingRun.objects.exists()
    response = client.post(url, {"offboard-confirmation": UID})
    assert response.status_code == 302
    run = OffboardingRun.objects.get(person=erin)
    assert run.requested_by_name == "helpdesk" and run.state == "requested"
    assert "running" in client.get(reverse("users:person_offboarding", args=[UID])).text
    assert _offboard_job(run).status == "succeeded"
    page = client.get(reverse("users:person_detail", args=[UID])).text
    assert "offboarded" in page and "db1: rolcanlogin=false" in page and FUNCTIONAL in page
    assert "Undo the offboarding" in page


def test_only_offboarders_may_offboard(erin, manager, auditor, client):
    for user in (manager, auditor):
        client.force_login(user)
        url = reverse("users:person_offboard", args=[UID])
        assert client.post(url, {"offboard-confirmation": UID}).status_code == 403
    assert not OffboardingRun.objects.exists()


def test_the_evidence_downloads_as_pdf_and_csv_for_auditors(erin, helpdesk, auditor, client):
    run = offboarding.start_offboarding(erin, actor=helpdesk, confirmation=UID)
    assert _offboard_job(run).status == "succeeded"
    # A name that a spreadsheet would run as a formula is guarded in the CSV.
    run.steps.filter(kind="handover").update(login="=HYPERLINK(1)")
    pdf_url = reverse("users:offboarding_evidence_pdf", args=[UID, run.pk])
    csv_url = reverse("users:offboarding_evidence_csv", args=[UID, run.pk])
    response = _page(client, auditor, pdf_url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    text = " ".join(text.split())
    for expected in ("Offboarding evidence: erin (Erin Evans)", "Offboarded", "helpdesk",
                     "lab-pg", "lab-mariadb", "'erin'@'%'", "db1: rolcanlogin=false",
                     "my1: account_locked=true", "not a login attempt"):  # fmt: skip
        assert expected in text, expected
    rows = list(csv.DictReader(io.StringIO(_page(client, auditor, csv_url).text)))
    assert {(r["account"], r["result"]) for r in rows} == {
        ("erin", "verified"),
        ("'erin'@'%'", "verified"),
        ("'=HYPERLINK(1)", "listed"),
    }
    assert {r["requested_by"] for r in rows} == {"helpdesk"}
    exported = AuditEntry.objects.filter(
        action="offboarding.evidence_exported", actor_name="auditor"
    )
    assert exported.count() == 2


def test_the_evidence_is_not_for_everyone(erin, helpdesk, manager, outsider, client):
    run = offboarding.start_offboarding(erin, actor=helpdesk, confirmation=UID)
    url = reverse("users:offboarding_evidence_csv", args=[UID, run.pk])
    assert _page(client, manager, url).status_code == 403
    assert _page(client, outsider, url).status_code == 403
    other = reverse("users:offboarding_evidence_csv", args=["alice", run.pk])
    assert _page(client, helpdesk, other).status_code == 404  # another person's run


def test_the_offboardings_list_shows_incomplete_runs_with_their_reason(erin, helpdesk, client):
    run = offboarding.start_offboarding(erin, actor=helpdesk, confirmation=UID)
    OffboardingRun.objects.filter(pk=run.pk).update(state="incomplete", reason="my1 is down")
    page = _page(client, helpdesk, reverse("users:offboarding_list"))
    assert page.status_code == 200 and "my1 is down" in page.text and "Incomplete" in page.text
    assert "Offboardings" in _page(client, helpdesk, reverse("users:person_list")).text


@override_settings(PEOPLE_SYNC_MAX_LEFT_SHARE=0.0)
def test_a_held_sync_confirmed_by_a_dba_starts_the_offboarding(erin, directory, dba):
    directory.remove(UID)
    held = actions.sync_directory()
    assert held.status == "held" and not OffboardingRun.objects.exists()  # nothing yet
    actions.confirm_directory_sync(held, actor=dba)
    run = OffboardingRun.objects.get(person=erin)
    assert (run.state, run.source) == ("requested", "ldap-sync")
    assert _offboard_job(run).status == "succeeded"


@override_settings(EXECUTOR_CONNECT_TIMEOUT=3)
def test_a_server_that_does_not_answer_delays_only_its_own_cluster(erin, helpdesk, lab):
    """my1's link is cut (connections time out, nothing refuses them): PostgreSQL is locked
    and verified while the MariaDB connection is still waiting, and the job ends at the
    connect timeout, with my1's step failed and the run incomplete."""
    run = offboarding.start_offboarding(erin, actor=helpdesk, confirmation=UID)
    with faults.cut(lab, "my1"):
        job = _offboard_job(run)
    run.refresh_from_db()
    assert run.state == "incomplete" and "my1" in run.reason
    pg_step = run.steps.get(login=UID)
    assert pg_step.result == "verified"
    waited = (job.finished - job.started).total_seconds()
    assert 3 <= waited < 10, waited
    assert (job.finished - pg_step.verified_at).total_seconds() > 2  # done while my1 waited
