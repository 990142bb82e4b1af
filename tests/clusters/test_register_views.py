"""The registration pages: form, host key confirmation, discovered topology, rediscovery."""

import os
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from clusters.models import Cluster, ClusterDrift, Environment, Node, PendingRegistration
from clusters.tasks import discover_registration
from console import jobs
from console.models import Credential, Job
from tests import factories


@pytest.fixture
def form_data(lab_env) -> dict:
    return {
        "name": "pg-web", "kind": "postgresql", "environment": "lab",
        "address": lab_env["LAB_PG_HOST"], "ssh_port": 22, "ssh_user": "root",
        "ssh_key": Path(lab_env["LAB_SSH_KEY"]).read_text(),
        "db_port": lab_env["LAB_PG_PORT"], "db_user": lab_env["LAB_PG_USER"],
        "db_password": lab_env["LAB_PG_PASSWORD"],
        "pgpool_address": os.environ["LAB_PGPOOL_HOST"],
        "pgpool_port": os.environ["LAB_PGPOOL_PORT"],
    }  # fmt: skip


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
def test_a_dba_registers_a_cluster_through_the_pages(
    dba, form_data, django_capture_on_commit_callbacks
):
    client = _client(dba)
    response = client.post(reverse("clusters:registration_start"), form_data)
    pending = PendingRegistration.objects.get()
    assert response.url == reverse("clusters:registration_detail", args=[pending.pk])
    page = client.get(response.url).content.decode()
    assert "SHA256:" in page and form_data["db_password"] not in page

    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("clusters:registration_confirm", args=[pending.pk]))
    job = Job.objects.get(kind="clusters.discover_registration")
    assert jobs.run_job(job.pk, discover_registration.body) == Job.Status.SUCCEEDED
    page = client.get(reverse("clusters:registration_detail", args=[pending.pk])).content.decode()
    assert "Discovered topology" in page and os.environ["LAB_PG_STANDBY_HOST"] in page

    response = client.post(reverse("clusters:registration_register", args=[pending.pk]))
    assert response.url == reverse("clusters:cluster_list")
    assert Cluster.objects.get(name="pg-web").nodes.count() == 3
    page = client.get(response.url).content.decode()
    assert "pg-web" in page and form_data["ssh_key"].splitlines()[1] not in page


@pytest.mark.django_db
def test_an_unreachable_primary_redisplays_the_form_without_the_secrets(dba, form_data):
    data = {**form_data, "address": os.environ["LAB_BARE2_SSH_HOST"], "ssh_port": 5432}
    response = _client(dba).post(reverse("clusters:registration_start"), data)
    page = response.content.decode()
    assert response.status_code == 200 and "Nothing was saved" in page
    assert form_data["db_password"] not in page
    assert form_data["ssh_key"].splitlines()[1] not in page
    assert not PendingRegistration.objects.exists() and not Credential.objects.exists()


@pytest.mark.django_db
def test_the_registration_pages_refuse_other_methods(dba):
    client = _client(dba)
    assert client.put(reverse("clusters:registration_start")).status_code == 405
    assert client.get(reverse("clusters:registration_confirm", args=[1])).status_code == 405
    assert client.get(reverse("clusters:cluster_rediscover", args=[1])).status_code == 405


@pytest.mark.django_db
def test_helpdesk_may_not_register_or_rediscover(helpdesk):
    client = _client(helpdesk)
    assert client.get(reverse("clusters:registration_start")).status_code == 403
    assert client.post(reverse("clusters:cluster_rediscover", args=[1])).status_code == 403


@pytest.mark.django_db
def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(reverse("clusters:registration_start"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.django_db
def test_a_registration_is_visible_only_to_its_author(dba):
    pending = PendingRegistration.objects.create(
        user=dba, name="x", kind="postgresql", environment="lab", address="10.0.0.1",
        ssh_user="root", db_port=5432, db_user="postgres", known_hosts="",
    )  # fmt: skip
    other = factories.make_user("dba2", persona="dba")
    url = reverse("clusters:registration_detail", args=[pending.pk])
    assert _client(other).get(url).status_code == 404


@pytest.mark.django_db
def test_the_rediscover_button_queues_a_job(dba):
    lab = Environment.objects.create(name="lab")
    cluster = Cluster.objects.create(name="c1", kind="postgresql", environment=lab)
    response = _client(dba).post(reverse("clusters:cluster_rediscover", args=[cluster.pk]))
    job = Job.objects.get(kind="clusters.rediscover_cluster")
    assert response.url == reverse("job_detail", args=[job.pk])
    assert job.params == {"cluster": cluster.pk} and not Node.objects.exists()


@pytest.mark.django_db
def test_the_schedule_queues_one_rediscovery_per_cluster():
    from clusters.tasks import rediscover_all

    lab = Environment.objects.create(name="lab")
    for name in ("c1", "c2"):
        Cluster.objects.create(name=name, kind="postgresql", environment=lab)
    rediscover_all()
    queued = Job.objects.filter(kind="clusters.rediscover_cluster", source="schedule")
    assert sorted(job.target_name for job in queued) == ["c1", "c2"]


@pytest.mark.django_db
def test_the_cluster_list_shows_drift_and_the_buttons_to_a_dba(dba, manager):
    lab = Environment.objects.create(name="lab")
    cluster = Cluster.objects.create(name="c1", kind="postgresql", environment=lab)
    ClusterDrift.objects.create(
        cluster=cluster, kind=ClusterDrift.Kind.APPEARED, node_name="db3", address="10.0.0.3",
        detail="standby db3 at 10.0.0.3 is not registered",
    )  # fmt: skip
    page = _client(dba).get(reverse("clusters:cluster_list")).content.decode()
    assert "standby db3 at 10.0.0.3 is not registered" in page
    assert reverse("clusters:cluster_rediscover", args=[cluster.pk]) in page
    assert reverse("clusters:registration_start") in page
    page = _client(manager).get(reverse("clusters:cluster_list")).content.decode()
    assert "Rediscover" not in page and "not registered" in page
