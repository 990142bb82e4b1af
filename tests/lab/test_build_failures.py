"""A part of the lab that fails to build says why, and `up` builds it once more from nothing.

CI once saw MariaDB's first build fail in one of two labs built at once and printed only
mariadb-install-db's generic advice: the reason is in stderr or in the server's error log.
"""

import shutil
import uuid
from pathlib import Path

import pytest

from console.lab import proc
from console.lab.lab import Lab
from console.lab.net import LabNet
from console.lab.part import LOCALHOST, Part
from console.lab.parts.mariadb import MariaDB
from console.lab.proc import LabError


@pytest.fixture
def lab():
    # Under /var/lib, not pytest's tmp_path: the mysql user must reach the data directory.
    directory = Path(f"/var/lib/dbconsole-lab-test-{uuid.uuid4().hex[:8]}")
    yield Lab(directory, LabNet.from_env())
    for pid in proc.processes_using(directory):
        proc.terminate(pid, None, f"test process {pid}")
    shutil.rmtree(directory, ignore_errors=True)


def test_a_failed_command_ends_its_error_with_what_it_wrote_to_stderr():
    script = "head -c 5000 /dev/zero | tr '\\0' x; echo 'the real reason' >&2; exit 3"
    with pytest.raises(LabError) as caught:
        proc.run(["sh", "-c", script])
    message = str(caught.value)
    assert message.startswith("sh exited 3: ")
    assert message.endswith("the real reason")


def test_a_failed_mariadb_install_names_the_reason_from_its_error_log(lab):
    class Misconfigured(MariaDB):
        def render_cnf(self, rec: dict) -> str:
            return super().render_cnf(rec) + "no-such-option = 1\n"

    part = Misconfigured(lab, LOCALHOST)
    proc.make_dir(lab.dir, mode=0o755)
    rec = {"host": "127.0.0.1", "port": proc.free_port(None, set(), "127.0.0.1")}
    with pytest.raises(LabError) as caught:
        part.build(rec)
    message = str(caught.value)
    assert message.startswith("mariadb-install-db exited")
    assert "unknown variable 'no-such-option=1'" in message


class Flaky(Part):
    """A part whose first `failures` builds fail; no process, nothing on disk."""

    name = "flaky"
    comm = "flaky"
    description = "a part that fails to build"

    def __init__(self, lab, failures: int):
        super().__init__(lab)
        self.failures = failures
        self.builds = 0
        self.stops = 0

    def build(self, rec: dict) -> None:
        self.builds += 1
        if self.builds <= self.failures:
            raise LabError(f"start number {self.builds} failed")

    def stop_all(self, rec: dict) -> None:
        self.stops += 1


def test_a_part_whose_first_build_fails_is_built_again_and_the_failure_reported(lab):
    part, said = Flaky(lab, failures=1), []
    part.dir.mkdir(parents=True)  # as a half-built part leaves it: stop_part then stops it
    lab.build_part(part, {}, report=said.append)
    assert part.builds == 2
    assert part.stops == 1
    assert said == ["flaky      FAILED, building it again from nothing: start number 1 failed"]


def test_a_part_that_fails_twice_is_not_tried_a_third_time(lab):
    part = Flaky(lab, failures=5)
    with pytest.raises(LabError, match="^flaky: start number 2 failed$"):
        lab.build_part(part, {}, report=lambda line: None)
    assert part.builds == 2
