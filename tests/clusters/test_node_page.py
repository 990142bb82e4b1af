"""The node page (facts read live from the lab's servers) and the server log viewer.

The lab is registered as `manage.py lab up --demo` does (console.lab.demo.register_demo).
df output parsed here was recorded on the lab's hosts (fixtures/df-*.txt).
"""

import os
import time
from pathlib import Path

import psycopg
import pytest
from django.urls import reverse

from clusters import nodeinfo
from clusters.actions import NodeSpec, register_host
from clusters.models import Node
from clusters.nodeinfo import DfUnparsable, parse_df
from console.lab.demo import PG_PASSWORD, SSH_KEY, known_hosts_of, register_demo
from console.models import AuditEntry

FIXTURES = Path(__file__).parent / "fixtures"
lab_db = pytest.mark.django_db(transaction=True)  # the executor audits outside transactions


@pytest.fixture
def lab_nodes(lab_env) -> dict[str, Node]:
    register_demo(os.environ)
    return {node.name: node for node in Node.objects.all()}


@pytest.fixture
def node_down(lab_nodes) -> Node:
    """A PostgreSQL node registered at bare2, where nothing listens on 5432 (sshd does)."""
    address = os.environ["LAB_BARE2_SSH_HOST"]
    known = Path(os.environ["LAB_BARE2_SSH_KNOWN_HOSTS"]).read_text()
    spec = NodeSpec(
        name="pg-down", service=Node.Service.POSTGRESQL, address=address, db_port=5432,
        known_hosts=known_hosts_of(known, address), ssh_credential=SSH_KEY,
        db_credential=PG_PASSWORD, data_directory="/var/lib/postgresql/data",
    )  # fmt: skip
    return register_host(spec, actor=None)


def _node_page(client, user, node: Node):
    client.force_login(user)
    return client.get(reverse("clusters:node_detail", args=[node.pk]))


def _log_page(client, user, node: Node, **params):
    client.force_login(user)
    return client.get(reverse("clusters:node_log", args=[node.pk]), params)


# --- df output (pure, recorded on the lab's hosts) -------------------------------------------


def test_df_output_of_a_data_directory_is_parsed_in_bytes():
    disk = parse_df((FIXTURES / "df-db1.txt").read_text())
    assert disk.filesystem == "/dev/vda" and disk.mounted_on == "/"
    assert disk.size == 270553174016 and disk.used == 27881201664
    assert disk.available == 81063092224 and disk.capacity == 26


def test_df_output_of_a_tmpfs_is_parsed():
    disk = parse_df((FIXTURES / "df-db1-shm.txt").read_text())
    assert (disk.filesystem, disk.mounted_on, disk.capacity) == ("tmpfs", "/dev/shm", 1)


def test_df_output_that_is_not_posix_is_refused():
    with pytest.raises(DfUnparsable):
        parse_df("df: /nowhere: No such file or directory\n")


# --- The node page ---------------------------------------------------------------------------


@lab_db
def test_the_primary_node_page_shows_version_state_databases_and_settings(client, dba, lab_nodes):
    response = _node_page(client, dba, lab_nodes["db1"])
    assert response.status_code == 200
    info = response.context["info"]
    assert info.errors == {}
    assert info.facts.version.split()[0] in response.content.decode()
    assert info.facts.in_recovery is False and info.facts.timeline >= 1
    assert "primary (not in recovery)" in response.content.decode()
    assert {"postgres", "template1"} <= {name for name, _ in info.databases}
    settings = {s.name: s for s in info.settings}
    assert settings["listen_addresses"].value in response.content.decode()
    assert settings["data_directory"].value == info.facts.data_directory
    assert info.disk.size > 0 and info.connections_total >= 1  # our own connection


@lab_db
def test_the_standby_node_page_shows_it_in_recovery(client, manager, lab_nodes):
    response = _node_page(client, manager, lab_nodes["db2"])
    assert response.status_code == 200
    assert response.context["info"].facts.in_recovery is True
    assert "standby (in recovery)" in response.content.decode()


@lab_db
def test_the_mariadb_node_page_shows_its_facts(client, dba, lab_nodes):
    response = _node_page(client, dba, lab_nodes["my1"])
    info = response.context["info"]
    assert info.errors == {}
    assert "MariaDB" in info.facts.version and info.facts.read_only is False
    assert {"mysql", "information_schema"} <= {name for name, _ in info.databases}
    assert {"local_infile", "bind_address", "port", "log_error", "datadir"} == {
        s.name for s in info.settings
    }
    assert info.disk.size > 0
    assert "read-write" in response.content.decode()


@lab_db
def test_a_node_whose_server_refuses_shows_unreachable_with_200(client, dba, node_down):
    response = _node_page(client, dba, node_down)
    assert response.status_code == 200
    errors = response.context["info"].errors
    assert errors["facts"].startswith("unreachable: ")
    assert errors["settings"] == errors["facts"]  # not tried again
    page = response.content.decode()
    assert "unreachable: " in page and "Not read: the server is not answering" in page


@lab_db
def test_node_page_reads_are_audited_as_the_viewer(client, dba, lab_nodes):
    since = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first()
    _node_page(client, dba, lab_nodes["db1"])
    entries = AuditEntry.objects.filter(pk__gt=since, node="db1", actor=dba)
    assert entries.filter(command__contains="pg_postmaster_start_time").exists()
    assert entries.filter(command__contains="df -P -B1").exists()
    assert not entries.filter(command__contains=os.environ["LAB_PG_PASSWORD"]).exists()


@pytest.mark.django_db
def test_node_page_refuses_post(client, dba):
    client.force_login(dba)
    assert client.post(reverse("clusters:node_detail", args=[1])).status_code == 405


@pytest.mark.django_db
def test_node_page_is_forbidden_to_helpdesk(client, helpdesk):
    client.force_login(helpdesk)
    assert client.get(reverse("clusters:node_detail", args=[1])).status_code == 403


@pytest.mark.django_db
def test_node_page_sends_anonymous_users_to_login(client):
    response = client.get(reverse("clusters:node_detail", args=[1]))
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.django_db
def test_unknown_node_is_404(client, dba):
    client.force_login(dba)
    assert client.get(reverse("clusters:node_detail", args=[999999])).status_code == 404


@lab_db
def test_the_cluster_list_links_node_names_to_their_page(client, dba, lab_nodes):
    client.force_login(dba)
    page = client.get(reverse("clusters:cluster_list")).content.decode()
    assert f'href="{reverse("clusters:node_detail", args=[lab_nodes["db1"].pk])}"' in page


# --- The server log viewer -------------------------------------------------------------------


def _failed_login(lab_env, user: str) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=lab_env["LAB_PG_HOST"], port=lab_env["LAB_PG_PORT"], dbname="postgres",
            user=user, password="not-the-password", connect_timeout=5,
        )  # fmt: skip


def _search_until(client, user, node, term: str, wanted: str):
    """Search the viewer until a line containing `wanted` is shown (the server writes its
    log itself, so the line arrives shortly after the failed login)."""
    deadline = time.monotonic() + 10
    while True:
        response = _log_page(client, user, node, term=term)
        lines = response.context["log"].lines
        if any(wanted in line.text for line in lines):
            return response, lines
        assert time.monotonic() < deadline, f"{wanted!r} not found: {response.context['log']}"


@lab_db
def test_a_fatal_line_written_to_the_server_log_appears_highlighted_in_the_viewer(
    client, dba, lab_nodes, lab_env
):
    user = f"viewer_{time.monotonic_ns()}"
    _failed_login(lab_env, user)
    wanted = f'FATAL:  password authentication failed for user "{user}"'
    response, lines = _search_until(client, dba, lab_nodes["db1"], user, wanted)
    [line] = [line for line in lines if wanted in line.text]
    assert line.css == "log-fatal"
    assert f'<span class="log-line log-fatal" data-offset="{line.offset}">' in (
        response.content.decode()
    )
    # The page that ends with it shows it last, highlighted too.
    response = _log_page(client, dba, lab_nodes["db1"], before=line.page_end)
    log = response.context["log"]
    assert log.lines[-1].text == line.text and log.lines[-1].css == "log-fatal"


@lab_db
def test_the_older_link_pages_backwards_through_the_log(client, dba, lab_nodes, monkeypatch):
    monkeypatch.setattr(nodeinfo, "PAGE_SIZE", 512)  # the lab's log is smaller than a page
    latest = _log_page(client, dba, lab_nodes["db1"])
    log = latest.context["log"]
    assert log.older == log.lines[0].offset and f"?before={log.older}" in latest.content.decode()
    older = _log_page(client, dba, lab_nodes["db1"], before=log.older).context["log"]
    last = older.lines[-1]
    assert last.offset + len(last.text.encode()) + 1 == log.older  # adjacent, no line lost


@lab_db
def test_the_viewer_shows_the_latest_lines_of_the_mariadb_log(client, dba, lab_nodes):
    response = _log_page(client, dba, lab_nodes["my1"])
    log = response.context["log"]
    assert log.error == "" and log.location.path.endswith("error.log")
    assert log.lines and log.location.sudo_user == "mysql"


@lab_db
def test_a_search_term_with_shell_text_is_searched_literally_and_runs_nothing(
    client, dba, lab_nodes, tmp_path
):
    marker = tmp_path / "x"
    term = f"$(touch {marker}); echo 'it\"s' ; `touch {marker}`"
    response = _log_page(client, dba, lab_nodes["db1"], term=term)
    assert response.status_code == 200
    assert response.context["log"].error == "" and response.context["log"].lines == []
    assert "No line contains it." in response.content.decode()
    assert not marker.exists()
    entry = AuditEntry.objects.filter(node="db1", command__contains="grep").latest("pk")
    assert "touch" in entry.command  # the term went to grep as one argument


@lab_db
def test_a_search_term_with_a_newline_is_refused_by_the_form_and_nothing_runs(
    client, dba, lab_nodes
):
    since = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first()
    response = _log_page(client, dba, lab_nodes["db1"], term="FATAL\nERROR")
    assert response.status_code == 200 and response.context["log"] is None
    assert "one line of text" in response.content.decode()
    assert not AuditEntry.objects.filter(pk__gt=since, action__startswith="remote.").exists()


@lab_db
def test_the_log_of_a_node_that_is_down_is_an_error_on_the_page(client, dba, node_down):
    response = _log_page(client, dba, node_down)
    assert response.status_code == 200
    page = response.content.decode()
    assert "does not know where this node writes" in page and "unreachable: " in page


@pytest.mark.django_db
def test_log_viewer_is_forbidden_to_helpdesk(client, helpdesk):
    client.force_login(helpdesk)
    assert client.get(reverse("clusters:node_log", args=[1])).status_code == 403


@pytest.mark.django_db
def test_log_viewer_refuses_post(client, dba):
    client.force_login(dba)
    assert client.post(reverse("clusters:node_log", args=[1])).status_code == 405


@pytest.mark.django_db
def test_log_viewer_of_an_unknown_node_is_404(client, dba):
    client.force_login(dba)
    assert client.get(reverse("clusters:node_log", args=[999999])).status_code == 404
