"""The MariaDB provisioning page: DBA only, bad input named on its field with nothing started,
a good request queues one job and opens its page, a failed job is re-run from the page."""

import pytest
from django.urls import reverse

from clusters.models import Cluster, Environment, Node
from clusters.provision.mariadb import KIND
from console import audit
from console.models import AuditEntry, Credential, Job
from tests.factories import make_job

URL = reverse("clusters:provision_mariadb")
PASSWORD = "Prov-Admin-pw-4217-xyzzy"


@pytest.fixture
def bare(db):
    return Node.objects.create(name="bare7", service=Node.Service.NONE, address="192.0.2.7",
                               known_hosts="")  # fmt: skip


def form(host: Node, **changes) -> dict:
    values = {
        "host": host.pk, "name": "shop", "environment": "lab", "bind_address": "", "port": 3306,
        "directory": "", "admin_user": "dba_admin", "admin_host": "%", "password": PASSWORD,
        "password_again": PASSWORD, "service_user": "mysql", "package": "",
    }  # fmt: skip
    return {**values, **changes}


def test_the_page_shows_the_form_and_bare_hosts_only(client, dba, bare):
    env = Environment.objects.create(name="lab")
    cluster = Cluster.objects.create(name="c1", kind=Cluster.Kind.MARIADB, environment=env)
    Node.objects.create(name="my7", service=Node.Service.MARIADB, cluster=cluster,
                        address="192.0.2.8", known_hosts="")  # fmt: skip
    client.force_login(dba)
    page = client.get(URL)
    assert page.status_code == 200
    hosts = list(page.context["form"].fields["host"].queryset)
    assert hosts == [bare]
    assert b"Provision MariaDB" in page.content


@pytest.mark.parametrize("persona", ["helpdesk", "manager", "auditor", None])
def test_only_a_dba_may_provision(client, bare, persona):
    from tests.factories import make_user

    client.force_login(make_user(persona=persona))
    assert client.get(URL).status_code == 403
    assert client.post(URL, form(bare)).status_code == 403
    assert not Job.objects.exists()


def test_wrong_method_is_refused(client, dba):
    client.force_login(dba)
    assert client.put(URL).status_code == 405
    assert client.get(reverse("clusters:provision_mariadb_rerun", args=[1])).status_code == 405


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": "Shop DB"}, "name", "Lower-case letters, digits and '-'"),
        ({"port": 70000}, "port", "less than or equal to 65535"),
        ({"bind_address": "192.0.2.99"}, "bind_address", "the console reaches the server at"),
        ({"bind_address": "not-an-ip"}, "bind_address", "is not an IP address"),
        ({"directory": "/etc"}, "directory", "/etc is a system directory"),
        ({"admin_user": "a b"}, "admin_user", "expected letters, digits"),
        ({"password_again": "other"}, "password_again", "The two passwords differ."),
    ],
)
def test_bad_input_is_named_and_nothing_starts(client, dba, bare, changes, field, message):
    client.force_login(dba)
    page = client.post(URL, form(bare, **changes))
    assert page.status_code == 200
    errors = page.context["form"].errors
    assert message in " ".join(errors[field]), errors
    assert not Job.objects.exists() and not Credential.objects.exists()
    assert PASSWORD.encode() not in page.content


def test_a_taken_name_is_named(client, dba, bare):
    env = Environment.objects.create(name="lab")
    Cluster.objects.create(name="shop", kind=Cluster.Kind.MARIADB, environment=env)
    client.force_login(dba)
    page = client.post(URL, form(bare))
    assert "a cluster named 'shop' is already registered" in " ".join(
        page.context["form"].errors["name"]
    )
    assert not Job.objects.exists()


def test_a_good_request_queues_one_job_and_opens_its_page(client, dba, bare):
    client.force_login(dba)
    page = client.post(URL, form(bare))
    job = Job.objects.get(kind=KIND)
    assert page.status_code == 302 and page.url == reverse("job_detail", args=[job.pk])
    assert job.params["bind_address"] == "192.0.2.7"
    assert job.params["directory"] == "/var/lib/mariadb-shop"
    assert job.params["node_name"] == "shop-bare7"
    assert PASSWORD not in str(job.params)
    credential = Credential.objects.get(name=job.params["credential"])
    assert credential.reveal() == PASSWORD and credential.username == "dba_admin"


def test_an_empty_password_is_generated_and_stored(client, dba, bare):
    client.force_login(dba)
    client.post(URL, form(bare, password="", password_again=""))
    job = Job.objects.get(kind=KIND)
    assert len(Credential.objects.get(name=job.params["credential"]).reveal()) == 32


def test_a_failed_job_is_rerun_from_the_page(client, dba, bare):
    client.force_login(dba)
    failed = make_job(kind=KIND, user=dba, status=Job.Status.FAILED, params={"name": "shop"})
    failed.steps.create(position=1, name="Detect the OS family", status="failed")
    page = client.get(URL)
    assert f"Re-run #{failed.pk}".encode() in page.content
    response = client.post(reverse("clusters:provision_mariadb_rerun", args=[failed.pk]))
    new = Job.objects.exclude(pk=failed.pk).get(kind=KIND)
    assert response.url == reverse("job_detail", args=[new.pk])
    assert new.params == {"name": "shop", "rerun_of": failed.pk}
    entry = AuditEntry.objects.get(action=audit.PROVISION_MARIADB_REQUESTED)
    assert entry.job_id == new.pk and entry.output.startswith(f"re-run of job #{failed.pk}")


def test_a_succeeded_job_is_not_rerun(client, dba):
    client.force_login(dba)
    done = make_job(kind=KIND, user=dba, status=Job.Status.SUCCEEDED)
    response = client.post(reverse("clusters:provision_mariadb_rerun", args=[done.pk]))
    assert response.status_code == 302 and response.url == reverse("job_detail", args=[done.pk])
    assert Job.objects.count() == 1
    other = make_job(kind="clusters.baseline_check", user=dba, status=Job.Status.FAILED)
    assert (
        client.post(reverse("clusters:provision_mariadb_rerun", args=[other.pk])).status_code == 404
    )
