"""Server settings against the lab's real servers: the settings page, changes on db1, on the
whole cluster (db2 too), a restart-only parameter, refused values, failures that leave the
servers as they were, MariaDB's option file and SET GLOBAL, the API, and who may do what.

Every test leaves the servers as it found them: the fixtures keep db1's and db2's
postgresql.auto.conf and my1's my.cnf (and the variables changed) and put them back, reloading,
until no restart is pending; the console's backup copies of my.cnf are removed.
"""

import os
import time
from pathlib import Path

import MySQLdb
import psycopg
import pytest
from django.urls import reverse

from clusters.actions.settings import AccessWouldBeLost, ChangeRefused, change_setting
from clusters.models import Cluster, Node, SettingChange
from clusters.tasks import change_setting as change_setting_task
from console import audit, jobs
from console.lab.demo import register_demo
from console.models import AuditEntry, Job
from tests.factories import make_job

lab_db = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions
LAB = Path(os.environ.get("LAB_DIR", "/nonexistent"))
AUTO_CONF = {
    "db1": LAB / "primary" / "data" / "postgresql.auto.conf",
    "db2": LAB / "standby" / "data" / "postgresql.auto.conf",
}
MY_CNF = LAB / "mariadb" / "my.cnf"
MY_VARIABLES = ("wait_timeout", "max_connections", "long_query_time")


# --- Direct looks at the servers (the test's own eyes, not the console's) -----------------------


def _pg(host: str):
    address = os.environ["LAB_PG_HOST" if host == "db1" else "LAB_PG_STANDBY_HOST"]
    port = os.environ["LAB_PG_PORT" if host == "db1" else "LAB_PG_STANDBY_PORT"]
    return psycopg.connect(host=address, port=port, user=os.environ["LAB_PG_USER"],
                           password=os.environ["LAB_PG_PASSWORD"], dbname="postgres",
                           autocommit=True, connect_timeout=5)  # fmt: skip


def pg_setting(host: str, name: str) -> tuple[str, bool]:
    """(SHOW value, pending_restart) of a parameter on db1 or db2."""
    with _pg(host) as conn:
        return conn.execute(
            "SELECT current_setting(name), pending_restart FROM pg_settings WHERE name = %s",
            (name,),
        ).fetchone()


def _my():
    return MySQLdb.connect(
        host=os.environ["LAB_MYSQL_HOST"], port=int(os.environ["LAB_MYSQL_PORT"]),
        user=os.environ["LAB_MYSQL_USER"], password=os.environ["LAB_MYSQL_PASSWORD"],
        connect_timeout=5,
    )  # fmt: skip


def my_global(name: str) -> str:
    conn = _my()
    try:
        cur = conn.cursor()
        cur.execute("SELECT GLOBAL_VALUE FROM information_schema.SYSTEM_VARIABLES "
                    "WHERE VARIABLE_NAME = UPPER(%s)", (name,))  # fmt: skip
        return str(cur.fetchone()[0])
    finally:
        conn.close()


def _wait(check, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def lab_nodes(lab_env) -> dict[str, Node]:
    register_demo(os.environ)
    return {node.name: node for node in Node.objects.all()}


@pytest.fixture
def pg_restored(lab_env):
    """db1 and db2 as they were after the test: postgresql.auto.conf back, reloaded, nothing
    pending. The test asserts on them itself; this only cleans up."""
    before = {host: path.read_bytes() for host, path in AUTO_CONF.items()}
    yield before
    for host, path in AUTO_CONF.items():
        if path.read_bytes() != before[host]:
            stat = path.stat()
            path.write_bytes(before[host])
            os.chown(path, stat.st_uid, stat.st_gid)
        with _pg(host) as conn:
            conn.execute("SELECT pg_reload_conf()")

        def settled(host=host):
            with _pg(host) as conn:
                return not conn.execute(
                    "SELECT count(*) FROM pg_settings WHERE pending_restart"
                ).fetchone()[0]

        _wait(settled, f"{host} to have no pending restart")


@pytest.fixture
def my_restored(lab_env):
    """my1's my.cnf and the variables the tests change back as they were; backups removed."""
    text = MY_CNF.read_bytes()
    files = set(MY_CNF.parent.iterdir())
    values = {name: my_global(name) for name in MY_VARIABLES}
    yield text
    if MY_CNF.read_bytes() != text:
        MY_CNF.write_bytes(text)
    for path in set(MY_CNF.parent.iterdir()) - files:
        path.unlink()
    conn = _my()
    try:
        for name, value in values.items():
            number = float(value) if "." in value else int(value)
            conn.cursor().execute(f"SET GLOBAL {name} = %s", (number,))  # constant names
    finally:
        conn.close()


def _post_change(client, user, node: Node, name: str, **data):
    client.force_login(user)
    url = reverse("clusters:node_setting", args=[node.pk, name])
    client.get(url)  # the page the person saw: the row it keeps for the check
    return client.post(url, {"scope": "node", **data})


def _run_latest_job() -> Job:
    job = Job.objects.filter(kind="clusters.change_setting").latest("pk")
    jobs.run_job(job.pk, change_setting_task.body)
    job.refresh_from_db()
    return job


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


# --- Changing on PostgreSQL -------------------------------------------------------------------


@lab_db
def test_work_mem_on_the_primary_is_reloaded_read_back_recorded_and_audited(
    client, dba, lab_nodes, pg_restored
):
    db1 = lab_nodes["db1"]
    response = _post_change(client, dba, db1, "work_mem", value="8MB")
    job = Job.objects.get(kind="clusters.change_setting")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.params == {"node": db1.pk, "name": "work_mem", "value": "8MB", "confirmed": False}

    assert _run_latest_job().status == Job.Status.SUCCEEDED
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
    response = _post_change(client, dba, db1, "work_mem", value="9MB")
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
    response = _post_change(client, dba, db1, "listen_addresses", value="localhost")
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "would no longer listen on" in errors["confirm_access"][0]
    assert not Job.objects.exists()
    with pytest.raises(AccessWouldBeLost):
        change_setting(db1, "listen_addresses", "localhost", actor=dba)
    assert SettingChange.objects.get().status == SettingChange.Status.FAILED  # refused, recorded

    # Keeping the console's address needs no confirmation, and is a restart away.
    keep = f"localhost, {db1.address}"
    response = _post_change(client, dba, db1, "listen_addresses", value=keep)
    assert response.status_code == 302
    assert _run_latest_job().status == Job.Status.SUCCEEDED
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


# --- Changing on MariaDB ----------------------------------------------------------------------


@lab_db
def test_a_mariadb_dynamic_variable_is_written_and_set_live_then_reset(
    dba, lab_nodes, my_restored, assert_no_secret_stored
):
    my1 = lab_nodes["my1"]
    [change] = change_setting(my1, "wait_timeout", "600", actor=dba)
    assert change.status == SettingChange.Status.APPLIED, change.error
    assert (change.old_value, change.new_value, change.context) == ("28800", "600", "dynamic")
    assert change.config_file == str(MY_CNF)
    assert my_global("wait_timeout") == "600"
    text = MY_CNF.read_text()
    assert text == my_restored.decode() + "wait_timeout=600\n"  # in [mysqld], the rest kept
    assert Path(change.backup_file).read_bytes() == my_restored
    assert oct(MY_CNF.stat().st_mode & 0o777) == "0o644"
    commands = AuditEntry.objects.filter(action=audit.SETTING_CHANGED,
                                         status=AuditEntry.Status.STARTED)  # fmt: skip
    assert "SET GLOBAL `wait_timeout` = %s" in [e.command for e in commands]

    [reset] = change_setting(my1, "wait_timeout", None, actor=dba)
    assert reset.status == SettingChange.Status.APPLIED and reset.new_value == "28800"
    assert MY_CNF.read_bytes() == my_restored and my_global("wait_timeout") == "28800"
    assert_no_secret_stored(
        os.environ["LAB_MYSQL_PASSWORD"], Path(os.environ["LAB_SSH_KEY"]).read_text()
    )


@lab_db
def test_a_mariadb_variable_in_the_file_is_rewritten_in_place(dba, lab_nodes, my_restored):
    my1 = lab_nodes["my1"]
    [change] = change_setting(my1, "max_connections", "120", actor=dba)
    assert change.status == SettingChange.Status.APPLIED and my_global("max_connections") == "120"
    assert "max_connections = 120\n" in MY_CNF.read_text()
    assert "max_connections = 100" not in MY_CNF.read_text()
    change_setting(my1, "max_connections", "100", actor=dba)
    assert MY_CNF.read_bytes() == my_restored and my_global("max_connections") == "100"
    # Asked again, the file already says so: nothing written, no backup.
    files = set(MY_CNF.parent.iterdir())
    [again] = change_setting(my1, "max_connections", "100", actor=dba)
    assert again.status == SettingChange.Status.APPLIED and again.backup_file == ""
    assert set(MY_CNF.parent.iterdir()) == files


@lab_db
def test_a_static_mariadb_variable_is_restart_needed(client, dba, lab_nodes, my_restored):
    my1 = lab_nodes["my1"]
    [change] = change_setting(my1, "performance_schema", "on", actor=dba)
    assert change.status == SettingChange.Status.RESTART_NEEDED
    assert (change.old_value, change.new_value, change.context) == ("OFF", "ON", "static")
    assert "performance_schema = ON\n" in MY_CNF.read_text()
    assert my_global("performance_schema") == "OFF"  # runs the old value until a restart
    client.force_login(dba)
    url = reverse("clusters:node_settings", args=[my1.pk])
    pending = client.get(url, {"pending": "on"}).context["rows"]
    assert [(r["name"], r["file_value"]) for r in pending] == [("performance_schema", "ON")]


@lab_db
def test_a_bind_address_without_the_console_address_needs_confirmation(
    client, dba, lab_nodes, my_restored
):
    my1 = lab_nodes["my1"]
    response = _post_change(client, dba, my1, "bind_address", value="127.0.0.1")
    assert response.status_code == 200
    assert "would no longer listen on" in response.context["form"].errors["confirm_access"][0]
    response = _post_change(client, dba, my1, "port", value="3307")
    assert "would listen on port 3307" in response.context["form"].errors["confirm_access"][0]
    assert not Job.objects.exists() and MY_CNF.read_bytes() == my_restored


@lab_db
def test_a_mariadb_value_the_server_adjusts_is_put_back(dba, lab_nodes, my_restored):
    # The server would round 0.0000001 s to 0: read back, refused, file and value put back.
    my1 = lab_nodes["my1"]
    [change] = change_setting(my1, "long_query_time", "0.0000001", actor=dba)
    assert change.status == SettingChange.Status.FAILED
    assert "not '0.0000001'" in change.error and "put back" in change.error
    assert MY_CNF.read_bytes() == my_restored
    assert float(my_global("long_query_time")) == 10.0


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
    assert _run_latest_job().status == Job.Status.SUCCEEDED
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
