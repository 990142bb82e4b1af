"""Pure helpers of provisioning: synchronous_standby_names read and written, /etc/os-release,
pg_hba and dbconsole.conf rendering, default paths."""

import pytest

from clusters.provision.pg import PgSpec, default_paths, render_conf, render_hba
from clusters.provision.remote import parse_os_release, pgpass_field
from clusters.provision.standby import (
    StandbySpec,
    parse_sync_names,
    render_sync_names,
    wanted_sync_names,
)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("", ("FIRST", 0, [])),
        ("db2", ("FIRST", 1, ["db2"])),
        ("a, b", ("FIRST", 1, ["a", "b"])),
        ('FIRST 2 ("a", "b", c)', ("FIRST", 2, ["a", "b", "c"])),
        ("any 1 (s1,s2)", ("ANY", 1, ["s1", "s2"])),
        ("2 (a, b)", ("FIRST", 2, ["a", "b"])),
    ],
)
def test_synchronous_standby_names_are_read_as_postgresql_reads_them(value, parsed):
    assert parse_sync_names(value) == parsed


def _standby(**kw) -> StandbySpec:
    return StandbySpec(node_name="n", application_name="s2", data_directory="/d", port=5432,
                       listen_addresses=["10.0.0.2"], socket_directory="/s", log_file="/l",
                       **kw)  # fmt: skip


def test_a_new_standby_is_added_to_the_names_already_listed():
    assert wanted_sync_names("", _standby()) == 'FIRST 1 ("s2")'
    assert wanted_sync_names('FIRST 1 ("s1")', _standby(sync_method="ANY")) == 'ANY 1 ("s1", "s2")'
    assert wanted_sync_names('ANY 1 ("s1", "s2")', _standby(sync_method="ANY")) == (
        'ANY 1 ("s1", "s2")'
    )
    # n never exceeds the names listed (FIRST 2 of one standby would block every commit)
    assert wanted_sync_names("", _standby(sync_count=2)) == 'FIRST 1 ("s2")'
    assert render_sync_names("FIRST", 1, ['we"ird']) == 'FIRST 1 ("we""ird")'


def test_os_release_is_parsed_with_quotes():
    text = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n# comment\nVERSION_ID="12"\n'
    assert parse_os_release(text) == {"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
                                      "ID": "debian", "VERSION_ID": "12"}  # fmt: skip
    assert pgpass_field(r"a:b\c") == r"a\:b\\c"


def test_rendered_files_hold_the_spec():
    spec = PgSpec(cluster="c", node_name="c-h", data_directory="/srv/pg/c",
                  **default_paths("/srv/pg/c"), listen_addresses=["10.0.0.1", "10.0.1.1"],
                  networks=["10.0.0.0/24"], archive_directory="/arch ive",
                  admin_credential="c-admin")  # fmt: skip
    assert spec.socket_directory == "/srv/pg/c.run" and spec.log_file == "/srv/pg/c.log"
    conf = render_conf(spec, archive_directory=spec.archive_directory)
    assert "listen_addresses = '10.0.0.1,10.0.1.1'" in conf
    assert "unix_socket_directories = '/srv/pg/c.run'" in conf
    assert "archive_command = 'test ! -f ''/arch ive''/%f && cp %p ''/arch ive''/%f'" in conf
    hba = render_hba(spec, local="scram-sha-256").splitlines()
    assert hba[2].split() == ["local", "all", "all", "scram-sha-256"]
    assert hba[3].split() == ["host", "all", "all", "10.0.0.0/24", "scram-sha-256"]
    assert hba[4].split() == ["host", "replication", "replicator", "10.0.0.0/24", "scram-sha-256"]
