"""Where the lab may live (sshd's StrictModes refuses keys under a directory others can write)
and on which network (pure: no server)."""

from pathlib import Path

import pytest

from console.lab.lab import DEFAULT_LAB_DIR, lab_dir_from_env, net_for
from console.lab.net import Host, LabNet
from console.lab.proc import LabError


def test_default_lab_dir_when_unset(monkeypatch):
    monkeypatch.delenv("LAB_DIR", raising=False)
    assert lab_dir_from_env() == Path(DEFAULT_LAB_DIR)


def test_lab_dir_from_environment(monkeypatch):
    monkeypatch.setenv("LAB_DIR", "/var/lib/dbconsole-lab-other")
    assert lab_dir_from_env() == Path("/var/lib/dbconsole-lab-other")


def test_lab_dir_under_world_writable_directory_is_refused(monkeypatch):
    monkeypatch.setenv("LAB_DIR", "/tmp/dbconsole-lab")
    with pytest.raises(LabError, match="others can write"):
        lab_dir_from_env()


def test_relative_lab_dir_is_refused(monkeypatch):
    monkeypatch.setenv("LAB_DIR", "var/lab")
    with pytest.raises(LabError, match="absolute"):
        lab_dir_from_env()


# --- the lab's network configuration (LAB_NET, LAB_PREFIX, LAB_BRIDGE) ----------------------------
def test_default_network_is_10_77_0_0_on_dbclab0(monkeypatch):
    for name in ("LAB_NET", "LAB_PREFIX", "LAB_BRIDGE"):
        monkeypatch.delenv(name, raising=False)
    net = LabNet.from_env()
    assert (str(net.network), net.prefix, net.bridge) == ("10.77.0.0/24", "", "dbclab0")
    assert net.hosts()["db1"].address == "10.77.0.11"
    assert str(net.blackhole) == "10.77.0.0/16"


@pytest.mark.parametrize("network", ["8.8.8.0/24", "10.77.0.0/16", "127.0.0.0/24", "nonsense"])
def test_network_that_is_not_a_private_24_is_refused(network):
    with pytest.raises(LabError, match="LAB_NET"):
        LabNet.parse(network, "", "dbclab0")


def test_bridge_name_too_long_for_its_links_is_refused():
    with pytest.raises(LabError, match="too long"):
        LabNet.parse("10.77.9.0/24", "", "dbclab-long")


def test_prefix_names_the_namespaces():
    net = LabNet.parse("10.77.9.0/24", "me-", "dbcme")
    assert net.hosts()["bare2"].namespace == "me-bare2"
    assert net.veth("bare2") == "dbcme-bare2"


def test_network_differing_from_the_recorded_one_is_refused(monkeypatch, tmp_path):
    (tmp_path / "lab.json").write_text(
        '{"net": {"network": "10.77.9.0/24", "prefix": "", "bridge": "dbclab9"}}'
    )
    monkeypatch.setenv("LAB_NET", "10.77.8.0/24")
    with pytest.raises(LabError, match="bring it down first"):
        net_for(tmp_path)


def test_host_argv_enters_namespace_then_hostname_then_user():
    host = Host("db1", "10.77.0.11", "db1")
    argv = host.argv(["pg_ctl", "status"], user="postgres", uts=True)
    assert argv[:4] == ["ip", "netns", "exec", "db1"]
    assert argv.index("unshare") < argv.index("setpriv") < argv.index("pg_ctl")
    assert argv[-2:] == ["pg_ctl", "status"]


def test_root_namespace_host_argv_is_the_command_itself():
    assert Host("bridge", "10.77.0.1").argv(["slapd", "-f", "x"]) == ["slapd", "-f", "x"]
