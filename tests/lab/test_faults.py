"""Fault helpers do what they say, for real, and undo it: crash, cut, partition, stop/start.

Destructive tests use bare2 (sshd only) and MariaDB; `rebuild_parts` rebuilds what they broke
after the module, so the other modules find the lab as `lab up` left it.
"""

import time

import MySQLdb
import pytest

from console.lab import faults, proc
from console.lab.parts.network import namespace_pids


def test_crashed_host_refuses_connections_at_once(lab, rebuild_parts):
    rebuild_parts("ssh-bare2")
    bare2 = lab.host("bare2")
    assert faults.connect_result(bare2.address, 22) == "open"
    faults.crash_host(lab, "bare2")
    started = time.monotonic()
    assert faults.connect_result(bare2.address, 22, timeout=5) == "refused"
    assert time.monotonic() - started < 1


def test_crashed_host_has_no_process_left(lab, rebuild_parts):
    rebuild_parts("ssh-bare2")
    killed = faults.crash_host(lab, "bare2")
    assert not [pid for pid in killed if proc.alive(pid)]
    assert not [pid for pid in namespace_pids(lab.host("bare2").namespace) if proc.alive(pid)]


def test_crashed_host_comes_back_with_lab_up(lab, rebuild_parts):
    rebuild_parts("ssh-bare2")
    faults.crash_host(lab, "bare2")
    assert lab.state_of("ssh-bare2") == "stopped"
    lab.up(["ssh-bare2"], report=lambda line: None)
    assert faults.connect_result(lab.host("bare2").address, 22) == "open"


def test_cut_link_makes_connections_time_out(lab):
    bare2 = lab.host("bare2")
    with faults.cut(lab, "bare2"):
        assert faults.connect_result(bare2.address, 22, timeout=1) == "timeout"
        assert faults.connect_result(bare2.address, 22, lab.host("bare1"), timeout=1) == "timeout"
    assert faults.connect_result(bare2.address, 22) == "open"
    assert faults.connect_result(bare2.address, 22, lab.host("bare1")) == "open"


def test_cut_link_shows_in_status(lab):
    with faults.cut(lab, "bare2"):
        links = {row[0]: row[3] for row in lab.host_status()}
    assert links["bare2"] == "down"
    assert {row[0]: row[3] for row in lab.host_status()}["bare2"] == "up"


def test_partition_separates_only_the_two_peers(lab):
    bare1, bare2, db1 = lab.host("bare1"), lab.host("bare2"), lab.host("db1")
    with faults.partitioned(lab, "bare1", "bare2"):
        assert faults.connect_result(bare2.address, 22, bare1, timeout=1) == "timeout"
        assert faults.connect_result(bare1.address, 22, bare2, timeout=1) == "timeout"
        assert faults.connect_result(bare1.address, 22, db1) == "open"
        assert faults.connect_result(bare2.address, 22, db1) == "open"
        assert faults.connect_result(bare1.address, 22) == "open"
    assert faults.connect_result(bare2.address, 22, bare1) == "open"


def test_heal_without_a_peer_heals_every_partition_of_the_host(lab):
    bare1 = lab.host("bare1")
    faults.partition(lab, "bare1", "bare2")
    faults.partition(lab, "bare1", "db1")
    faults.heal(lab, "bare1")
    assert faults.connect_result(lab.host("bare2").address, 22, bare1) == "open"
    assert faults.connect_result(lab.host("db1").address, 22, bare1) == "open"


def mariadb_admin(lab_env):
    return MySQLdb.connect(
        host=lab_env["LAB_MYSQL_HOST"],
        port=int(lab_env["LAB_MYSQL_PORT"]),
        user=lab_env["LAB_MYSQL_USER"],
        password=lab_env["LAB_MYSQL_PASSWORD"],
        connect_timeout=5,
    )


def test_stopped_server_refuses_and_starts_again_with_its_data(lab, lab_env, rebuild_parts):
    rebuild_parts("mariadb")
    conn = mariadb_admin(lab_env)
    try:
        conn.cursor().execute("CREATE TABLE IF NOT EXISTS appdb.fault_marker (id INT PRIMARY KEY)")
        conn.cursor().execute("REPLACE INTO appdb.fault_marker VALUES (42)")
        conn.commit()
    finally:
        conn.close()
    my1 = lab.host("my1")
    faults.stop_server(lab, "mariadb")
    assert faults.connect_result(my1.address, 3306) == "refused"
    faults.start_server(lab, "mariadb")
    conn = mariadb_admin(lab_env)
    try:
        cur = conn.cursor()
        cur.execute("SELECT id FROM appdb.fault_marker")
        assert cur.fetchall() == ((42,),)
    finally:
        conn.close()


def test_wait_port_open_names_what_it_waited_for(lab):
    with pytest.raises(proc.LabError, match=r"10\.\d+\.\d+\.\d+:9 to accept connections"):
        faults.wait_port_open(lab.host("bare1").address, 9, timeout=0.3)


def test_wait_port_open_from_inside_a_host(lab):
    faults.wait_port_open(lab.host("db1").address, 22, timeout=5, from_host=lab.host("bare1"))
