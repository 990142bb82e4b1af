"""A whole lab, built from nothing and brought down, leaves nothing behind.

This runs a second, throwaway lab (its own LAB_DIR, namespace prefix, bridge and /24, picked
from 10.77.200-249 so that it meets no other lab), never the session's: the session lab must
be untouched, which the last test checks.
"""

import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.lab.lab import Lab
from console.lab.net import HOST_NAMES, LabNet, require_lab_network

REPO = Path(__file__).resolve().parents[2]


def unused_network() -> str:
    """A /24 of 10.77.200-249 that no link has an address in."""
    out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True)
    used = {a["local"] for link in json.loads(out.stdout) for a in link.get("addr_info", [])}
    for offset in range(50):
        network = ipaddress.IPv4Network(f"10.77.{200 + (os.getpid() + offset) % 50}.0/24")
        if not any(ipaddress.IPv4Address(address) in network for address in used):
            return str(network)
    raise RuntimeError("no free /24 in 10.77.200.0-10.77.249.0")


@pytest.fixture(scope="module")
def throwaway(lab):
    """Environment of a throwaway lab; whatever happens, it is brought down at the end."""
    tag = f"t{os.getpid() % 100000}"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LAB_", "LDAP_", "DATABASE_URL", "CELERY_"))
    }
    env.update(
        LAB_DIR=f"/var/lib/dbconsole-lab-{tag}",
        LAB_NET=unused_network(),
        LAB_PREFIX=f"{tag}-",
        LAB_BRIDGE=tag,
    )
    yield env
    subprocess.run(lab_argv("down"), env=env, capture_output=True, timeout=120)


def lab_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "console.lab", *args]


def run_lab(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        lab_argv(*args), env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )


def throwaway_lab(env: dict) -> Lab:
    net = LabNet.parse(env["LAB_NET"], env["LAB_PREFIX"], env["LAB_BRIDGE"])
    return Lab(Path(env["LAB_DIR"]), net)


@pytest.fixture(scope="module")
def cycled(throwaway):
    """Up from nothing, status, down: the outputs and how long up and down took."""
    started = time.monotonic()
    up = run_lab(throwaway, "up")
    up_seconds = time.monotonic() - started
    status = run_lab(throwaway, "status")
    started = time.monotonic()
    down = run_lab(throwaway, "down")
    down_seconds = time.monotonic() - started
    print(f"\nthrowaway lab: up {up_seconds:.1f} s, down {down_seconds:.1f} s")
    return {"up": up, "status": status, "down": down, "up_s": up_seconds, "down_s": down_seconds}


def test_up_builds_every_part_from_nothing(cycled):
    assert cycled["up"].returncode == 0, cycled["up"].stderr
    assert cycled["status"].returncode == 0, cycled["status"].stdout


def test_up_prints_how_long_each_part_took(cycled, throwaway):
    lines = cycled["up"].stdout.splitlines()
    started = [line for line in lines if " started " in line]
    assert len(started) == len(throwaway_lab(throwaway).parts)
    assert all(line.endswith(" s") for line in started)


def test_whole_lab_comes_up_in_under_30_seconds(cycled):
    assert cycled["up_s"] < 30


def test_down_leaves_nothing_behind(cycled, throwaway):
    assert cycled["down"].returncode == 0, cycled["down"].stderr
    assert throwaway_lab(throwaway).leftovers() == []


def test_down_leaves_no_namespace_or_link(cycled, throwaway):
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [ns for ns in namespaces.split() if ns.startswith(throwaway["LAB_PREFIX"])]
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout)
    assert not [
        link["ifname"] for link in links if link["ifname"].startswith(throwaway["LAB_BRIDGE"])
    ]


def test_down_leaves_no_process(cycled, throwaway):
    pgrep = subprocess.run(["pgrep", "-a", "-f", throwaway["LAB_DIR"] + "/"], capture_output=True)
    assert pgrep.stdout == b""


def test_down_removes_the_etc_netns_directories(cycled, throwaway):
    for host in HOST_NAMES:
        assert not Path(f"/etc/netns/{throwaway['LAB_PREFIX']}{host}").exists()


def test_another_lab_using_the_session_bridge_name_is_refused(lab, throwaway, tmp_path_factory):
    # Same bridge and prefix as the session lab, another directory: up refuses, down touches
    # nothing of the session lab.
    env = {**throwaway, "LAB_DIR": "/var/lib/dbconsole-lab-intruder", "LAB_NET": unused_network()}
    env.update(LAB_PREFIX=lab.net.prefix, LAB_BRIDGE=lab.net.bridge)
    up = run_lab(env, "up", "net")
    run_lab(env, "down")
    assert up.returncode == 1
    assert f"link {lab.net.bridge} exists" in up.stderr


def test_session_lab_is_untouched(lab, cycled):
    require_lab_network(lab.net.bridge)
    assert lab.missing() == []
    assert all(row[2:] == ("present", "up", "running") for row in lab.host_status())
