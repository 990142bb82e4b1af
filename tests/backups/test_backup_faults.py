# ruff: noqa: F811 (the lab fixtures db1 and site come from test_pgbackrest)
"""Bad input and faults during a backup, against the lab's db1/db2 with pgBackRest (and pg_rman's
road where its binary is missing): each ends the run `failed` with a clear message, in the
engine's own words where the engine ran, and changes nothing else; the next backup may start.

- a catalog whose nodes do not share its path (db2 sees another filesystem there: a tmpfs
  mounted over it in db2's own mount namespace only) is refused before anything is backed up;
- a catalog path postgres may not write, with two nodes: refused by the marker check;
- the server stopped during a backup: pgBackRest's own error; stopped before: the console
  says it cannot reach it; db1 is started again in the test and rebuilt after the module;
- a concurrent run: refused, the firing of a schedule audited, nothing queued.
"""

import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection

from backups import actions, schedule, tasks
from backups.drivers import pgbackrest
from backups.models import BackupCatalog, BackupPolicy, BackupRun
from clusters.models import Node
from console import audit, jobs
from console.lab import faults
from console.models import AuditEntry, Job
from tests.backups.test_pgbackrest import STANZA, db1, site  # noqa: F401


def _wait(what: str, probe, timeout: float = 120.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)  # polling interval; the deadline decides


@pytest.fixture
def db2(db1):
    return Node.objects.get(name="db2")


@pytest.fixture
def shared_catalog(db1, db2, site):
    """The test's repository, seen (the catalog says) by db1 and db2."""
    _parent, repo, _instance, _original = site
    catalog = BackupCatalog.objects.create(cluster=db1.cluster, name="shared", engine="pgbackrest",
                                           path=repo.path, stanza=STANZA)  # fmt: skip
    catalog.nodes.add(db1, db2)
    return catalog


def _sshd_pid(lab_env, host: str) -> int:
    config = f"{lab_env['LAB_DIR']}/ssh-{host}/sshd_config"
    out = subprocess.run(["pgrep", "-o", "-f", f"sshd -f {config}"], capture_output=True,
                         text=True, check=True)  # fmt: skip
    return int(out.stdout.split()[0])


@pytest.fixture
def db2_sees_other_storage(lab_env, site):
    """A tmpfs over the repository's parent in db2's mount namespace only (its sshd's): db1 and
    this machine keep the real directory, db2's sessions see an empty one. Unmounted after."""
    parent = str(site[0])
    ns = ["nsenter", "-t", str(_sshd_pid(lab_env, "db2")), "-m", "--"]
    subprocess.run([*ns, "mount", "-t", "tmpfs", "-o", "size=4m,mode=0777", "tmpfs", parent],
                   check=True)  # fmt: skip
    try:
        yield parent
    finally:
        subprocess.run([*ns, "umount", parent], check=True)


def _engine_ran() -> bool:
    """Whether pgBackRest itself ran (stanza-create or a backup), not only checks and reads."""
    commands = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND)
    return commands.filter(command__regex=r"pgbackrest .*(stanza-create|backup)$").exists()


def _ran(run: BackupRun) -> tuple[str, Job]:
    status = jobs.run_job(run.job_id, tasks.run_backup.body)
    run.refresh_from_db()
    return status, Job.objects.get(pk=run.job_id)


def _repository_backups(catalog, actor) -> list:
    node = catalog.nodes.order_by("name").first()
    out = actions.run_pgbackrest(node, pgbackrest.info(actions.repository(catalog)), actor=actor)
    stanzas = pgbackrest.parse_info(out.stdout)
    return stanzas[0].backups if stanzas else []


@pytest.mark.django_db(transaction=True)
def test_a_catalog_its_nodes_do_not_share_is_refused_before_any_backup(
    shared_catalog, db2_sees_other_storage, dba
):
    run = actions.start_backup(shared_catalog, "full", actor=dba)
    status, job = _ran(run)
    assert (status, run.status, run.usable, run.backup_id) == ("failed", "failed", False, "")
    assert run.message == (
        f"The catalog {shared_catalog.path} is not shared: a file written there on db1 is not "
        "visible on db2. Mount the same storage on every node of the catalog; nothing was "
        "backed up."
    )
    assert job.error == run.message
    # Nothing else: no backup command ran, no stanza or backup in the repository, no marker.
    commands = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND)
    assert not _engine_ran()
    assert [p.name for p in Path(shared_catalog.path).iterdir()] == []  # no stanza, no marker
    assert commands.filter(node="db2", command__contains="test -f").exists()
    finished = AuditEntry.objects.get(action=audit.BACKUP_FINISHED)
    assert finished.status == "failed" and finished.error == run.message
    assert actions.start_backup(shared_catalog, "full", actor=dba).status == "pending"


@pytest.mark.django_db(transaction=True)
def test_a_catalog_path_postgres_may_not_write_is_refused_with_the_systems_words(
    db1,
    db2,
    dba,
    lab_env,
):
    parent = Path(lab_env["LAB_DIR"]) / "pgbackrest-faults-ro"
    shutil.rmtree(parent, ignore_errors=True)
    parent.mkdir(mode=0o755)  # root's: postgres may read, not write
    try:
        catalog = BackupCatalog.objects.create(cluster=db1.cluster, name="ro", stanza=STANZA,
                                               engine="pgbackrest", path=str(parent))  # fmt: skip
        catalog.nodes.add(db1, db2)
        run = actions.start_backup(catalog, "full", actor=dba)
        status, job = _ran(run)
        assert (status, run.status, run.usable) == ("failed", "failed", False)
        assert run.message.startswith(
            f"The catalog path {parent} is not writable by postgres on db1: touch: cannot touch "
        )
        assert run.message.endswith("Permission denied") and job.error == run.message
        assert list(parent.iterdir()) == []
        assert not _engine_ran()
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _run_in_thread(job_id: int) -> str:
    try:
        return jobs.run_job(job_id, tasks.run_backup.body)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_the_server_stopped_during_a_backup_fails_the_run_with_pgbackrests_words(
    db1,
    site,
    dba,
    lab,
    rebuild_parts,
):
    rebuild_parts("primary", "standby", "pgpool")  # after the module, whatever happens here
    _parent, repo, _instance, _original = site
    catalog = BackupCatalog.objects.create(cluster=db1.cluster, name="lab", engine="pgbackrest",
                                           path=repo.path, stanza=STANZA)  # fmt: skip
    catalog.nodes.add(db1)
    policy = BackupPolicy.objects.create(catalog=catalog, name="gz", schedule="0 1 * * *",
                                         mode="full", compress=True)  # fmt: skip
    run = actions.start_backup(policy, "full", actor=dba)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            done = pool.submit(_run_in_thread, run.job_id)
            _wait("the backup command to start", lambda: AuditEntry.objects.filter(
                action=audit.BACKUP_COMMAND, status="started",
                command__contains="backup --type=full").exists())  # fmt: skip
            faults.stop_server(lab, "primary")
            status = done.result(timeout=600)
    finally:
        faults.start_server(lab, "primary")
    run.refresh_from_db()
    job = Job.objects.get(pk=run.job_id)
    assert (status, run.status, run.usable, job.status) == ("failed", "failed", False, "failed")
    outcome = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND, status="failed",
                                        command__contains="backup --type=full").get()  # fmt: skip
    # pgBackRest's own error (its code and words), as the run and the job report it.
    assert "pgBackRest: " in run.message and job.error == run.message
    assert outcome.exit_code not in (0, None) and outcome.exit_code != 41
    print("server stopped during backup:", outcome.exit_code, run.message)
    # Nothing usable was recorded; the cluster is free again once the server is back.
    assert not BackupRun.objects.filter(status="ok").exists()
    assert actions.start_backup(catalog, "full", actor=dba).status == "pending"


@pytest.mark.django_db(transaction=True)
def test_the_server_stopped_before_a_backup_fails_the_run_naming_the_server(
    db1,
    site,
    dba,
    lab,
    rebuild_parts,
):
    rebuild_parts("primary", "standby", "pgpool")
    _parent, repo, _instance, _original = site
    catalog = BackupCatalog.objects.create(cluster=db1.cluster, name="lab", engine="pgbackrest",
                                           path=repo.path, stanza=STANZA)  # fmt: skip
    run = actions.start_backup(catalog, "full", actor=dba)
    faults.stop_server(lab, "primary")
    try:
        status, job = _ran(run)
    finally:
        faults.start_server(lab, "primary")
    assert (status, run.status, run.usable) == ("failed", "failed", False)
    assert "db1" in run.message and job.error == run.message
    assert "refused" in run.message.lower() or "connect" in run.message.lower()
    assert not _engine_ran()
    assert not Path(repo.path).exists()


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_run_is_refused_and_a_firing_meanwhile_is_only_audited(
    db1,
    site,
    dba,
):
    _parent, repo, _instance, _original = site
    catalog = BackupCatalog.objects.create(cluster=db1.cluster, name="lab", engine="pgbackrest",
                                           path=repo.path, stanza=STANZA)  # fmt: skip
    catalog.nodes.add(db1)
    nightly = schedule.create_policy(BackupPolicy(catalog=catalog, name="nightly", mode="incr",
                                                  schedule="0 1 * * *", compress=False),
                                     actor=dba)  # fmt: skip
    first = actions.start_backup(catalog, "full", actor=dba)
    with pytest.raises(actions.BackupRefused, match="already queued or running; one at a time"):
        actions.start_backup(nightly, "incr", actor=dba)
    assert schedule.fire_policy(nightly.pk) is None
    assert AuditEntry.objects.filter(action=audit.BACKUP_SCHEDULE_SKIPPED).count() == 1
    assert BackupRun.objects.count() == 1 and Job.objects.count() == 1
    status, _job = _ran(first)
    assert (status, first.status) == ("succeeded", "ok")
    second = schedule.fire_policy(nightly.pk)  # free again: the next firing starts
    assert second is not None and _ran(second)[0] == "succeeded"
    assert [b.label for b in _repository_backups(catalog, dba)] == [first.backup_id,
                                                                   second.backup_id]  # fmt: skip
    assert os.environ["LAB_PG_PASSWORD"] not in "".join(
        AuditEntry.objects.values_list("command", flat=True))  # fmt: skip
