"""Offboarding through the API, against the lab: the same gates, typed confirmation and actions
as the person page. erin (test_offboarding's fixture: a PostgreSQL role on db1 and a MariaDB
user on my1, owner of billing_app) is offboarded by a helpdesk user over the API, her logins
are then refused by the real servers, the state and steps read back over the API, and a DBA
undoes it over the API so that she logs in again. A bad confirmation is a 400 naming the field
and changes nothing; people without the permission get 403."""

import pytest

from console.models import AuditEntry, Job
from tests import factories
from tests.users.test_offboarding import (  # noqa: F401  (erin is a fixture)
    DB_PASSWORD,
    FUNCTIONAL,
    UID,
    _my_refusal,
    _offboard_job,
    _pg_refusal,
    erin,
    my_connect,
    pg_connect,
)
from users.models import OffboardingRun

pytestmark = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions

OFFBOARD = f"/api/people/{UID}/offboard/"
UNDO = f"/api/people/{UID}/offboard/undo/"
STATE = f"/api/people/{UID}/offboarding/"


def _post(client, url, data):
    return client.post(url, data, content_type="application/json")


def test_helpdesk_offboards_over_the_api_and_a_dba_undoes_it(client, erin, helpdesk, dba):  # noqa: F811
    client.force_login(helpdesk)
    assert client.get(STATE).json() == {"person": UID, "state": "active", "run": None}

    # A wrong or missing confirmation: 400 naming the field, nothing queued or recorded.
    for data in ({"confirmation": "someone-else"}, {}, {"confirmation": ""}):
        response = _post(client, OFFBOARD, data)
        assert response.status_code == 400 and "confirmation" in response.json(), data
    wrong = _post(client, OFFBOARD, {"confirmation": "eri"}).json()["confirmation"][0]
    assert f"type the person's uid, {UID}, to confirm" in wrong
    assert not OffboardingRun.objects.exists() and not Job.objects.exists()
    assert client.get(OFFBOARD).status_code == 405

    response = _post(client, OFFBOARD, {"confirmation": UID})
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["person"], body["state"], body["requested_by_name"]) == (
        UID,
        "requested",
        "helpdesk",
    )
    job = Job.objects.get(pk=body["job"])
    assert (job.kind, job.source, body["job_url"]) == (
        "users.offboard_person",
        "api",
        f"/jobs/{job.pk}/",
    )
    requested = AuditEntry.objects.get(action="offboarding.requested", target=f"person:{UID}")
    assert (requested.source, requested.actor_name) == ("api", "helpdesk")

    run = OffboardingRun.objects.get(pk=body["id"])
    assert _offboard_job(run).status == "succeeded"
    # The servers refuse her now, because the accounts are locked; billing_app still works.
    assert "not permitted to log in" in _pg_refusal(UID, DB_PASSWORD)
    assert _my_refusal(UID, DB_PASSWORD) == 4151  # ER_ACCOUNT_HAS_BEEN_LOCKED
    from console.lab import seed

    pg_connect(FUNCTIONAL, seed.SEED_DB_PASSWORDS[FUNCTIONAL]).close()

    state = client.get(STATE).json()
    assert state["run"]["state"] == "offboarded" and state["run"]["completed_at"]
    steps = {(s["kind"], s["login"]): s for s in state["run"]["steps"]}
    assert set(steps) == {("lock", UID), ("lock", "'erin'@'%'"), ("handover", FUNCTIONAL)}
    assert steps[("lock", UID)]["result"] == steps[("lock", "'erin'@'%'")]["result"] == "verified"
    assert steps[("lock", UID)]["servers"] == "db1, db2"
    assert "rolcanlogin=false" in steps[("lock", UID)]["evidence"]
    assert steps[("handover", FUNCTIONAL)]["result"] == "listed"

    # Again: the same run back, 200, no new job, nothing sent.
    entries = AuditEntry.objects.count()
    again = _post(client, OFFBOARD, {"confirmation": UID})
    assert again.status_code == 200 and again.json()["id"] == run.pk
    assert Job.objects.filter(kind="users.offboard_person").count() == 1
    assert AuditEntry.objects.count() == entries

    # Undo: a bad confirmation is refused and the accounts stay locked; then a DBA undoes it.
    client.force_login(dba)
    bad = _post(client, UNDO, {"confirmation": "nobody"})
    assert bad.status_code == 400 and list(bad.json()) == ["confirmation"]
    assert "not permitted to log in" in _pg_refusal(UID, DB_PASSWORD)
    undone = _post(client, UNDO, {"confirmation": UID})
    assert undone.status_code == 200, undone.content
    assert (undone.json()["state"], undone.json()["undone_by_name"]) == ("undone", "dba")
    assert {s["result"] for s in undone.json()["steps"] if s["kind"] == "lock"} == {"unlocked"}
    pg_connect(UID, DB_PASSWORD).close()  # she logs in again, on both engines
    my_connect(UID, DB_PASSWORD).close()
    entry = AuditEntry.objects.get(action="offboarding.undone", target=f"person:{UID}")
    assert (entry.source, entry.actor_name) == ("api", "dba")
    # Nothing left to undo: a conflict, said in words.
    nothing = _post(client, UNDO, {"confirmation": UID})
    assert nothing.status_code == 409 and "no offboarding to undo" in nothing.json()["detail"]


def test_only_helpdesk_and_dba_may_offboard_or_undo(client, erin, helpdesk):  # noqa: F811
    auditor = factories.make_user("auditor", persona="auditor")
    outsider = factories.make_user("outsider")
    client.force_login(outsider)
    assert client.get(STATE).status_code == 403
    assert _post(client, OFFBOARD, {"confirmation": UID}).status_code == 403
    client.force_login(auditor)  # sees the person and the state, may not act
    assert client.get(STATE).status_code == 200
    assert _post(client, OFFBOARD, {"confirmation": UID}).status_code == 403
    assert _post(client, UNDO, {"confirmation": UID}).status_code == 403
    assert not OffboardingRun.objects.exists()
    client.logout()
    assert client.get(STATE).status_code in (401, 403)
    client.force_login(helpdesk)
    assert client.get("/api/people/nobody-here/offboarding/").status_code == 404
    assert (
        _post(client, "/api/people/nobody-here/offboard/", {"confirmation": "x"}).status_code == 404
    )
