# ruff: noqa: F811 (the fixtures lab_nodes and pg_restored come from tests/clusters/_settings.py)
"""Server settings against the lab's real servers: the settings pages of db1 and my1, the API,
and who may do what. Changes are tested in test_settings_pg.py and test_settings_mariadb.py;
what they share is in _settings.py.
"""

import os

from django.urls import reverse

from clusters.actions.settings import change_setting
from console.models import AuditEntry, Job
from tests.clusters._settings import (  # noqa: F401 (fixtures)
    MY_CNF,
    lab_db,
    lab_nodes,
    pg_restored,
    run_latest_job,
)

# --- The settings page ------------------------------------------------------------------------


@lab_db
def test_the_settings_page_lists_real_settings_with_their_sources(client, dba, lab_nodes):
    client.force_login(dba)
    url = reverse("clusters:node_settings", args=[lab_nodes["db1"].pk])
    response = client.get(url)
    assert response.status_code == 200
    rows = response.context["rows"]
    assert len(rows) > 300
    by_name = {r["name"]: r for r in rows}
    assert by_name["listen_addresses"]["value"] == os.environ["LAB_PG_HOST"]
    assert by_name["listen_addresses"]["source"] == "configuration file"
    assert by_name["synchronous_standby_names"]["auto"] == "db2"  # set with ALTER SYSTEM
    assert by_name["work_mem"]["source"] == "default" and by_name["work_mem"]["unit"] == "kB"
    assert rows[0]["name"] == "listen_addresses"  # key settings first
    page = response.content.decode()
    assert "work_mem" in page and "Sets the maximum memory to be used" in page

    found = client.get(url, {"q": "wal_sender_t"}).context["rows"]
    assert {r["name"] for r in found} == {"wal_sender_timeout"}
    changed = client.get(url, {"changed": "on"}).context["rows"]
    assert "fsync" in {r["name"] for r in changed} and "work_mem" not in {
        r["name"] for r in changed
    }
    memory = client.get(url, {"category": "Resource Usage / Memory"}).context["rows"]
    assert {"work_mem", "shared_buffers"} <= {r["name"] for r in memory}
    assert client.get(url, {"pending": "on"}).context["rows"] == []


@lab_db
def test_the_mariadb_settings_page_shows_option_file_values(client, dba, lab_nodes):
    client.force_login(dba)
    response = client.get(reverse("clusters:node_settings", args=[lab_nodes["my1"].pk]))
    assert response.status_code == 200
    found = response.context["found"]
    assert found.config_file == str(MY_CNF) and not found.error and not found.file_error
    by_name = {r["name"]: r for r in found.rows}
    assert by_name["innodb_buffer_pool_size"]["file_value"] == "64M"
    assert by_name["innodb_buffer_pool_size"]["value"] == str(64 * 1024**2)
    assert by_name["innodb_buffer_pool_size"]["pending"] is False  # 64M is 67108864
    assert by_name["bind_address"]["context"] == "static"
    assert by_name["wait_timeout"]["file_value"] is None


# --- API and permissions ----------------------------------------------------------------------


@lab_db
def test_the_api_lists_changes_and_refuses_bad_values_naming_the_field(
    client, dba, lab_nodes, pg_restored
):
    db1 = lab_nodes["db1"]
    client.force_login(dba)
    listed = client.get(f"/api/node-settings/{db1.pk}/")
    assert listed.status_code == 200
    assert "work_mem" in {r["name"] for r in listed.json()}
    url = f"/api/node-settings/{db1.pk}/change/"
    bad = client.post(url, {"name": "work_mem", "value": "lots"}, content_type="application/json")
    assert bad.status_code == 400 and "work_mem takes a number" in bad.json()["value"][0]
    unknown = client.post(url, {"name": "no_such", "value": "1"}, content_type="application/json")
    assert unknown.status_code == 400 and "no parameter" in unknown.json()["name"][0]
    assert not Job.objects.exists()
    good = client.post(url, {"name": "work_mem", "value": "5MB"}, content_type="application/json")
    assert good.status_code == 202
    job = Job.objects.get(pk=good.json()["job"])
    assert job.source == AuditEntry.Source.API
    assert run_latest_job().status == Job.Status.SUCCEEDED
    history = client.get("/api/setting-changes/", {"node": db1.pk}).json()["results"]
    assert [(h["name"], h["new_value"], h["status"]) for h in history] == [
        ("work_mem", "5MB", "applied")
    ]
    change_setting(db1, "work_mem", None, actor=dba)


@lab_db
def test_who_may_see_and_change_settings(client, dba, manager, helpdesk, lab_nodes):
    db1 = lab_nodes["db1"]
    settings_url = reverse("clusters:node_settings", args=[db1.pk])
    change_url = reverse("clusters:node_setting", args=[db1.pk, "work_mem"])
    client.force_login(manager)
    assert client.get(change_url).status_code == 200
    assert "Reset to default" not in client.get(change_url).content.decode()
    assert client.post(change_url, {"value": "8MB", "scope": "node"}).status_code == 403
    client.force_login(helpdesk)
    assert client.get(settings_url).status_code == 403
    client.force_login(dba)
    assert client.get(reverse("clusters:node_settings", args=[99999])).status_code == 404
    assert client.put(change_url).status_code == 405
    lb1 = lab_nodes["lb1"]  # pgpool-II: no settings here
    assert client.get(reverse("clusters:node_settings", args=[lb1.pk])).status_code == 404
    assert client.get(f"/api/node-settings/{lb1.pk}/").status_code == 404
    assert not Job.objects.exists()
