# ruff: noqa: F811 (the fixtures lab_nodes and my_restored come from tests/clusters/_settings.py)
"""Server settings changed on the lab's real MariaDB (my1): the option file and SET GLOBAL, a
variable already in the file, a static variable, the console's own address and port, a value
the server adjusts. Every test leaves my1 as it found it (my_restored, in _settings.py).
"""

import os
from pathlib import Path

from django.urls import reverse

from clusters.actions.settings import change_setting
from clusters.models import SettingChange
from console import audit
from console.models import AuditEntry, Job
from tests.clusters._settings import (  # noqa: F401 (fixtures)
    MY_CNF,
    lab_db,
    lab_nodes,
    my_global,
    my_restored,
    post_change,
)

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
    response = post_change(client, dba, my1, "bind_address", value="127.0.0.1")
    assert response.status_code == 200
    assert "would no longer listen on" in response.context["form"].errors["confirm_access"][0]
    response = post_change(client, dba, my1, "port", value="3307")
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
