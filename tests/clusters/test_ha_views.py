"""The HA pages: the precheck page reads the lab's real servers and pgpool-II (nothing changed),
the typed confirmation queues one job with its ha.requested entry; a wrong name, another
persona, another cluster or a wrong method queue nothing. The setup points at the lab's own
pgpool-II files (its PCPPASSFILE), so nothing is deployed here."""

import os

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters.ha import deploy
from clusters.models import Cluster, Environment, Node
from console import audit
from console.lab.demo import register_demo
from console.models import AuditEntry, Job
from console.secrets import store_credential

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(lab):
    register_demo(os.environ)
    records, src = lab.load()["parts"], AuditEntry.Source.CLI
    pcp = store_credential("ha-pcp", "pcp-password", records["pgpool"]["pcp_password"],
                           actor=None, username="pcpadmin", source=src)  # fmt: skip
    repl = store_credential("ha-replication", "password",
                            records["primary"]["replication_password"], actor=None,
                            username="replicator", source=src)  # fmt: skip
    setup = deploy.save_setup(
        Cluster.objects.get(name="lab-pg"), pgpool=Node.objects.get(name="lb1"),
        directory=f"{lab.dir}/pgpool", pcp_credential=pcp, replication_credential=repl,
        client_networks=[os.environ["LAB_NET"]], actor=None, source=src,
    )  # fmt: skip
    setup.deployed = timezone.now()
    setup.save()
    return setup


def url(setup, operation: str = "switchover", **query) -> str:
    path = reverse("clusters:ha_operation", args=[setup.cluster.pk, operation])
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_precheck_page_shows_checks_and_plan_and_changes_nothing(client, dba, setup):
    client.force_login(dba)
    db2 = Node.objects.get(name="db2")
    response = client.get(url(setup, node=db2.pk))
    assert response.status_code == 200
    text = response.content.decode()
    assert "db2 synchronous with zero replay lag" in text and "all pass" in text
    assert "Type the cluster&#x27;s name to confirm" in text
    assert not Job.objects.exists()


def test_wrong_name_queues_nothing_right_name_queues_one_job(client, dba, setup):
    client.force_login(dba)
    db2 = Node.objects.get(name="db2")
    response = client.post(url(setup), {"node": db2.pk, "confirm": "lab-pgx"})
    assert response.status_code == 200
    assert "type the cluster&#x27;s name, lab-pg, to confirm" in response.content.decode()
    assert not Job.objects.exists()
    response = client.post(url(setup), {"node": db2.pk, "confirm": "lab-pg"})
    job = Job.objects.get()
    assert response.status_code == 302 and response.url == reverse("job_detail", args=[job.pk])
    assert (job.kind, job.params["node"]) == ("clusters.ha_switchover", db2.pk)
    entry = AuditEntry.objects.filter(action=audit.HA_REQUESTED).latest("id")
    assert entry.actor_id == dba.pk and f"job {job.pk}" in entry.output


def test_refused_precheck_offers_no_confirmation(client, dba, setup):
    client.force_login(dba)
    db1 = Node.objects.get(name="db1")  # the primary: no switchover to itself
    text = client.get(url(setup, node=db1.pk)).content.decode()
    assert "refused" in text and "Nothing can be started" in text and 'name="confirm"' not in text


def test_other_personas_wrong_cluster_and_method(client, helpdesk, manager, dba, setup):
    for user in (helpdesk, manager):
        client.force_login(user)
        assert client.get(url(setup)).status_code == 403
    client.force_login(dba)
    other = Cluster.objects.create(name="other", kind="postgresql",
                                   environment=Environment.objects.get(name="lab"))  # fmt: skip
    assert (
        client.get(reverse("clusters:ha_operation", args=[other.pk, "failover"])).status_code == 404
    )
    assert client.get(url(setup, "nonsense")).status_code == 404
    assert client.put(url(setup)).status_code == 405
    assert not Job.objects.exists()


def test_cluster_page_shows_the_ha_panel_to_dbas_only(client, dba, manager, setup):
    page = reverse("clusters:cluster_detail", args=[setup.cluster.pk])
    client.force_login(dba)
    text = client.get(page).content.decode()
    assert "High availability" in text and "Switch over to db2" in text
    client.force_login(manager)
    assert "Switch over to" not in client.get(page).content.decode()
