"""Job pages: the list with its filters and paging, the detail page and its live fragment."""

import pytest
from django.urls import reverse
from django.utils import timezone

from console.models import Job, JobLogLine
from tests.factories import make_job, make_log_line, make_user

pytestmark = pytest.mark.django_db


def _listed_ids(response) -> list[int]:
    return [job.pk for job in response.context["page"].rows]


# --- List -----------------------------------------------------------------------------------


def test_anonymous_job_list_is_sent_to_sign_in(client):
    response = client.get(reverse("job_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_user_without_persona_may_not_list_jobs(client, outsider):
    client.force_login(outsider)
    assert client.get(reverse("job_list")).status_code == 403


def test_job_list_refuses_post(client, helpdesk):
    client.force_login(helpdesk)
    assert client.post(reverse("job_list")).status_code == 405


def test_helpdesk_lists_only_their_own_jobs(client, helpdesk, dba):
    mine = make_job(user=helpdesk)
    make_job(user=dba)
    client.force_login(helpdesk)
    assert _listed_ids(client.get(reverse("job_list"))) == [mine.pk]


def test_dba_lists_every_job_newest_first(client, helpdesk, dba):
    first = make_job(user=helpdesk)
    second = make_job(user=dba)
    client.force_login(dba)
    assert _listed_ids(client.get(reverse("job_list"))) == [second.pk, first.pk]


def test_job_list_filters_by_status_kind_and_user(client, helpdesk, dba):
    wanted = make_job(user=helpdesk, kind="backups.run_backup", status=Job.Status.FAILED)
    make_job(user=helpdesk, kind="backups.run_backup", status=Job.Status.SUCCEEDED)
    make_job(user=dba, kind="backups.run_backup", status=Job.Status.FAILED)
    make_job(user=helpdesk, kind="console.verify_audit", status=Job.Status.FAILED)
    client.force_login(dba)
    response = client.get(
        reverse("job_list"), {"status": "failed", "kind": "backups.", "user": "helpdesk"}
    )
    assert _listed_ids(response) == [wanted.pk]


def test_job_list_pages_by_keyset(client, dba):
    created = [make_job(user=dba).pk for _ in range(55)]
    client.force_login(dba)
    first = client.get(reverse("job_list"))
    second = client.get(reverse("job_list"), {"before": first.context["page"].older_before})
    assert _listed_ids(first) + _listed_ids(second) == sorted(created, reverse=True)


def test_job_list_bad_status_is_a_form_error(client, dba):
    client.force_login(dba)
    response = client.get(reverse("job_list"), {"status": "exploded"})
    assert "status" in response.context["form"].errors
    assert response.context["page"] is None


# --- Detail ---------------------------------------------------------------------------------


def test_owner_sees_their_job(client, helpdesk):
    job = make_job(user=helpdesk, title="Verify the audit chain", params={"depth": 2})
    make_log_line(job, "started verifying")
    client.force_login(helpdesk)
    response = client.get(reverse("job_detail", args=[job.pk]))
    assert response.status_code == 200
    assert b"Verify the audit chain" in response.content
    assert b"started verifying" in response.content
    assert b"<progress" in response.content


def test_another_users_job_is_not_found(client, helpdesk):
    other = make_user(persona="helpdesk")
    job = make_job(user=other)
    client.force_login(helpdesk)
    assert client.get(reverse("job_detail", args=[job.pk])).status_code == 404
    assert client.get(reverse("job_live", args=[job.pk])).status_code == 404


def test_auditor_sees_another_users_job(client, auditor, helpdesk):
    job = make_job(user=helpdesk)
    client.force_login(auditor)
    assert client.get(reverse("job_detail", args=[job.pk])).status_code == 200


def test_job_detail_refuses_post(client, helpdesk):
    job = make_job(user=helpdesk)
    client.force_login(helpdesk)
    assert client.post(reverse("job_detail", args=[job.pk])).status_code == 405


def test_anonymous_job_detail_is_sent_to_sign_in(client, helpdesk):
    job = make_job(user=helpdesk)
    response = client.get(reverse("job_detail", args=[job.pk]))
    assert response.status_code == 302


def test_job_error_and_log_are_escaped(client, helpdesk):
    job = make_job(user=helpdesk, status=Job.Status.FAILED, error="<b>boom</b>")
    make_log_line(job, "<img src=x onerror=alert(1)>", JobLogLine.Level.ERROR)
    client.force_login(helpdesk)
    content = client.get(reverse("job_detail", args=[job.pk])).content
    assert b"<b>boom</b>" not in content and b"&lt;b&gt;boom&lt;/b&gt;" in content
    assert b"<img src=x" not in content


# --- Live fragment --------------------------------------------------------------------------


def test_running_job_fragment_keeps_polling(client, helpdesk):
    job = make_job(user=helpdesk, status=Job.Status.RUNNING, started=timezone.now(), progress=40)
    client.force_login(helpdesk)
    response = client.get(reverse("job_live", args=[job.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'hx-trigger="every 1s"' in html
    assert f'hx-get="{reverse("job_live", args=[job.pk])}"' in html
    assert 'hx-swap="outerHTML"' in html
    assert 'value="40"' in html
    assert "<html" not in html  # a fragment, not a page


def test_finished_job_fragment_stops_polling(client, helpdesk):
    now = timezone.now()
    job = make_job(user=helpdesk, status=Job.Status.SUCCEEDED, started=now, finished=now)
    client.force_login(helpdesk)
    html = client.get(reverse("job_live", args=[job.pk])).content.decode()
    assert 'id="job-live"' in html
    assert "hx-trigger" not in html and "hx-get" not in html


def test_fragment_shows_the_last_200_log_lines(client, helpdesk):
    job = make_job(user=helpdesk, status=Job.Status.RUNNING)
    JobLogLine.objects.bulk_create(JobLogLine(job=job, message=f"line {n:04d}") for n in range(250))
    client.force_login(helpdesk)
    html = client.get(reverse("job_live", args=[job.pk])).content.decode()
    assert "line 0249" in html and "line 0050" in html
    assert "line 0049" not in html
    assert html.index("line 0050") < html.index("line 0249")


def test_fragment_after_sign_out_sends_htmx_to_the_sign_in_page(client, helpdesk):
    job = make_job(user=helpdesk, status=Job.Status.RUNNING)
    response = client.get(reverse("job_live", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response.content == b""
    assert response["HX-Redirect"].startswith(reverse("login") + "?next=")


def test_fragment_without_htmx_redirects_anonymous_to_sign_in(client, helpdesk):
    job = make_job(user=helpdesk)
    response = client.get(reverse("job_live", args=[job.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_fragment_refuses_post(client, helpdesk):
    job = make_job(user=helpdesk)
    client.force_login(helpdesk)
    assert client.post(reverse("job_live", args=[job.pk])).status_code == 405


# --- Home -----------------------------------------------------------------------------------


def test_home_shows_my_recent_jobs_and_the_audit_tiles(client, dba):
    job = make_job(user=dba, title="My verify job")
    client.force_login(dba)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert response.context["recent_jobs"] == [job]
    assert b"Verify chain" in response.content
    assert b"Clusters" in response.content


def test_home_for_helpdesk_has_no_audit_section(client, helpdesk):
    client.force_login(helpdesk)
    response = client.get(reverse("home"))
    assert response.context["recent_audit"] == []
    assert reverse("audit_list").encode() not in response.content
    assert b"Verify chain" not in response.content


def test_home_refuses_post(client, helpdesk):
    client.force_login(helpdesk)
    assert client.post(reverse("home")).status_code == 405


def test_anonymous_home_is_sent_to_sign_in(client):
    assert client.get(reverse("home")).status_code == 302


def test_navigation_follows_personas(client, manager, helpdesk):
    client.force_login(manager)
    html = client.get(reverse("home")).content.decode()
    assert reverse("job_list") in html
    assert reverse("audit_list") not in html
    assert "Backups" in html and reverse("clusters:cluster_list") in html
    client.force_login(helpdesk)
    nav = client.get(reverse("home")).content.decode().split("<main")[0]
    assert "People" in nav and "Clusters" not in nav


def test_sign_out_is_a_post_form_with_csrf(client, manager):
    client.force_login(manager)
    html = client.get(reverse("home")).content.decode()
    form_start = html.index(f'action="{reverse("logout")}"')
    form = html[html.rindex("<form", 0, form_start) : html.index("</form>", form_start)]
    assert 'method="post"' in form and "csrfmiddlewaretoken" in form
