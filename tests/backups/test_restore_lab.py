# ruff: noqa: F811 (pytest fixtures imported from test_pgbackrest are parameters here)
"""The restore wizard's plan, pre-checks and job against the lab, with pgBackRest.

db1 archives into a repository under the lab directory (the hosts share the filesystem, as an
NFS mount would be shared), set up and undone by test_pgbackrest's `site` fixture. A restore
to a noted time runs as the `backups.restore` job onto bare1 (another registered host: a
clone), and the restored server itself holds exactly the rows committed before that time. A
restore onto a running server is refused before anything on disk is touched, by the action
and by the job. A damaged backup is never offered by the plan.
"""

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from psycopg import sql

from backups import actions, restore, restore_followups, restore_server
from backups.models import BackupCatalog, BackupPolicy, RestoreRun
from backups.restore_plan import PlanError, make_plan, parse_target
from clusters.models import Node
from console import audit, jobs
from console.executor import run_command, run_sql
from console.lab.parts.postgres import PG_BIN
from console.models import AuditEntry, Job, JobLogLine
from tests.backups.test_pgbackrest import (  # noqa: F401 (fixtures)
    STANZA,
    backup_now,
    catalog,
    db1,
    site,
    sql1,
    wait_for,
)

TABLE = "restore_wizard_probe"
CHECK = f"SELECT array_agg(id ORDER BY id)::text FROM {TABLE}"  # noqa: S608 (a constant)
CLONE_PORT = 5433


@pytest.fixture
def bare1(db1):
    return Node.objects.get(name="bare1")


@pytest.fixture
def clone_dir(site, bare1, dba):
    parent = site[0]
    path = parent / "clone"
    yield path
    if (path / "postmaster.pid").exists():
        run_command(
            bare1,
            [f"{PG_BIN}/pg_ctl", "-D", str(path), "-m", "immediate", "-w", "stop"],
            actor=dba,
            sudo_user="postgres",
            check=False,
        )
    run_sql(
        db1_of(bare1), sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(TABLE)), actor=dba
    )


def db1_of(_node):
    return Node.objects.get(name="db1")


def _fingerprint(path: Path) -> dict:
    """The files a restore would write, by name and content (pg_stat and WAL excluded: a
    running server changes them on its own)."""
    out = {}
    for name in ("PG_VERSION", "postgresql.auto.conf", "postgresql.conf", "marker"):
        file = path / name
        out[name] = hashlib.sha256(file.read_bytes()).hexdigest() if file.exists() else None
    out["entries"] = sorted(p.name for p in path.iterdir())
    return out


def _policy(catalog):
    """Uncompressed backups: faster in the lab, and the damaged file is the plain one."""
    policy, _ = BackupPolicy.objects.get_or_create(
        catalog=catalog, name="restore-tests", defaults={"schedule": "0 4 * * *", "mode": "full"}
    )
    return policy


def _insert(node, first, last, dba):
    statement = sql.SQL("INSERT INTO {} SELECT generate_series(%(a)s::int, %(b)s::int)").format(
        sql.Identifier(TABLE)
    )
    run_sql(node, statement, {"a": first, "b": last}, actor=dba)


def _outcome_lines(job_id) -> dict[str, list[tuple[str, str]]]:
    """(level, summary without its duration) of the outcome line of each pg_isready and
    `pg_ctl status` call in the job's log (the line after the command's own)."""
    lines = list(
        JobLogLine.objects.filter(job_id=job_id).order_by("pk").values_list("level", "message")
    )
    found = {"pg_isready": [], "pg_ctl status": []}
    for (_, command), (level, outcome) in zip(lines, lines[1:], strict=False):
        for program in found:
            if " $ " in command and program in command:
                found[program].append((level, outcome.rsplit(", ", 1)[0]))
    return found


@pytest.mark.django_db(transaction=True)
def test_a_restore_to_a_noted_time_onto_bare1_has_exactly_the_rows_before_it(
    db1, bare1, catalog, clone_dir, dba, assert_no_secret_stored
):
    run_sql(
        db1,
        sql.SQL("CREATE TABLE {} (id int PRIMARY KEY)").format(sql.Identifier(TABLE)),
        actor=dba,
    )
    full = backup_now(_policy(catalog), "full", dba)
    assert full.usable

    _insert(db1, 1, 5, dba)
    noted = sql1(
        db1,
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
        actor=dba,
    )
    _insert(db1, 6, 8, dba)
    segment = sql1(db1, "SELECT pg_walfile_name(pg_switch_wal())", actor=dba)
    wait_for(
        f"{segment} archived",
        lambda: (
            sql1(db1, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver", actor=dba)
            >= segment
        ),
    )

    target = parse_target("time", noted, action="promote")
    plan = make_plan(
        catalog, bare1, target, data_directory=str(clone_dir), port=CLONE_PORT, check_query=CHECK
    )
    assert (plan.backup, plan.in_place, plan.confirm_word) == (full, False, "lab-pg")
    assert plan.wal_first.startswith(f"{full.timeline:08X}") and len(plan.wal_first) == 24
    assert f"--set={full.backup_id}" in plan.command.argv
    # The console writes the time without trailing zeros (…:58.62437 for …:58.624370).
    written = noted.rstrip("0").rstrip(".")
    assert f"--target={written}+00" in plan.command.argv and "--type=time" in plan.command.argv

    # The wrong name typed: nothing queued, nothing remote.
    calls = AuditEntry.objects.filter(action=audit.BACKUP_COMMAND).count()
    with pytest.raises(restore.RestoreRefused, match="type the cluster's name, lab-pg") as refused:
        restore.start_restore(plan, confirm="lab_pg", actor=dba)
    assert refused.value.field == "confirm"
    assert not RestoreRun.objects.exists() and not Job.objects.filter(kind="backups.restore")
    assert AuditEntry.objects.filter(action=audit.BACKUP_COMMAND).count() == calls

    run = restore.start_restore(plan, confirm="lab-pg", actor=dba)
    checks = {c["name"]: c for c in run.detail.prechecks}
    assert set(checks) == {"server_stopped", "directory", "disk", "repository", "port"}
    assert all(c["ok"] for c in checks.values()), checks
    assert (
        "sees" in checks["repository"]["detail"]
        and full.backup_id in checks["repository"]["detail"]
    )
    assert jobs.run_job(run.job_id, restore.restore_task.body) == "succeeded", Job.objects.get(
        pk=run.job_id
    ).error
    assert jobs.run_job(run.job_id, restore.restore_task.body) == "skipped"  # redelivered
    run.refresh_from_db()
    assert (run.status, run.check_result, run.check_ok) == ("succeeded", "{1,2,3,4,5}", True)
    # The job's pre-checks got their good answers from non-zero exits (no server in the new
    # directory, nothing on the port): the job log shows them as answers, not red failures.
    outcomes = _outcome_lines(run.job_id)
    assert outcomes["pg_isready"] == [
        (JobLogLine.Level.INFO, "[bare1] succeeded, exit code 2 (an expected answer)")
    ]
    assert outcomes["pg_ctl status"][0][0] == JobLogLine.Level.INFO
    assert outcomes["pg_ctl status"][0][1] in {
        "[bare1] succeeded, exit code 3 (an expected answer)",
        "[bare1] succeeded, exit code 4 (an expected answer)",
    }
    assert run.backup == full and run.duration.total_seconds() > 0 and not run.test_restore

    # On the restored server itself (bare1:5433), and db1 still has every row.
    clone = restore_server.restored_target(restore.plan_of(run))
    assert (clone.host, clone.port) == (bare1.address, CLONE_PORT)
    rows = run_sql(
        clone,
        sql.SQL("SELECT array_agg(id ORDER BY id) FROM {}").format(sql.Identifier(TABLE)),
        actor=dba,
    ).rows[0][0]
    assert rows == [1, 2, 3, 4, 5]
    assert sql1(clone, "SELECT pg_is_in_recovery()", actor=dba) is False
    assert sql1(clone, "SHOW archive_mode", actor=dba) == "off"  # never into db1's repository
    assert (
        sql1(db1, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(TABLE)), actor=dba) == 8
    )
    auto = (clone_dir / "postgresql.auto.conf").read_text()
    assert "recovery_target_time" in auto and "archive_mode = 'off'" in auto

    # Follow-up: the recovery settings go (as pg_rman's documentation asks after a restore).
    cleanup = restore_followups.queue_cleanup(run, actor=dba)
    assert jobs.run_job(cleanup.pk, restore_followups.restore_cleanup_task.body) == "succeeded"
    auto = (clone_dir / "postgresql.auto.conf").read_text()
    assert "recovery_target_time" not in auto and "restore_command" not in auto
    run.detail.refresh_from_db()
    assert run.detail.recovery_settings_removed is not None

    entries = AuditEntry.objects.filter(action=audit.BACKUP_RESTORE, target=f"restore_run:{run.pk}")
    assert [e.status for e in entries.order_by("id")] == ["succeeded"] * 3
    assert "queued" in entries.order_by("id").first().output
    assert AuditEntry.objects.filter(
        action=audit.BACKUP_COMMAND, node="bare1", command__contains=" restore "
    ).exists()
    assert_no_secret_stored(
        os.environ["LAB_PG_PASSWORD"], Path(os.environ["LAB_SSH_KEY"]).read_text()
    )

    # The same restore again while the clone runs: refused before anything is touched, by the
    # action (pre-checks) ...
    (clone_dir / "marker").write_text("before")
    before = _fingerprint(clone_dir)
    with pytest.raises(restore.RestoreRefused, match="PostgreSQL is running on bare1"):
        restore.start_restore(plan, confirm="lab-pg", actor=dba)
    assert RestoreRun.objects.count() == 1 and _fingerprint(clone_dir) == before

    # ... and by the job, when the server was started after the restore was queued.
    run_command(
        bare1,
        [f"{PG_BIN}/pg_ctl", "-D", str(clone_dir), "-m", "fast", "-w", "stop"],
        actor=dba,
        sudo_user="postgres",
    )
    again = restore.start_restore(plan, confirm="lab-pg", actor=dba)
    assert again.detail.delta  # a data directory there: restored over with --delta
    run_command(
        bare1,
        [
            f"{PG_BIN}/pg_ctl",
            "-D",
            str(clone_dir),
            "-l",
            str(clone_dir / "restore.log"),
            "-o",
            restore_server.start_options(plan),
            "-w",
            "start",
        ],
        actor=dba,
        sudo_user="postgres",
    )
    restores_before = AuditEntry.objects.filter(command__contains=" restore ").count()
    before = _fingerprint(clone_dir)
    assert jobs.run_job(again.job_id, restore.restore_task.body) == "failed"
    again.refresh_from_db()
    assert again.status == "failed"
    assert again.message.startswith(
        "Refused before anything on disk was touched: PostgreSQL is running on bare1"
    )
    assert Job.objects.get(pk=again.job_id).error == again.message
    assert _fingerprint(clone_dir) == before
    assert AuditEntry.objects.filter(command__contains=" restore ").count() == restores_before


@pytest.mark.django_db(transaction=True)
def test_a_restore_in_place_onto_the_running_primary_is_refused_and_changes_nothing(
    db1, catalog, site, dba
):
    full = backup_now(_policy(catalog), "full", dba)
    # What discovery records of db1 (the node page's data directory).
    db1.data_directory = site[2].path
    db1.save(update_fields=["data_directory"])
    data = Path(db1.data_directory)
    before = _fingerprint(data)
    plan = make_plan(catalog, db1, parse_target("latest"))
    assert (plan.in_place, plan.confirm_word, plan.data_directory) == (True, "db1", str(data))
    assert plan.backup == full and "--delta" in plan.command.argv
    with pytest.raises(restore.RestoreRefused, match="PostgreSQL is running on db1") as refused:
        restore.start_restore(plan, confirm="db1", actor=dba)
    failed = {c.name for c in refused.value.report.failed}
    assert "server_stopped" in failed
    assert not RestoreRun.objects.exists() and not Job.objects.filter(kind="backups.restore")
    assert _fingerprint(data) == before
    assert not AuditEntry.objects.filter(command__contains=" restore ").exists()
    assert sql1(db1, "SELECT pg_is_in_recovery()", actor=dba) is False

    # A time past the archived WAL: PostgreSQL stops during recovery; the job says so in its
    # words at once (no wait for the deadline) and the run is failed.
    bare1 = Node.objects.get(name="bare1")
    future = parse_target("time", f"{timezone.now() + timedelta(hours=1):%Y-%m-%d %H:%M:%S}")
    with pytest.raises(PlanError, match="is in the future"):
        make_plan(catalog, bare1, future, data_directory=str(site[0] / "clone"), port=5433)
    now = sql1(
        db1,
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')",
        actor=dba,
    )  # nothing committed after it is archived yet
    later = parse_target("time", now)
    clone = make_plan(catalog, bare1, later, data_directory=str(site[0] / "clone"), port=5433)
    run = restore.start_restore(clone, confirm="lab-pg", actor=dba)
    began = time.monotonic()
    assert jobs.run_job(run.job_id, restore.restore_task.body) == "failed"
    assert time.monotonic() - began < restore.RECOVERY_TIMEOUT / 10
    run.refresh_from_db()
    assert run.status == "failed" and run.message.startswith("PostgreSQL ")
    assert "on bare1: recovery ended before configured recovery target was reached" in run.message


@pytest.mark.django_db(transaction=True)
def test_a_damaged_backup_is_never_offered_by_the_plan(db1, bare1, catalog, site, dba):
    parent, repo, _instance, _original = site
    older = backup_now(_policy(catalog), "full", dba)
    newer = backup_now(_policy(catalog), "full", dba)
    assert (
        make_plan(
            catalog,
            bare1,
            parse_target("latest"),
            data_directory=str(parent / "c"),
            port=CLONE_PORT,
        ).backup
        == newer
    )

    copy = parent / "repo-damaged"
    run_command(db1, ["cp", "-a", repo.path, str(copy)], actor=dba, sudo_user="postgres")
    damaged_file = copy / "backup" / STANZA / newer.backup_id / "pg_data" / "global" / "pg_control"
    run_command(
        db1,
        ["dd", f"of={damaged_file}", "bs=1", "seek=20", "conv=notrunc"],
        input="XXXXXXXXXXXXXXXX",
        actor=dba,
        sudo_user="postgres",
    )
    damaged = BackupCatalog.objects.create(
        cluster=db1.cluster, name="damaged", stanza=STANZA, engine="pgbackrest", path=str(copy)
    )
    damaged.nodes.add(db1)
    actions.read_repository(damaged, actor=dba)
    statuses = dict(damaged.runs.values_list("backup_id", "status"))
    assert statuses == {older.backup_id: "ok", newer.backup_id: "corrupt"}

    plan = make_plan(
        damaged, bare1, parse_target("latest"), data_directory=str(parent / "c"), port=CLONE_PORT
    )
    assert plan.backup.backup_id == older.backup_id  # the newer one is damaged: never offered
    assert f"--set={older.backup_id}" in plan.command.argv
    # A time after both: still the older, sound one.
    later = parse_target("time", f"{newer.ended:%Y-%m-%d %H:%M:%S}+00")
    assert (
        make_plan(
            damaged, bare1, later, data_directory=str(parent / "c"), port=CLONE_PORT
        ).backup.backup_id
        == older.backup_id
    )
    # Only damaged backups before the target: nothing is offered, the field says why.
    damaged.runs.filter(backup_id=older.backup_id).update(status="corrupt")
    with pytest.raises(PlanError, match="no usable .* backup .*2 other backups are not usable"):
        make_plan(
            damaged,
            bare1,
            parse_target("latest"),
            data_directory=str(parent / "c"),
            port=CLONE_PORT,
        )
