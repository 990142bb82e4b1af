# ruff: noqa: F811 (the lab fixtures cluster and dba come from tests/clusters/_hba_lab.py)
"""The pg_hba.conf pages and API on lab-pg imported from the lab's db1 and db2: what a DBA, a
manager and a helpdesk user see, the form naming each bad field, editing, reordering, masked
secrets, apply with the typed name. The same actions as test_hba_apply.py; no server is
touched after the import."""

import pytest

from clusters import hba
from clusters.actions import hba as actions
from clusters.models import Cluster
from console import audit
from console.models import AuditEntry, Job
from tests.clusters._hba_lab import _import, cluster, dba, lab_files  # noqa: F401 (fixtures)
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def imported(cluster, dba, django_capture_on_commit_callbacks):
    _import(cluster, dba, django_capture_on_commit_callbacks)
    return cluster


def test_page_shows_rules_lint_and_drift_to_a_dba_and_a_manager(client, imported, dba):
    make_user("mona", persona="manager")
    ruleset = imported.hba
    actions.save_rule(ruleset, hba.Rule("host", "all", "all", "0.0.0.0/0", method="md5"),
                      actor=dba)  # fmt: skip
    url = f"/clusters/{imported.pk}/hba/"
    client.force_login(dba)
    page = client.get(url).content.decode()
    assert "TYPE  DATABASE" in page and "replicator" in page
    assert "open to every address" in page and "md5 where scram-sha-256 is possible" in page
    assert "missing on the node: host all all 0.0.0.0/0 md5" in page  # the new rule: drift
    assert "Add a rule" in page and "Edit" in page
    client.force_login(make_user("mona2", persona="manager"))
    page = client.get(url).content.decode()
    assert "replicator" in page and "Add a rule" not in page and "Import from the nodes" not in page
    assert (
        client.post(f"/clusters/{imported.pk}/hba/apply/", {"confirm": "lab-pg"}).status_code == 403
    )
    assert client.post(f"/clusters/{imported.pk}/hba/read/").status_code == 403
    client.force_login(make_user("hugo", persona="helpdesk"))
    assert client.get(url).status_code == 403
    client.force_login(dba)
    assert client.post(url).status_code == 405
    other = Cluster.objects.get(name="lab-mariadb")
    assert client.get(f"/clusters/{other.pk}/hba/").status_code == 404
    assert client.get(f"/clusters/{imported.pk + 999}/hba/").status_code == 404


def test_rule_form_names_each_bad_field_and_saves_nothing(client, imported, dba):
    client.force_login(dba)
    before = list(imported.hba.rules.values_list("pk", "database"))
    response = client.post(f"/clusters/{imported.pk}/hba/rules/new/", {
        "target": "both", "conn_type": "host", "database": "db one", "user": "all",
        "address": "10.0.0.300/8", "method": "md5", "options": "map=x",
    })  # fmt: skip
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"database", "address", "options"}
    assert "separate names with commas" in form.errors["database"][0]
    assert "not an IP address" in form.errors["address"][0]
    response = client.post(f"/clusters/{imported.pk}/hba/rules/new/", {
        "target": "both", "conn_type": "host", "database": "app", "user": "all",
        "address": "10.0.0.0/8", "method": "md5", "options": "map=x",
    })  # fmt: skip
    assert "only valid for method ident" in response.context["form"].errors["options"][0]
    assert list(imported.hba.rules.values_list("pk", "database")) == before
    assert not AuditEntry.objects.filter(action=audit.HBA_CHANGED).exists()


def test_editing_reordering_and_masked_secrets(client, imported, dba):
    client.force_login(dba)
    base = f"/clusters/{imported.pk}/hba"
    response = client.post(f"{base}/rules/new/", {
        "target": "standbys", "conn_type": "host", "database": "app", "user": "+readers",
        "address": "10.0.0.0/8", "method": "ldap", "position": "1",
        "options": 'ldapserver=ldap.example.org ldapbasedn="dc=example, dc=org" '
                   "ldapbinddn=cn=reader ldapbindpasswd=hunter22",
        "comment": "readers from the directory",
    })  # fmt: skip
    assert response.status_code == 302
    first = imported.hba.rules.get(position=0)
    assert (first.user, first.target) == ("+readers", "standbys")
    # The edit form shows the secret masked, and keeps it when sent back masked.
    page = client.get(f"{base}/rules/{first.pk}/").content.decode()
    assert "hunter22" not in page and "ldapbindpasswd=********" in page
    form = client.get(f"{base}/rules/{first.pk}/").context["form"]
    data = {**form.initial, "comment": "readers, from LDAP"}
    assert client.post(f"{base}/rules/{first.pk}/", data).status_code == 302
    first.refresh_from_db()
    assert ["ldapbindpasswd", "hunter22"] in first.options and first.comment == "readers, from LDAP"
    assert "hunter22" not in client.get(f"{base}/").content.decode()
    assert "hunter22" not in client.get(f"{base}/preview/").content.decode()
    assert not AuditEntry.objects.filter(output__contains="hunter22").exists()
    client.post(f"{base}/rules/{first.pk}/move/", {"position": "down"})
    first.refresh_from_db()
    assert first.position == 1
    client.post(f"{base}/rules/{first.pk}/delete/")
    assert not imported.hba.rules.filter(pk=first.pk).exists()
    assert AuditEntry.objects.filter(action=audit.HBA_CHANGED).count() == 4


def test_apply_needs_the_typed_name(client, imported, dba, django_capture_on_commit_callbacks):
    client.force_login(dba)
    response = client.post(f"/clusters/{imported.pk}/hba/apply/", {"confirm": "lab"})
    assert response.status_code == 302 and response.url.endswith("/hba/preview/")
    assert not Job.objects.filter(kind="clusters.hba_apply").exists()
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/clusters/{imported.pk}/hba/apply/", {"confirm": "lab-pg"})
    job = Job.objects.get(kind="clusters.hba_apply")
    assert response.url == f"/jobs/{job.pk}/" and job.params["version"] == 1


def test_api_edits_with_field_errors_and_applies(
    client, imported, dba, django_capture_on_commit_callbacks
):
    client.force_login(dba)
    url = f"/api/hba/{imported.pk}/"
    body = {"conn_type": "host", "address": "10.0.0.0/40", "method": "trust"}
    bad = client.post(f"{url}rules/", body, content_type="application/json")
    assert bad.status_code == 400 and "address" in bad.json()
    body = {"conn_type": "host", "database": "app", "user": "all", "address": "10.1.0.0/16",
            "method": "scram-sha-256", "position": 1}  # fmt: skip
    good = client.post(f"{url}rules/", body, content_type="application/json")
    assert good.status_code == 201 and good.json()["position"] == 1
    rule_id = good.json()["id"]
    moved = client.post(f"{url}move/", {"rule": rule_id, "position": 2},
                        content_type="application/json")  # fmt: skip
    assert [r["id"] for r in moved.json()["rules"]].index(rule_id) == 1
    data = client.get(url).json()
    assert data["rules"][1]["line"] == "host app all 10.1.0.0/16 scram-sha-256"
    assert data["drift"][0]["node"] == "db1"
    refused = client.post(f"{url}apply/", {"confirm": "nope"}, content_type="application/json")
    assert refused.status_code == 400 and "confirm" in refused.json()
    with django_capture_on_commit_callbacks(execute=False):
        accepted = client.post(f"{url}apply/", {"confirm": "lab-pg"},
                               content_type="application/json")  # fmt: skip
    assert accepted.status_code == 202 and accepted.json()["version"] == 1
    assert client.delete(f"{url}rules/{rule_id}/").status_code == 204
