"""Where the lab may live: sshd's StrictModes refuses keys under a directory others can write."""

from pathlib import Path

import pytest

from console.lab.lab import DEFAULT_LAB_DIR, lab_dir_from_env
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
