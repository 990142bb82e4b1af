"""The restore plan without a lab: recovery targets checked naming the field, the backup chosen
from a catalog read from real pg_rman captures, and the commands built for both engines (the
pg_rman one is the captured `restore --recovery-target-time` command, its time given in UTC)."""

from datetime import UTC, datetime

import pytest

from backups import actions
from backups.drivers import pg_rman
from backups.models import BackupCatalog, BackupRun
from backups.restore_followups import recovery_cleanup_commands
from backups.restore_plan import PlanError, make_plan, parse_target, wal_segment
from clusters.models import Node
from tests import factories
from tests.backups.pg_rman_captures import capture, raw


@pytest.mark.parametrize(
    ("kind", "value", "options", "field", "words"),
    [
        ("time", "yesterday-ish", {}, "target_value", "expected a time as YYYY-MM-DD HH:MM:SS"),
        ("time", "2026-02-30 10:00:00", {}, "target_value", "not a real date and time"),
        ("time", "", {}, "target_value", "give a point in time"),
        ("xid", "0", {}, "target_value", "a transaction id: must be between 1"),
        ("xid", "12abc", {}, "target_value", "must be a whole number"),
        ("timeline", "-1", {}, "target_value", "must be between 1"),
        ("timeline", "2", {"inclusive": True}, "target_inclusive", "only a time or an xid"),
        ("latest", "2026-11-25 20:24:23", {}, "target_value", "the latest point takes no value"),
        ("lsn", "0/1", {}, "target_kind", "one of latest, time, xid, timeline"),
        ("time", "2026-11-25 20:24:23", {"action": "explode"}, "target_action", "one of promote"),
    ],
)
def test_a_bad_recovery_target_is_refused_naming_the_field(kind, value, options, field, words):
    with pytest.raises(PlanError) as refused:
        parse_target(kind, value, **options)
    assert refused.value.field == field and words in refused.value.message


def test_a_target_time_is_read_in_utc_unless_it_gives_an_offset():
    plain = parse_target("time", "2026-11-25 20:24:23")
    assert plain.value == "2026-11-25 20:24:23+00"
    assert plain.moment == datetime(2026, 11, 25, 20, 24, 23, tzinfo=UTC)
    shifted = parse_target("time", "2026-11-25 22:24:23.5+02:00", inclusive=False)
    assert (shifted.value, shifted.inclusive) == ("2026-11-25 20:24:23.5+00", False)
    assert parse_target("time", "2026-11-25T20:24:23Z").value == "2026-11-25 20:24:23+00"


def test_wal_segments_are_named_from_the_lsn_and_timeline_as_postgresql_does():
    ini = pg_rman.parse_backup_ini(raw("backup.ini"))  # TIMELINEID=2, START_LSN=0/0e000028
    assert wal_segment(ini.start_lsn, ini.timeline) == "00000002000000000000000E"
    assert wal_segment("1/FF000000", 1) == "0000000100000001000000FF"
    assert wal_segment("", 1) == ""


@pytest.fixture
def rman_catalog(dba):
    """A pg_rman catalog as read from the captured `show detail` and `show <timestamp>`."""
    cluster = factories.make_monitored_cluster("rman-restore")
    catalog = BackupCatalog.objects.create(
        cluster=cluster,
        name="main",
        engine="pg_rman",
        path="/srv/pgr/backup",
        arclog_path="/srv/pgr/arclog",
    )
    listing = pg_rman.parse_show(capture("show-detail.txt").stdout)
    exact = pg_rman.parse_backup_inis(capture("show-timestamp-full.txt").stdout)
    actions.store_catalog_listing(catalog, actions.merge_listing(listing, exact), actor=dba)
    bare = Node.objects.create(
        name="rman-bare",
        service="none",
        address="192.0.2.7",
        known_hosts="192.0.2.7 ssh-ed25519 AAAA",
    )
    return catalog, bare


@pytest.mark.django_db
def test_pg_rman_plan_builds_the_captured_restore_and_picks_its_base_backup(rman_catalog):
    catalog, bare = rman_catalog
    captured = capture("restore-recovery-target-time.txt")
    target = parse_target("time", "2026-11-25 20:24:23", action="promote")
    plan = make_plan(catalog, bare, target, data_directory="/srv/pgr/data", port=55432)
    # The captured command, the time in UTC with its offset (PostgreSQL reads it the same),
    # and -A given as the catalog records it (the capture's pg_rman.ini held it).
    expected = [
        a if a != "2026-11-25 20:24:23" else "2026-11-25 20:24:23+00" for a in captured.argv
    ]
    at = expected.index("-D") + 2
    expected[at:at] = ["-A", "/srv/pgr/arclog"]
    assert plan.command.argv == expected and plan.command.os_user == "postgres"
    # The base pg_rman itself chose for that target is the one the plan shows.
    assert plan.backup.backup_id == pg_rman.parse_restore("", captured.stderr).base_backup
    assert (plan.in_place, plan.confirm_word) == (False, "rman-restore")
    # An archive backup (WAL only) is never a base; a time before every backup has none.
    latest = make_plan(
        catalog, bare, parse_target("latest"), data_directory="/srv/pgr/data", port=55432
    )
    assert latest.backup.mode == "full" and latest.backup.backup_id == "2026-11-25 20:23:55"
    assert latest.command.argv[-2:] == ["-A", "/srv/pgr/arclog"]  # no target, no action
    with pytest.raises(PlanError, match="no usable backup ended before 2026-11-25 20:00:00"):
        make_plan(
            catalog,
            bare,
            parse_target("time", "2026-11-25 20:00:00"),
            data_directory="/srv/pgr/data",
            port=55432,
        )
    xid = make_plan(
        catalog,
        bare,
        parse_target("xid", "727", inclusive=False),
        data_directory="/srv/pgr/data",
        port=55432,
    )
    assert xid.backup.backup_id == "2026-11-25 20:23:43"  # RECOVERY_XID=726 < 727
    assert xid.command.argv[-3:] == [
        "727",
        "--recovery-target-inclusive=false",
        "--recovery-target-action=promote",
    ]


@pytest.mark.django_db
def test_a_corrupt_or_unvalidated_pg_rman_backup_is_never_offered(rman_catalog):
    catalog, bare = rman_catalog
    BackupRun.objects.filter(catalog=catalog, backup_id="2026-11-25 20:23:55").update(
        status="corrupt"
    )
    BackupRun.objects.filter(catalog=catalog, backup_id="2026-11-25 20:23:50").update(status="done")
    plan = make_plan(catalog, bare, parse_target("latest"), data_directory="/d", port=5433)
    assert plan.backup.backup_id == "2026-11-25 20:23:43"
    BackupRun.objects.filter(catalog=catalog, backup_id="2026-11-25 20:23:43").update(
        status="error"
    )
    with pytest.raises(PlanError) as refused:
        make_plan(catalog, bare, parse_target("latest"), data_directory="/d", port=5433)
    assert refused.value.field == "catalog"
    assert "3 other backups are not usable" in refused.value.message


@pytest.mark.django_db
def test_the_target_node_directory_and_port_are_checked_naming_the_field(rman_catalog):
    catalog, bare = rman_catalog
    latest = parse_target("latest")
    cases = [
        ({"data_directory": ""}, "data_directory", "give the data directory"),
        ({"data_directory": "relative/dir"}, "data_directory", "an absolute path"),
        ({"data_directory": "/srv/a b"}, "data_directory", "an absolute path"),
        ({"data_directory": "/srv/../etc"}, "data_directory", "no '..'"),
        ({"data_directory": "/srv/x$(id)"}, "data_directory", "an absolute path"),
        ({"data_directory": "/srv/x", "port": None}, "port", "must be a whole number"),
        ({"data_directory": "/srv/x", "port": 80}, "port", "above 1023"),
    ]
    for options, field, words in cases:
        with pytest.raises(PlanError) as refused:
            make_plan(catalog, bare, latest, **options)
        assert (refused.value.field, words in refused.value.message) == (field, True), options
    standby = Node.objects.create(
        name="rman-standby",
        cluster=catalog.cluster,
        role="standby",
        service="postgresql",
        address="192.0.2.8",
        known_hosts="x",
    )
    with pytest.raises(PlanError, match="rebuild standbys from it") as refused:
        make_plan(catalog, standby, latest)
    assert refused.value.field == "target_node"
    primary = Node.objects.create(
        name="rman-primary",
        cluster=catalog.cluster,
        role="primary",
        service="postgresql",
        address="192.0.2.9",
        known_hosts="x",
        db_port=5444,
        data_directory="/srv/pgr/data",
    )
    plan = make_plan(catalog, primary, latest)
    assert (plan.in_place, plan.port, plan.confirm_word) == (True, 5444, "rman-primary")
    assert plan.data_directory == "/srv/pgr/data"
    with pytest.raises(PlanError, match="leave it empty"):
        make_plan(catalog, primary, latest, data_directory="/elsewhere")


@pytest.mark.django_db
def test_pgbackrest_plan_names_the_set_and_the_target_options(dba):
    cluster = factories.make_monitored_cluster("brest-restore")
    catalog = BackupCatalog.objects.create(
        cluster=cluster, name="r", engine="pgbackrest", path="/srv/repo", stanza="main"
    )
    ended = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    BackupRun.objects.create(
        catalog=catalog,
        cluster=cluster,
        mode="full",
        status="ok",
        backup_id="20261126-005900F",
        started=ended,
        ended=ended,
        start_lsn="0/5000028",
        timeline=1,
    )
    bare = Node.objects.create(
        name="brest-bare", service="none", address="192.0.2.10", known_hosts="x"
    )
    xid = make_plan(
        catalog,
        bare,
        parse_target("xid", "900", inclusive=False, action="pause"),
        data_directory="/srv/clone",
        port=5433,
    )
    argv = xid.command.argv
    assert argv[argv.index("restore") + 1 :] == [
        "--type=xid",
        "--target=900",
        "--target-exclusive",
        "--target-action=pause",
        "--set=20261126-005900F",
    ]
    assert "--pg1-path=/srv/clone" in argv and "--no-config" in argv
    assert xid.wal_first == "000000010000000000000005"
    timeline = make_plan(
        catalog, bare, parse_target("timeline", "1"), data_directory="/srv/c", port=5433
    )
    assert timeline.command.argv[timeline.command.argv.index("restore") + 1] == (
        "--target-timeline=1"
    )


def test_pg_rman_recovery_settings_are_removed_include_first():
    """pg_rman appended `include = 'pg_rman_recovery.conf' # added by pg_rman 1.3.19` (its
    README) and wrote the file (restore-pg_rman_recovery.conf): the include goes first."""
    run = BackupRun()  # only the data directory is read
    run.target_data_directory = "/srv/pgr/data"
    first, second = recovery_cleanup_commands(run)
    assert first[:3] == ["sed", "-i", "-e"] and first[-1] == "/srv/pgr/data/postgresql.conf"
    import re

    pattern = first[3].strip("/").removesuffix("/d")
    assert re.search(pattern, "include = 'pg_rman_recovery.conf' # added by pg_rman 1.3.19")
    assert "restore_command" in raw("restore-pg_rman_recovery.conf")
    assert second == ["rm", "-f", "--", "/srv/pgr/data/pg_rman_recovery.conf"]


@pytest.mark.django_db
def test_a_restore_whose_worker_died_no_longer_blocks_the_node(rman_catalog, dba):
    from backups.models import RestoreRun
    from backups.restore import release_abandoned
    from console import audit
    from console.models import AuditEntry

    catalog, bare = rman_catalog
    dead = factories.make_job(kind="backups.restore", status="errored")
    stuck = RestoreRun.objects.create(
        cluster=catalog.cluster,
        catalog=catalog,
        target_node=bare,
        status="running",
        job=dead,
        started=dead.created,
    )
    assert release_abandoned(bare, actor=dba) == 1
    stuck.refresh_from_db()
    assert stuck.status == "failed" and f"job #{dead.pk} ended (errored)" in stuck.message
    entry = AuditEntry.objects.get(action=audit.BACKUP_RESTORE)
    assert entry.status == "failed" and entry.target == f"restore_run:{stuck.pk}"
    alive = factories.make_job(kind="backups.restore", status="running")
    RestoreRun.objects.create(
        cluster=catalog.cluster, catalog=catalog, target_node=bare, status="running", job=alive
    )
    assert release_abandoned(bare, actor=dba) == 0  # a live job keeps its restore


@pytest.mark.django_db
def test_an_address_that_is_not_a_plain_host_is_refused(rman_catalog):
    catalog, bare = rman_catalog
    bare.address = "10.0.0.1' -c evil='x"
    with pytest.raises(PlanError, match="not a plain host name") as refused:
        make_plan(catalog, bare, parse_target("latest"), data_directory="/d", port=5433)
    assert refused.value.field == "target_node"
