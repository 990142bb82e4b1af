"""The provisioning pages: DBA only, bad input named with nothing started, a valid form starts
one job whose params hold no password, the standby form on a provisioned cluster only, and the
re-run of a failed provisioning job."""

import pytest
from django.urls import reverse

from clusters.models import Cluster, Environment, Node, PgProvision
from clusters.provision.pg import PROVISION_KIND
from console.models import AuditEntry, Credential, Job, JobStep

PASSWORD = "a-Long-admin-password-1"


@pytest.fixture
def bare(db):
    return Node.objects.create(name="bare9", service="none", address="10.99.0.9",
                               known_hosts="10.99.0.9 ssh-ed25519 AAAA")  # fmt: skip


def _form(bare, **over):
    data = {
        "host": bare.pk, "cluster": "sales", "environment": "production", "version": "15",
        "data_directory": "/srv/pg/sales/data", "port": "5432", "locale": "C.UTF-8",
        "listen_addresses": "", "networks": "10.99.0.0/24, 10.98.0.0/16",
        "archive_directory": "/srv/backup/sales/wal", "socket_directory": "", "log_file": "",
        "package": "", "admin_password": PASSWORD, "admin_password_again": PASSWORD,
    }  # fmt: skip
    data.update(over)
    return data


def test_a_dba_starts_a_provisioning_job_without_the_password_in_it(client, dba, bare):
    client.force_login(dba)
    assert (
        "Provision a PostgreSQL cluster"
        in client.get(reverse("clusters:provision_start")).content.decode()
    )
    response = client.post(reverse("clusters:provision_start"), _form(bare))
    job = Job.objects.get(kind=PROVISION_KIND)
    assert response.status_code == 302 and response.url == reverse("job_detail", args=[job.pk])
    spec = job.params["spec"]
    assert spec["listen_addresses"] == ["10.99.0.9"]  # empty: the host's address
    assert spec["socket_directory"] == "/srv/pg/sales/data.run"
    assert spec["log_file"] == "/srv/pg/sales/data.log"
    assert spec["networks"] == ["10.99.0.0/24", "10.98.0.0/16"]
    assert PASSWORD not in str(job.params)
    assert Credential.objects.get(name="sales-admin").reveal() == PASSWORD
    assert AuditEntry.objects.filter(action="provision.requested", job_id=job.pk).exists()
    assert not any(PASSWORD in " ".join(row) for row in
                   AuditEntry.objects.values_list("command", "output", "error"))  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("networks", "10.99.0.5/24", "is not a network"),
        ("data_directory", "srv/pg", "must be an absolute path"),
        ("data_directory", "/srv/../etc/x", "no '..'"),
        ("listen_addresses", "*", "is not an IP address"),
        ("admin_password", "short", "At least 12 characters"),
        ("admin_password_again", "something-else-entirely", "The two passwords differ"),
        ("port", "70000", "less than or equal to 65535"),
        ("locale", "en US", "A locale looks like"),
    ],
)
def test_bad_input_is_named_and_nothing_starts(client, dba, bare, field, value, message):
    client.force_login(dba)
    response = client.post(reverse("clusters:provision_start"), _form(bare, **{field: value}))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not Job.objects.exists() and not Credential.objects.exists()


def test_an_existing_cluster_name_is_refused(client, dba, bare):
    Cluster.objects.create(name="sales", kind="postgresql",
                           environment=Environment.objects.create(name="e"))  # fmt: skip
    client.force_login(dba)
    response = client.post(reverse("clusters:provision_start"), _form(bare))
    assert "already registered" in str(response.context["form"].errors["cluster"])


def test_only_dbas_provision(client, helpdesk, bare):
    client.force_login(helpdesk)
    assert client.get(reverse("clusters:provision_start")).status_code == 403
    assert client.post(reverse("clusters:provision_start"), _form(bare)).status_code == 403
    assert not Job.objects.exists()


def _provisioned(name="sales") -> Cluster:
    env, _ = Environment.objects.get_or_create(name="e")
    cluster = Cluster.objects.create(name=name, kind="postgresql", environment=env)
    Node.objects.create(name=f"{name}-p", cluster=cluster, service="postgresql", role="primary",
                        address="10.99.0.8", db_port=5432, known_hosts="x")  # fmt: skip
    PgProvision.objects.create(cluster=cluster, version="15", os_family="debian",
                               archive_directory="/srv/wal")  # fmt: skip
    return cluster


def test_the_standby_form_starts_a_job_and_refuses_a_warm_synchronous_one(client, dba, bare):
    cluster = _provisioned()
    client.force_login(dba)
    url = reverse("clusters:standby_add", args=[cluster.pk])
    data = {"host": bare.pk, "application_name": "sales_s1", "mode": "warm", "synchronous": "on",
            "sync_method": "FIRST", "sync_count": "1", "synchronous_commit": "remote_apply",
            "data_directory": "/srv/pg/sales/standby", "port": "5432"}  # fmt: skip
    response = client.post(url, data)
    assert "cannot be synchronous" in str(response.context["form"].errors["synchronous"])
    response = client.post(url, {**data, "application_name": "Sales-1"})
    assert "Lower-case letters" in str(response.context["form"].errors["application_name"])
    response = client.post(url, {**data, "mode": "hot"})
    job = Job.objects.get(kind="clusters.add_standby")
    assert response.url == reverse("job_detail", args=[job.pk])
    assert job.params["spec"]["application_name"] == "sales_s1"
    assert job.params["spec"]["node_name"] == "sales-bare9"


def test_the_standby_form_is_only_for_provisioned_clusters(client, dba, helpdesk, bare):
    other = Cluster.objects.create(name="other", kind="postgresql",
                                   environment=Environment.objects.create(name="x"))  # fmt: skip
    client.force_login(dba)
    assert client.get(reverse("clusters:standby_add", args=[other.pk])).status_code == 404
    cluster = _provisioned()
    assert client.get(reverse("clusters:standby_add", args=[cluster.pk])).status_code == 200
    client.force_login(helpdesk)
    assert client.get(reverse("clusters:standby_add", args=[cluster.pk])).status_code == 403


def test_a_failed_provisioning_job_is_rerun_from_its_page(client, dba):
    failed = Job.objects.create(kind=PROVISION_KIND, title="Provision", user=dba,
                                status=Job.Status.FAILED, params={"spec": {}})  # fmt: skip
    JobStep.objects.create(job=failed, position=1, name="Detect", status="failed")
    client.force_login(dba)
    page = client.get(reverse("job_detail", args=[failed.pk])).content.decode()
    assert reverse("clusters:provision_rerun", args=[failed.pk]) in page
    url = reverse("clusters:provision_rerun", args=[failed.pk])
    assert client.get(url).status_code == 405
    response = client.post(url)
    new = Job.objects.exclude(pk=failed.pk).get()
    assert response.url == reverse("job_detail", args=[new.pk])
    assert new.params == {"spec": {}, "rerun_of": failed.pk} and new.kind == PROVISION_KIND
    other = Job.objects.create(kind="tests.echo", title="x", user=dba, status=Job.Status.FAILED)
    JobStep.objects.create(job=other, position=1, name="x", status="failed")
    client.post(reverse("clusters:provision_rerun", args=[other.pk]))
    assert Job.objects.count() == 3  # nothing new for a job that is not a provisioning one
