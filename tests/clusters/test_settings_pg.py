# ruff: noqa: F811 (the fixtures lab_nodes and pg_restored come from tests/clusters/_settings.py)
"""Server settings changed on the lab's real PostgreSQL servers: on db1, on the whole cluster
(db2 too), a restart-only parameter, refused values, failures that leave the servers as they
were. Every test leaves the servers as it found them (pg_restored, in _settings.py).
"""

import os

import pytest
from django.urls import reverse

from clusters.actions.settings import change_setting
from clusters.actions.settings_check import AccessWouldBeLost, ChangeRefused
from clusters.models import Cluster, SettingChange
from clusters.tasks import change_setting as change_setting_task
from console import audit, jobs
from console.models import AuditEntry, Job
from tests.clusters._settings import (  # noqa: F401 (fixtures)
    AUTO_CONF,
    lab_db,
    lab_nodes,
    pg_restored,
    pg_setting,
    post_change,
    run_latest_job,
)
from tests.factories import make_job

# --- Changing on PostgreSQL -------------------------------------------------------------------


@lab_db
def test_work_mem_on_the_primary_is_reloaded_read_back_recorded_and_audited(
    client, dba, lab_nodes, pg_restored
):
    db1 = lab_nodes["db1"]
    response = post_change(client, dba, db1, "work_mem", value="8MB")
    job = Job.objects.get(kind="clusters.change_setting")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.params == {"node": db1.pk, "name": "work_mem", "value": "8MB", "confirmed": False}

    assert run_latest_job().status == Job.Status.SUCCEEDED
    assert pg_setting("db1", "work_mem") == ("8MB", False)
    assert pg_setting("db2", "work_mem") == ("4MB", False)  # this node only
    change = SettingChange.objects.get()
    assert (change.node, change.name, change.old_value, change.new_value) == (
        db1,
        "work_mem",
        "4MB",
        "8MB",
    )
    assert change.status == SettingChange.Status.APPLIED and change.context == "user"
    assert change.actor == dba and change.actor_name == "dba" and change.job == job
    sent = AuditEntry.objects.filter(action=audit.SETTING_CHANGED, job_id=job.pk)
    commands = [e.command for e in sent.filter(status=AuditEntry.Status.STARTED).order_by("pk")]
    assert commands == ["ALTER SYSTEM SET \"work_mem\" = '8MB'", "SELECT pg_reload_conf()"]
    summary = sent.exclude(intent_id__isnull=False).exclude(status=AuditEntry.Status.STARTED)
    [entry] = summary
    assert entry.target == "node:db1" and entry.command == "work_mem = 8MB"
    assert entry.status == AuditEntry.Status.SUCCEEDED and entry.actor == dba

    # One change at a time: while a change job is queued, the form refuses another.
    pending = make_job(kind="clusters.change_setting", user=dba, title="Change work_mem",
                       params={"cluster": db1.cluster_id, "name": "work_mem"})  # fmt: skip
    response = post_change(client, dba, db1, "work_mem", value="9MB")
    assert f"job #{pending.pk}" in " ".join(response.context["form"].non_field_errors())
    Job.objects.filter(pk=pending.pk).update(status=Job.Status.CANCELLED)
    # The task called again for the same job does nothing.
    assert jobs.run_job(job.pk, change_setting_task.body) == "skipped"
    # Reset to default through the same road: back to 4MB, the auto.conf entry gone.
    [reset] = change_setting(db1, "work_mem", None, actor=dba)
    assert reset.status == SettingChange.Status.APPLIED and reset.new_value == "4MB"
    assert pg_setting("db1", "work_mem") == ("4MB", False)
    assert AUTO_CONF["db1"].read_bytes() == pg_restored["db1"]


@lab_db
def test_a_restart_only_parameter_is_restart_needed_until_reset(dba, lab_nodes, pg_restored):
    db1 = lab_nodes["db1"]
    [change] = change_setting(db1, "max_connections", "110", actor=dba)
    assert change.status == SettingChange.Status.RESTART_NEEDED
    assert (change.old_value, change.new_value, change.context) == ("100", "110", "postmaster")
    assert pg_setting("db1", "max_connections") == ("100", True)  # runs 100, 110 pending

    # Reset (and reload) clears the pending restart on PostgreSQL 15 without a restart.
    [reset] = change_setting(db1, "max_connections", None, actor=dba)
    assert reset.status == SettingChange.Status.APPLIED
    assert pg_setting("db1", "max_connections") == ("100", False)
    assert AUTO_CONF["db1"].read_bytes() == pg_restored["db1"]


@lab_db
def test_the_settings_page_shows_a_pending_restart(client, dba, lab_nodes, pg_restored):
    change_setting(lab_nodes["db1"], "max_connections", "120", actor=dba)
    client.force_login(dba)
    url = reverse("clusters:node_settings", args=[lab_nodes["db1"].pk])
    response = client.get(url, {"pending": "on"})
    assert [r["name"] for r in response.context["rows"]] == ["max_connections"]
    assert "Restart pending:" in response.content.decode()
    detail = client.get(reverse("clusters:node_setting", args=[lab_nodes["db1"].pk,
                                                                "max_connections"]))  # fmt: skip
    assert "restart pending" in detail.content.decode()
    assert "restart needed" in detail.content.decode()  # the history row


@lab_db
def test_a_value_the_validator_refuses_is_a_form_error_and_nothing_is_sent(
    client, dba, lab_nodes, pg_restored
):
    db1 = lab_nodes["db1"]
    client.force_login(dba)
    url = reverse("clusters:node_setting", args=[db1.pk, "work_mem"])
    assert client.get(url).status_code == 200
    last = AuditEntry.objects.latest("pk").pk
    for value, message in [("lots", "work_mem takes a number"),
                           ("64XB", "unknown unit 'XB'"),
                           ("32kB", "below the minimum 64 kB"),
                           ("", "Enter a value")]:  # fmt: skip
        response = client.post(url, {"scope": "node", "value": value})
        assert response.status_code == 200
        assert message in " ".join(response.context["form"].errors["value"])
        assert "Nothing was sent to the server." in response.content.decode()
    assert not Job.objects.exists() and not SettingChange.objects.exists()
    assert not AuditEntry.objects.filter(pk__gt=last).exists()  # no remote call at all
    assert pg_setting("db1", "work_mem") == ("4MB", False)


@lab_db
def test_listen_addresses_without_the_console_address_needs_confirmation(
    client, dba, lab_nodes, pg_restored
):
    db1 = lab_nodes["db1"]
    response = post_change(client, dba, db1, "listen_addresses", value="localhost")
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "would no longer listen on" in errors["confirm_access"][0]
    assert not Job.objects.exists()
    with pytest.raises(AccessWouldBeLost):
        change_setting(db1, "listen_addresses", "localhost", actor=dba)
    assert SettingChange.objects.get().status == SettingChange.Status.FAILED  # refused, recorded

    # Keeping the console's address needs no confirmation, and is a restart away.
    keep = f"localhost, {db1.address}"
    response = post_change(client, dba, db1, "listen_addresses", value=keep)
    assert response.status_code == 302
    assert run_latest_job().status == Job.Status.SUCCEEDED
    latest = SettingChange.objects.first()
    assert latest.status == SettingChange.Status.RESTART_NEEDED and latest.new_value == keep
    assert pg_setting("db1", "listen_addresses") == (db1.address, True)
    change_setting(db1, "listen_addresses", None, actor=dba)
    assert pg_setting("db1", "listen_addresses") == (db1.address, False)


@lab_db
def test_a_cluster_wide_change_reaches_the_standby(
    dba, lab_nodes, pg_restored, assert_no_secret_stored
):
    cluster = Cluster.objects.get(name="lab-pg")
    rows = change_setting(cluster, "work_mem", "6MB", actor=dba)
    assert [(r.node_name, r.status, r.scope) for r in rows] == [
        ("db1", "applied", "cluster"), ("db2", "applied", "cluster")
    ]  # fmt: skip
    assert rows[0].request_id == rows[1].request_id
    assert pg_setting("db1", "work_mem") == ("6MB", False)
    assert pg_setting("db2", "work_mem") == ("6MB", False)  # ALTER SYSTEM on a hot standby
    entry = AuditEntry.objects.filter(action=audit.SETTING_CHANGED, target="cluster:lab-pg").get()
    assert entry.node == "db1, db2" and entry.output == "db1: applied; db2: applied"
    change_setting(cluster, "work_mem", None, actor=dba)
    assert pg_setting("db2", "work_mem") == ("4MB", False)
    assert AUTO_CONF["db2"].read_bytes() == pg_restored["db2"]
    assert_no_secret_stored(os.environ["LAB_PG_PASSWORD"])


@lab_db
def test_a_value_the_server_refuses_leaves_it_as_it_was(dba, lab_nodes, pg_restored):
    [change] = change_setting(lab_nodes["db1"], "TimeZone", "Mars/Olympus", actor=dba)
    assert change.status == SettingChange.Status.FAILED
    assert 'invalid value for parameter "TimeZone"' in change.error
    assert "nothing was changed" in change.error
    assert pg_setting("db1", "TimeZone") == ("Etc/UTC", False)
    assert AUTO_CONF["db1"].read_bytes() == pg_restored["db1"]
    entry = AuditEntry.objects.filter(action=audit.SETTING_CHANGED, target="node:db1").last()
    assert entry.status == AuditEntry.Status.FAILED and "Mars/Olympus" in entry.error


@lab_db
def test_when_the_standby_fails_the_primary_is_put_back(dba, lab_nodes, pg_restored):
    # ALTER SYSTEM writes postgresql.auto.conf.tmp first: a directory in its way fails it.
    blocker = AUTO_CONF["db2"].with_suffix(".conf.tmp")
    blocker.mkdir()
    try:
        rows = change_setting(Cluster.objects.get(name="lab-pg"), "work_mem", "7MB", actor=dba)
    finally:
        blocker.rmdir()
    assert [(r.node_name, r.status) for r in rows] == [("db1", "failed"), ("db2", "failed")]
    assert "put back as it was because db2 failed" in rows[0].error
    assert "postgresql.auto.conf.tmp" in rows[1].error
    assert pg_setting("db1", "work_mem") == ("4MB", False)
    assert AUTO_CONF["db1"].read_bytes() == pg_restored["db1"]


@lab_db
def test_a_preload_library_the_server_lacks_is_refused_before_anything_is_sent(
    dba, lab_nodes, pg_restored
):
    db1 = lab_nodes["db1"]
    with pytest.raises(ChangeRefused, match="no library no_such_lib"):
        change_setting(db1, "shared_preload_libraries", "pg_stat_statements, no_such_lib",
                       actor=dba)  # fmt: skip
    assert not AuditEntry.objects.filter(command__startswith="ALTER SYSTEM").exists()
    assert AUTO_CONF["db1"].read_bytes() == pg_restored["db1"]

    # Libraries it has are sent one literal each. (session_preload_libraries: it applies on
    # reload. A reset of shared_preload_libraries, set nowhere else, would stay pending until
    # a restart: PostgreSQL marks a postmaster parameter removed from the files that way.)
    libraries = "auto_explain, $libdir/passwordcheck"
    [change] = change_setting(db1, "session_preload_libraries", libraries, actor=dba)
    assert change.status == SettingChange.Status.APPLIED
    assert change.new_value == 'auto_explain, "$libdir/passwordcheck"'
    written = "session_preload_libraries = 'auto_explain, \"$libdir/passwordcheck\"'"
    assert written in AUTO_CONF["db1"].read_text()
    change_setting(db1, "session_preload_libraries", None, actor=dba)
    assert pg_setting("db1", "session_preload_libraries") == ("", False)
    assert AUTO_CONF["db1"].read_bytes() == pg_restored["db1"]


@lab_db
def test_a_node_that_cannot_be_read_means_nothing_is_sent(dba, lab_nodes, pg_restored):
    db2 = lab_nodes["db2"]
    db2.db_port = 1  # nothing listens there: refused at once
    db2.save()
    with pytest.raises(ChangeRefused, match="Nothing was changed"):
        change_setting(Cluster.objects.get(name="lab-pg"), "work_mem", "7MB", actor=dba)
    assert not AuditEntry.objects.filter(command__startswith="ALTER SYSTEM").exists()
    assert {r.status for r in SettingChange.objects.all()} == {"failed"}
    assert pg_setting("db1", "work_mem") == ("4MB", False)
