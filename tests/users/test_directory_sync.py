"""The directory sync against the lab's real slapd: people and groups arrive, a person removed
or disabled becomes left, and the safety: a stopped slapd or a mass departure changes nothing,
is recorded as a held sync with its reason, and waits for a DBA."""

import pytest
from django.test import override_settings
from django.urls import reverse

from console.lab import faults, seed
from console.models import AuditEntry
from users import actions
from users.actions.directory import DISABLED, GONE
from users.models import DirectorySync, Person

pytestmark = pytest.mark.django_db

SEED_UIDS = sorted(p["uid"] for p in seed.LAB_PEOPLE)


def _states() -> dict[str, str]:
    return dict(Person.objects.values_list("uid", "state"))


def test_a_sync_creates_every_seed_person_with_their_groups(lab):
    run = actions.sync_directory()
    assert (run.status, run.seen, run.created, run.left) == ("applied", 13, 13, 0)
    assert sorted(Person.objects.values_list("uid", flat=True)) == SEED_UIDS
    zoe = Person.objects.get(uid="zoe")
    assert (zoe.name, zoe.mail, zoe.groups) == ("Zoë Ångström", "zoe@example.org",
                                                ["dba", "team-web"])  # fmt: skip
    assert Person.objects.get(uid="obrien").name == "Seán O'Brien"
    assert set(_states().values()) == {"active"}
    created = AuditEntry.objects.filter(action="person.synced", target="person:zoe").get()
    assert created.source == "ldap-sync" and "dba, team-web" in created.output
    assert AuditEntry.objects.filter(action="directory.synced").count() == 1


def test_a_second_sync_over_an_unchanged_directory_changes_nothing(lab):
    actions.sync_directory()
    entries = AuditEntry.objects.count()
    run = actions.sync_directory()
    assert (run.status, run.created, run.updated, run.left, run.returned) == ("applied", 0, 0, 0, 0)
    assert AuditEntry.objects.count() == entries + 1  # only the run's summary


def test_a_person_deleted_from_slapd_is_left_after_the_next_sync(lab, directory):
    actions.sync_directory()
    directory.remove("erin")
    run = actions.sync_directory()
    assert (run.status, run.left) == ("applied", 1)
    erin = Person.objects.get(uid="erin")
    assert (erin.state, erin.left_reason) == ("left", GONE) and erin.left_at is not None
    assert [u for u, s in _states().items() if s == "left"] == ["erin"]
    entry = AuditEntry.objects.get(action="person.left", target="person:erin")
    assert entry.output == GONE
    directory.restore()
    run = actions.sync_directory()
    assert run.returned == 1 and Person.objects.get(uid="erin").state == "active"


def test_removing_someone_from_a_group_updates_their_groups(lab, directory):
    actions.sync_directory()
    group = seed.group_dn("team-web")
    import ldap

    directory.conn.modify_s(group, [(ldap.MOD_DELETE, "member", [seed.person_dn("zoe").encode()])])
    try:
        run = actions.sync_directory()
        assert run.updated == 1 and Person.objects.get(uid="zoe").groups == ["dba"]
    finally:
        directory.conn.modify_s(group, [(ldap.MOD_ADD, "member",
                                         [seed.person_dn("zoe").encode()])])  # fmt: skip


def test_a_disabled_person_is_left(lab, directory):
    actions.sync_directory()
    directory.disable("tkowalski")
    actions.sync_directory()
    person = Person.objects.get(uid="tkowalski")
    assert (person.state, person.left_reason) == ("left", DISABLED)


def test_a_stopped_slapd_changes_nothing_and_holds_the_sync(lab, directory):
    actions.sync_directory()
    before = list(Person.objects.order_by("uid").values())
    faults.stop_server(lab, "ldap")
    try:
        run = actions.sync_directory()
    finally:
        faults.start_server(lab, "ldap")
    assert (run.status, run.hold_kind) == ("held", "unreachable")
    assert "cannot reach the directory" in run.reason and run.snapshot == []
    assert list(Person.objects.order_by("uid").values()) == before
    held = AuditEntry.objects.get(action="directory.sync_held")
    assert held.status == "failed" and "cannot reach the directory" in held.error
    assert actions.open_hold() == run
    # The directory is back: the next sync applies and closes the hold.
    again = actions.sync_directory()
    assert again.status == "applied" and actions.open_hold() is None
    run.refresh_from_db()
    assert run.status == "superseded"


def test_deleting_more_than_ten_percent_holds_until_a_dba_confirms(lab, directory, dba):
    actions.sync_directory()
    directory.remove("erin")
    directory.remove("imartin")  # 2 of 13: 15 %
    run = actions.sync_directory()
    assert (run.status, run.hold_kind, run.would_leave) == ("held", "too_many_left",
                                                            ["erin", "imartin"])  # fmt: skip
    assert "2 of 13 active people" in run.reason
    assert set(_states().values()) == {"active"}  # nothing changed
    assert not AuditEntry.objects.filter(action="person.left").exists()
    # The next sync finds the same: the same hold waits, refreshed, with no second alert.
    assert actions.sync_directory().pk == run.pk
    assert AuditEntry.objects.filter(action="directory.sync_held").count() == 1

    actions.confirm_directory_sync(run, actor=dba)
    run.refresh_from_db()
    assert (run.status, run.left, run.resolved_by_name) == ("confirmed", 2, dba.username)
    assert [u for u, s in sorted(_states().items()) if s == "left"] == ["erin", "imartin"]
    confirmed = AuditEntry.objects.get(action="directory.sync_confirmed")
    assert confirmed.actor_name == dba.username and "erin, imartin" in confirmed.output
    assert AuditEntry.objects.filter(action="person.left").count() == 2
    # Confirming again changes nothing more.
    entries = AuditEntry.objects.count()
    actions.confirm_directory_sync(run, actor=dba)
    assert AuditEntry.objects.count() == entries


@override_settings(PEOPLE_SYNC_MAX_LEFT_SHARE=0.10)
def test_a_dba_confirms_a_held_sync_on_its_page(lab, directory, dba, client):
    actions.sync_directory()
    for uid in ("erin", "imartin"):
        directory.remove(uid)
    run = actions.sync_directory()
    client.force_login(dba)
    page = client.get(reverse("users:person_list"))
    assert b"Directory sync held" in page.content
    url = reverse("users:sync_confirm", args=[run.pk])
    wrong = client.post(url, {"count": "1"})
    assert wrong.status_code == 400 and b"Type 2" in wrong.content
    assert set(_states().values()) == {"active"}
    assert client.post(url, {"count": "2"}).status_code == 302
    assert Person.objects.get(uid="imartin").state == "left"
    assert b"Directory sync held" not in client.get(reverse("users:person_list")).content


def test_a_dismissed_hold_applies_nothing(lab, directory, dba):
    actions.sync_directory()
    for uid in ("erin", "imartin"):
        directory.remove(uid)
    run = actions.dismiss_directory_sync(actions.sync_directory(), actor=dba)
    assert run.status == "dismissed" and set(_states().values()) == {"active"}
    with pytest.raises(actions.SyncRefused):
        actions.confirm_directory_sync(run, actor=dba)
    assert AuditEntry.objects.filter(action="directory.sync_dismissed").count() == 1


def test_a_helpdesk_user_cannot_confirm_a_held_sync(lab, directory, helpdesk, client):
    actions.sync_directory()
    for uid in ("erin", "imartin"):
        directory.remove(uid)
    run = actions.sync_directory()
    client.force_login(helpdesk)
    response = client.post(reverse("users:sync_confirm", args=[run.pk]), {"count": "2"})
    assert response.status_code == 403
    assert DirectorySync.objects.get(pk=run.pk).status == "held"


def test_the_sync_job_fails_with_the_reason_when_held(lab, directory):
    from console import jobs
    from tests.factories import make_job
    from users.tasks import sync_directory as sync_task

    actions.sync_directory()
    for uid in ("erin", "imartin"):
        directory.remove(uid)
    job = make_job(kind="users.sync_directory", status="pending")
    assert jobs.run_job(job.pk, sync_task.body) == "failed"
    job.refresh_from_db()
    assert "held" in job.error and "2 of 13" in job.error


def test_the_api_lists_people_and_a_held_sync_with_its_reason(lab, directory, helpdesk, client):
    actions.sync_directory()
    for uid in ("erin", "imartin"):
        directory.remove(uid)
    actions.sync_directory()
    client.force_login(helpdesk)
    people = client.get("/api/people/", {"q": "Ångström"}).json()["results"]
    assert [(p["uid"], p["groups"]) for p in people] == [("zoe", ["dba", "team-web"])]
    syncs = client.get("/api/directory-syncs/").json()["results"]
    assert [(s["status"], s["hold_kind"]) for s in syncs] == [("held", "too_many_left"),
                                                              ("applied", "")]  # fmt: skip
    assert syncs[0]["would_leave"] == ["erin", "imartin"] and "snapshot" not in syncs[0]
    assert client.get("/api/people/", {"state": "gone"}).status_code == 400


def test_the_home_page_shows_a_held_sync_to_those_who_may_see_it(lab, helpdesk, outsider, client):
    faults.stop_server(lab, "ldap")
    try:
        actions.sync_directory()
    finally:
        faults.start_server(lab, "ldap")
    client.force_login(helpdesk)
    home = client.get(reverse("home")).content.decode()
    assert "Directory sync held" in home and 'href="/people/"' in home  # banner and menu
    client.force_login(outsider)
    home = client.get(reverse("home")).content.decode()
    assert "Directory sync held" not in home and 'href="/people/"' not in home
