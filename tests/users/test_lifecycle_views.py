"""Pages and API of the account lifecycle: who may do what, typed confirmation, form errors
naming the field, wrong methods, and the job each POST queues (its params, never a secret).
The jobs themselves run against the lab in test_lifecycle.py; nothing is sent to a server here
(the test's transaction never commits, so no job reaches Celery)."""

import pytest
from django.urls import reverse

from clusters.models import Cluster, Environment
from console.models import AuditEntry, Job
from tests.factories import make_job
from users.actions import lifecycle
from users.models import DatabaseAccount, Person

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts():
    env = Environment.objects.create(name="test")
    pg = Cluster.objects.create(name="pg-a", kind="postgresql", environment=env)
    my = Cluster.objects.create(name="my-a", kind="mariadb", environment=env)
    person = Person.objects.create(uid="ada", name="Ada")
    return {
        "personal": DatabaseAccount.objects.create(
            cluster=pg, name="ada", kind="personal", person=person
        ),
        "functional": DatabaseAccount.objects.create(
            cluster=pg, name="App 'svc'", kind="functional", purpose="app"
        ),
        "mariadb": DatabaseAccount.objects.create(cluster=my, name="web", host="%"),
    }


def _login(client, user):
    client.force_login(user)
    return client


def test_helpdesk_locks_a_personal_account_with_the_typed_name(client, helpdesk, accounts):
    account = accounts["personal"]
    _login(client, helpdesk)
    url = reverse("users:account_lock", args=[account.pk])
    refused = client.post(url, {"confirm": "ADA"})
    assert refused.status_code == 400 and b"Type the account name exactly" in refused.content
    assert not Job.objects.exists()
    response = client.post(url, {"confirm": "ada"})
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "job_detail", args=[job.pk]
    )
    assert (job.kind, job.params, job.user) == (
        "users.lock_account",
        {"account": account.pk},
        helpdesk,
    )
    assert client.get(url).status_code == 405


def test_helpdesk_may_not_lock_a_functional_account_nor_drop(client, helpdesk, accounts):
    _login(client, helpdesk)
    functional = accounts["functional"]
    lock = client.post(
        reverse("users:account_lock", args=[functional.pk]), {"confirm": functional.name}
    )
    assert lock.status_code == 403
    drop = client.post(
        reverse("users:account_drop", args=[accounts["personal"].pk]), {"confirm": "ada"}
    )
    assert drop.status_code == 403
    assert client.get(reverse("users:account_create")).status_code == 403
    assert not Job.objects.exists()


def test_outsider_and_manager_cannot_manage(client, outsider, manager, accounts):
    for user in (outsider, manager):
        _login(client, user)
        page = client.get(reverse("users:account_lifecycle", args=[accounts["personal"].pk]))
        assert page.status_code == 403
        unlock = client.post(reverse("users:account_unlock", args=[accounts["personal"].pk]))
        assert unlock.status_code == 403


def test_dba_page_shows_every_action_and_drop_needs_the_typed_name(client, dba, accounts):
    account = accounts["functional"]
    _login(client, dba)
    page = client.get(reverse("users:account_lifecycle", args=[account.pk]))
    assert page.status_code == 200
    for text in (b"Rotate the password", b"Drop the account", b"Privileges", b"Valid until"):
        assert text in page.content
    drop = reverse("users:account_drop", args=[account.pk])
    assert client.post(drop, {"confirm": "App"}).status_code == 400
    client.post(drop, {"confirm": account.name, "reassign_to": "heir"})
    job = Job.objects.get()
    assert job.params == {"account": account.pk, "reassign_to": "heir"}


def test_dba_creates_an_account_and_is_sent_to_the_one_time_password_page(client, dba, accounts):
    _login(client, dba)
    cluster = accounts["personal"].cluster
    url = reverse("users:account_create")
    bad = client.post(url, {"cluster": cluster.pk, "name": "é" * 40, "kind": "unclassified"})
    assert bad.status_code == 400 and b"at most 63 bytes" in bad.content
    no_person = client.post(url, {"cluster": cluster.pk, "name": "x", "kind": "personal"})
    assert b"A personal account needs its person" in no_person.content
    assert not Job.objects.exists()
    evil = 'x"; DROP TABLE t; --'
    response = client.post(
        url, {"cluster": cluster.pk, "name": evil, "kind": "personal", "person": "ada"}
    )
    job = Job.objects.get()
    assert response["Location"] == reverse("users:account_password", args=[job.pk])
    assert job.params["name"] == evil and job.params["person"] == "ada"
    assert "password" not in str(job.params).lower()
    waiting = client.get(response["Location"])
    assert b"pending" in waiting.content and waiting["Cache-Control"].startswith("max-age=0")


def test_the_one_time_password_page_shows_once_and_only_to_the_requester(
    client, dba, accounts, django_user_model
):
    from console import crypto
    from tests.factories import make_user

    job = make_job(
        user=dba,
        kind="users.rotate_password",
        status="succeeded",
        result={
            "account": accounts["functional"].pk,
            "login": "App 'svc'",
            "password_for": dba.pk,
            "password_token": crypto.encrypt("Sekr3tSekr3tSekr3t").decode(),
        },
    )
    other = make_user("dba2", persona="dba")
    _login(client, other)
    url = reverse("users:account_password", args=[job.pk])
    assert client.post(url).status_code == 404
    _login(client, dba)
    page = client.get(url)
    assert b"Show the password once" in page.content and b"Sekr3t" not in page.content
    shown = client.post(url)
    assert b"Sekr3tSekr3tSekr3t" in shown.content
    again = client.post(url)
    assert b"Sekr3t" not in again.content and b"shown once already" in again.content
    assert AuditEntry.objects.filter(action="account.password_shown").count() == 1


def test_rotate_refuses_a_personal_account(client, dba, accounts):
    _login(client, dba)
    response = client.post(reverse("users:account_rotate", args=[accounts["personal"].pk]))
    assert response.status_code == 302 and not Job.objects.exists()


def test_api_queues_the_same_jobs_and_validates_like_the_pages(client, dba, helpdesk, accounts):
    _login(client, dba)
    account = accounts["mariadb"]
    url = f"/api/accounts/{account.pk}/privileges/"
    bad = client.post(
        url,
        {"operation": "grant", "privileges": ["DROP"], "database": "app"},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "privileges" in bad.json()
    ok = client.post(
        url,
        {"operation": "grant", "privileges": ["SELECT"], "database": "app"},
        content_type="application/json",
    )
    assert ok.status_code == 202
    job = Job.objects.get(pk=ok.json()["job"])
    assert job.kind == "users.grant_privileges" and job.source == "api"
    assert job.params == {
        "account": account.pk,
        "privileges": ["SELECT"],
        "database": "app",
        "schema": "public",
    }
    rotate = client.post(f"/api/accounts/{accounts['functional'].pk}/rotate/")
    assert rotate.status_code == 202 and "password_url" in rotate.json()
    create = client.post(
        "/api/accounts/create/",
        {"cluster": account.cluster.pk, "name": "n", "kind": "unclassified"},
        content_type="application/json",
    )
    assert create.status_code == 202
    gone = client.post(create.json()["password_url"])
    assert gone.status_code == 409  # the job has not run
    assert client.get(f"/api/accounts/{account.pk}/lock/").status_code == 405
    _login(client, helpdesk)
    assert (
        client.post(
            f"/api/accounts/{account.pk}/lock/", {"confirm": "web"}, content_type="application/json"
        ).status_code
        == 403
    )
    personal = accounts["personal"]
    locked = client.post(
        f"/api/accounts/{personal.pk}/lock/", {"confirm": "ada"}, content_type="application/json"
    )
    assert locked.status_code == 202


def test_request_action_refuses_an_unknown_action(dba, accounts):
    with pytest.raises(ValueError):
        lifecycle.request_action(accounts["personal"], "truncate", {}, actor=dba)
