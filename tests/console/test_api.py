"""The REST API: token and session sign-in, the same gates as the pages, filters, the schema."""

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from console import audit
from console.models import AuditEntry, Credential, Job
from tests.factories import PASSWORD, make_audit_entry, make_job, make_log_line, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def _with_token(api: APIClient, user) -> APIClient:
    response = api.post("/api/token/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    api.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return api


# --- Token ----------------------------------------------------------------------------------


def test_token_is_issued_for_good_credentials(api, dba):
    response = api.post("/api/token/", {"username": "dba", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=dba).key


def test_token_creation_is_audited_without_the_token(api, dba):
    token = api.post("/api/token/", {"username": "dba", "password": PASSWORD}).json()["token"]
    entry = AuditEntry.objects.get(action=audit.AUTH_TOKEN_CREATED)
    assert entry.actor_name == "dba" and entry.source == "api"
    assert entry.target == "user:dba"
    assert all(token not in str(v) for v in AuditEntry.objects.values_list())


def test_asking_again_returns_the_same_token_and_audits_once(api, dba):
    first = api.post("/api/token/", {"username": "dba", "password": PASSWORD}).json()["token"]
    second = api.post("/api/token/", {"username": "dba", "password": PASSWORD}).json()["token"]
    assert first == second
    assert AuditEntry.objects.filter(action=audit.AUTH_TOKEN_CREATED).count() == 1


def test_wrong_password_gets_no_token_and_is_audited(api, dba):
    response = api.post("/api/token/", {"username": "dba", "password": "wrong-guess-1"})
    assert response.status_code == 400
    assert not Token.objects.exists()
    entry = AuditEntry.objects.get(action=audit.AUTH_LOGIN_FAILED)
    assert (entry.actor_name, entry.source, entry.status) == ("dba", "api", "failed")
    assert "wrong-guess-1" not in str(AuditEntry.objects.values_list())


def test_handing_out_an_existing_token_is_audited_as_a_sign_in(api, dba):
    api.post("/api/token/", {"username": "dba", "password": PASSWORD})
    api.post("/api/token/", {"username": "dba", "password": PASSWORD})
    entry = AuditEntry.objects.filter(action=audit.AUTH_LOGIN).latest("id")
    assert (entry.actor_name, entry.source) == ("dba", "api")


def test_token_endpoint_is_rate_limited_by_axes(api, dba):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        api.post("/api/token/", {"username": "dba", "password": "wrong"})
    response = api.post("/api/token/", {"username": "dba", "password": PASSWORD})
    assert response.status_code == 429
    assert not Token.objects.exists()
    entry = AuditEntry.objects.filter(action=audit.AUTH_LOCKED_OUT).latest("id")
    assert (entry.actor_name, entry.source) == ("dba", "api")


def test_token_endpoint_refuses_get(api):
    assert api.get("/api/token/").status_code == 405


# --- Jobs -----------------------------------------------------------------------------------


def test_anonymous_api_call_is_unauthorized(api):
    assert api.get("/api/jobs/").status_code == 401


def test_bad_token_is_unauthorized(api):
    api.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    assert api.get("/api/jobs/").status_code == 401


def test_jobs_with_a_token_show_only_my_jobs(api, helpdesk, dba):
    mine = make_job(user=helpdesk)
    make_job(user=dba)
    response = _with_token(api, helpdesk).get("/api/jobs/")
    assert response.status_code == 200
    assert [job["id"] for job in response.json()["results"]] == [mine.pk]


def test_jobs_with_a_session(api, dba, helpdesk):
    theirs = make_job(user=helpdesk)
    api.force_login(dba)
    response = api.get("/api/jobs/")
    assert [job["id"] for job in response.json()["results"]] == [theirs.pk]


def test_jobs_filter_by_status(api, dba):
    make_job(user=dba, status=Job.Status.SUCCEEDED)
    failed = make_job(user=dba, status=Job.Status.FAILED)
    api.force_login(dba)
    response = api.get("/api/jobs/", {"status": "failed"})
    assert [job["id"] for job in response.json()["results"]] == [failed.pk]


def test_jobs_bad_filter_is_a_400(api, dba):
    api.force_login(dba)
    assert api.get("/api/jobs/", {"status": "exploded"}).status_code == 400


def test_job_detail_has_its_log(api, helpdesk):
    job = make_job(user=helpdesk)
    make_log_line(job, "first line")
    make_log_line(job, "second line")
    response = _with_token(api, helpdesk).get(f"/api/jobs/{job.pk}/")
    assert response.status_code == 200
    assert [line["message"] for line in response.json()["log"]] == ["first line", "second line"]


def test_another_users_job_is_not_found_in_the_api(api, helpdesk):
    job = make_job(user=make_user(persona="helpdesk"))
    assert _with_token(api, helpdesk).get(f"/api/jobs/{job.pk}/").status_code == 404


def test_user_without_persona_may_not_list_jobs_in_the_api(api, outsider):
    assert _with_token(api, outsider).get("/api/jobs/").status_code == 403


def test_api_is_read_only(api, dba):
    job = make_job(user=dba)
    client = _with_token(api, dba)
    assert client.post("/api/jobs/", {"kind": "x"}).status_code == 405
    assert client.delete(f"/api/jobs/{job.pk}/").status_code == 405
    assert client.post("/api/audit/", {}).status_code == 405


# --- Audit ----------------------------------------------------------------------------------


def test_auditor_reads_audit_entries_with_a_token(api, auditor):
    entry = make_audit_entry("role.lock", target="role:alice")
    response = _with_token(api, auditor).get("/api/audit/", {"action": "role.lock"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == [entry.pk]
    assert results[0]["hash"] == entry.hash


def test_helpdesk_may_not_read_audit_entries_in_the_api(api, helpdesk):
    assert _with_token(api, helpdesk).get("/api/audit/").status_code == 403


def test_anonymous_audit_api_is_unauthorized(api):
    assert api.get("/api/audit/").status_code == 401


def test_audit_api_filters_like_the_page(api, dba):
    make_audit_entry("auth.login", actor_name="carol", status="succeeded")
    wanted = make_audit_entry("auth.login_failed", actor_name="carol", status="failed")
    make_audit_entry("auth.login_failed", actor_name="dave", status="failed")
    api.force_login(dba)
    response = api.get("/api/audit/", {"action": "auth.", "actor": "carol", "status": "failed"})
    assert [r["id"] for r in response.json()["results"]] == [wanted.pk]


def test_audit_api_time_filter_takes_iso_datetimes(api, dba):
    entry = make_audit_entry("time.test")
    api.force_login(dba)
    since = entry.created.isoformat()
    response = api.get("/api/audit/", {"action": "time.test", "since": since})
    assert [r["id"] for r in response.json()["results"]] == [entry.pk]
    response = api.get("/api/audit/", {"action": "time.test", "until": "2000-01-01T00:00:00Z"})
    assert response.json()["results"] == []


def test_audit_api_cursor_pages_do_not_repeat(api, dba):
    created = [make_audit_entry("page.test").pk for _ in range(7)]
    api.force_login(dba)
    response = api.get("/api/audit/", {"action": "page.test", "page_size": 3})
    seen = [r["id"] for r in response.json()["results"]]
    while response.json()["next"]:
        response = api.get(response.json()["next"])
        seen += [r["id"] for r in response.json()["results"]]
    assert seen == sorted(created, reverse=True)


def test_audit_api_bad_filter_is_a_400(api, dba):
    api.force_login(dba)
    response = api.get("/api/audit/", {"since": "last tuesday"})
    assert response.status_code == 400
    assert "since" in response.json()


# --- Schema ---------------------------------------------------------------------------------


def test_schema_is_openapi(api, helpdesk):
    api.force_login(helpdesk)
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/jobs/", "/api/jobs/{id}/", "/api/audit/", "/api/token/"} <= set(schema["paths"])


def test_schema_needs_a_sign_in(api):
    assert api.get("/api/schema/").status_code == 401


def test_no_serializer_exposes_a_credential_secret(api, dba):
    from console.crypto import encrypt

    secret = "s3cret-Pa55word-for-the-api-test"
    Credential.objects.create(name="db1-admin", kind="password", secret_token=encrypt(secret))
    make_job(user=dba, params={"credential": "db1-admin"})
    api.force_login(dba)
    bodies = [
        api.get("/api/jobs/").content,
        api.get("/api/audit/").content,
        api.get("/api/schema/").content,
    ]
    assert not any(secret.encode() in body for body in bodies)
    assert not any(b"secret_token" in body for body in bodies)
