"""The HA settings page (clusters:ha_setup): a DBA records pgpool-II's setup for lab-pg, then
changes it; each bad value is an error on its own field and saves nothing; the passwords are
stored through console.secrets and never rendered back; ha.setup_saved is written with the
record; other personas are refused. Nothing is deployed here (the Deploy job is tested in
test_ha_pgpool.py)."""

import os

import pytest
from django.urls import reverse

from clusters.models import Cluster, Environment, HaSetup, Node
from console import audit
from console.lab.demo import register_demo
from console.models import AuditEntry, Credential

pytestmark = pytest.mark.django_db(transaction=True)

PCP_SECRET = "pcp-Secret-4711"
REPL_SECRET = "repl-Secret-0815"


@pytest.fixture
def cluster(lab):
    register_demo(os.environ)
    return Cluster.objects.get(name="lab-pg")


def url(cluster) -> str:
    return reverse("clusters:ha_setup", args=[cluster.pk])


def valid(cluster, **changes) -> dict:
    db1, db2 = Node.objects.get(name="db1"), Node.objects.get(name="db2")
    data = {
        "pgpool": Node.objects.get(name="lb1").pk, "directory": "/var/lib/pgpool-dbconsole/lab-pg",
        "pcp_port": "9898", "pcp_user": "pcpadmin", "pcp_password": PCP_SECRET,
        "replication_user": "replicator", "replication_password": REPL_SECRET,
        "client_networks": "10.77.0.0/16\n192.168.1.0/24", "health_check_period": "1",
        "health_check_timeout": "2", "health_check_max_retries": "1",
        "delay_threshold": "1048576", "synchronous_commit": "remote_apply",
        "pg_bin": "/usr/lib/postgresql/15/bin", f"weight_{db1.pk}": "0", f"weight_{db2.pk}": "1",
    }  # fmt: skip
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_other_personas_are_refused_and_mariadb_has_no_page(client, helpdesk, manager, dba,
                                                             cluster):  # fmt: skip
    for user in (helpdesk, manager):
        client.force_login(user)
        assert client.get(url(cluster)).status_code == 403
        assert client.post(url(cluster), valid(cluster)).status_code == 403
    assert not HaSetup.objects.exists()
    client.force_login(dba)
    assert client.get(url(Cluster.objects.get(name="lab-mariadb"))).status_code == 404
    assert client.put(url(cluster)).status_code == 405
    page = client.get(reverse("clusters:cluster_detail", args=[cluster.pk])).content.decode()
    assert "Set up pgpool-II" in page and "Edit HA settings" not in page


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("pcp_port", "70000", "less than or equal to 65535"),
        ("pcp_port", "9999", "pgpool-II itself listens on 9999"),
        ("directory", "relative/dir", "An absolute path"),
        ("directory", "/tmp/x; rm -rf /", "An absolute path"),
        ("client_networks", "10.77.0.1/16", "Not a network in CIDR form"),
        ("client_networks", "everyone", "everyone"),
        ("health_check_period", "0", "greater than or equal to 1"),
        ("health_check_max_retries", "-1", "greater than or equal to 0"),
        ("delay_threshold", "lots", "Enter a whole number"),
        ("synchronous_commit", "off", "Select a valid choice"),
        ("pcp_user", "pcp admin", "Enter a valid value"),
        ("pcp_password", "", "This field is required"),
        ("replication_password", None, "This field is required"),
        ("pgpool", "db1", "Select a valid choice"),
    ],
)
def test_bad_value_is_named_on_its_field_and_nothing_saved(client, dba, cluster, field, value,
                                                           error):  # fmt: skip
    client.force_login(dba)
    if value == "db1":
        value = str(Node.objects.get(name="db1").pk)  # a PostgreSQL server, not pgpool-II
    credentials = Credential.objects.count()
    response = client.post(url(cluster), valid(cluster, **{field: value}))
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == [field], form.errors
    assert error in " ".join(form.errors[field])
    assert "Nothing was saved" in response.content.decode()
    assert not HaSetup.objects.exists()
    assert Credential.objects.count() == credentials
    assert not AuditEntry.objects.filter(action=audit.HA_SETUP_SAVED).exists()


def test_no_weight_at_all_is_refused_on_a_weight(client, dba, cluster):
    client.force_login(dba)
    db1, db2 = Node.objects.get(name="db1"), Node.objects.get(name="db2")
    changes = {f"weight_{db1.pk}": "0", f"weight_{db2.pk}": "0"}
    form = client.post(url(cluster), valid(cluster, **changes)).context["form"]
    assert "At least one server needs reads." in form.errors[f"weight_{db1.pk}"]
    assert not HaSetup.objects.exists()


def test_create_then_edit_audited_secrets_stored_never_shown(client, dba, cluster):
    client.force_login(dba)
    response = client.post(url(cluster), valid(cluster))
    assert response.status_code == 302
    assert response.url == reverse("clusters:cluster_detail", args=[cluster.pk])
    setup = HaSetup.objects.get(cluster=cluster)
    db1, db2 = Node.objects.get(name="db1"), Node.objects.get(name="db2")
    assert setup.pgpool.name == "lb1" and setup.directory == "/var/lib/pgpool-dbconsole/lab-pg"
    assert setup.client_networks == ["10.77.0.0/16", "192.168.1.0/24"]
    assert [(b["node"], b["weight"]) for b in setup.backends] == [(db1.pk, 0), (db2.pk, 1)]
    assert setup.deployed is None
    assert (setup.pcp_credential.name, setup.pcp_credential.kind) == ("lab-pg-pcp", "pcp-password")
    assert setup.pcp_credential.username == "pcpadmin"
    assert setup.pcp_credential.reveal() == PCP_SECRET
    assert setup.replication_credential.reveal() == REPL_SECRET
    entry = AuditEntry.objects.filter(action=audit.HA_SETUP_SAVED).get()
    assert entry.actor_id == dba.pk and entry.target == "cluster:lab-pg"
    assert entry.output.startswith("created: pgpool-II on lb1") and "db2 (weight 1)" in entry.output
    for e in AuditEntry.objects.all():
        assert PCP_SECRET not in e.output and REPL_SECRET not in e.output

    # The cluster page now offers Deploy and Edit; the edit page shows no secret.
    page = client.get(reverse("clusters:cluster_detail", args=[cluster.pk])).content.decode()
    assert "Deploy pgpool-II" in page and "Edit HA settings" in page
    text = client.get(url(cluster)).content.decode()
    assert "Edit HA settings" in text and "Stored; leave blank to keep it." in text
    assert PCP_SECRET not in text and REPL_SECRET not in text
    assert 'value="/var/lib/pgpool-dbconsole/lab-pg"' in text

    # Edit: blank passwords keep the stored secrets; a new weight and health check are saved.
    changes = {"pcp_password": "", "replication_password": "", "health_check_period": "3",
               f"weight_{db1.pk}": "2", "synchronous_commit": "on"}  # fmt: skip
    secrets_before = AuditEntry.objects.filter(action=audit.SECRET_CREATED).count()
    assert client.post(url(cluster), valid(cluster, **changes)).status_code == 302
    setup.refresh_from_db()
    assert (setup.health_check_period, setup.synchronous_commit) == (3, "on")
    assert [(b["node"], b["weight"]) for b in setup.backends] == [(db1.pk, 2), (db2.pk, 1)]
    assert setup.pcp_credential.reveal() == PCP_SECRET
    assert AuditEntry.objects.filter(action=audit.SECRET_CREATED).count() == secrets_before
    entry = AuditEntry.objects.filter(action=audit.HA_SETUP_SAVED).latest("id")
    assert entry.output.startswith("changed:") and "secrets stored: none (kept)" in entry.output

    # A new PCP password replaces the stored one (audited by console.secrets, not shown).
    assert client.post(url(cluster), valid(cluster, pcp_password="new-Pcp-1")).status_code == 302
    setup.refresh_from_db()
    assert setup.pcp_credential.reveal() == "new-Pcp-1"
    assert (
        HaSetup.objects.count() == 1 and Credential.objects.filter(name="lab-pg-pcp").count() == 1
    )


def test_edit_keeps_what_a_deployment_found(client, dba, cluster):
    """A deployed setup's backends keep their order and the data directory read from the
    server; an edit does not drop the extra keys the HA code keeps there."""
    client.force_login(dba)
    assert client.post(url(cluster), valid(cluster)).status_code == 302
    setup = HaSetup.objects.get()
    setup.backends[1].update(data_directory="/srv/found", synchronous=True)
    setup.save()
    changes = {"pcp_password": "", "replication_password": ""}
    assert client.post(url(cluster), valid(cluster, **changes)).status_code == 302
    setup.refresh_from_db()
    assert setup.backends[1]["data_directory"] == "/srv/found"
    assert setup.backends[1]["synchronous"] is True


def test_cluster_without_servers_is_refused_as_a_whole(client, dba, cluster):
    client.force_login(dba)
    other = Cluster.objects.create(name="other", kind="postgresql",
                                   environment=Environment.objects.get(name="lab"))  # fmt: skip
    assert client.get(url(other)).status_code == 200  # visible to a DBA, no servers yet
    response = client.post(url(other), valid(other))
    assert "no PostgreSQL server registered" in response.content.decode()
    assert not HaSetup.objects.exists()
