"""The pure WAL continuity helpers: segment arithmetic, listings (a `repo-ls --output=json`
recorded from the lab's pgBackRest 2.45, a `find -printf` of an arclog directory) and the walk
from a backup's first segment (gaps, timeline switches)."""

from datetime import UTC, datetime

import pytest

from backups import assurance_wal as wal
from backups.drivers.base import DriverInputError
from backups.drivers.pgbackrest import Repository

# Recorded: `pgbackrest ... repo-ls archive/<stanza> --recurse --output=json` after a full
# backup on db1 (the .backup file is the backup's label file, archive.info the archive's).
REPO_LS = (
    '{".":{"type":"path"},"15-1":{"type":"path"},"15-1/0000000100000000":{"type":"path"},'
    '"15-1/0000000100000000/000000010000000000000009-0ac263dc11567bbc6f0d18a44debf7e68015bb64.gz":'
    '{"type":"file","size":22286,"time":1795657956},'
    '"15-1/0000000100000000/00000001000000000000000A-1c7ac9b23994314d38288586301187217824291b.gz":'
    '{"type":"file","size":16811,"time":1795657965},'
    '"15-1/0000000100000000/00000001000000000000000A.00000028.backup":'
    '{"type":"file","size":371,"time":1795657965},'
    '"archive.info":{"type":"file","size":253,"time":1795657965},'
    '"archive.info.copy":{"type":"file","size":253,"time":1795657965}}'
)
T = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


def test_segment_names_follow_pg_walfile_name():
    assert wal.lsn_segment(1, "0/A000028") == "00000001000000000000000A"
    assert wal.lsn_segment(3, "1/FF000000") == "0000000300000001000000FF"
    # On a boundary: the record there is in the next segment, the WAL before it ends in this one.
    assert wal.lsn_segment(1, "0/74000000") == "000000010000000000000074"
    assert wal.lsn_segment(1, "0/74000000", end=True) == "000000010000000000000073"
    assert wal.segment_name(1, 256) == "000000010000000100000000"  # after ...FF, the next log
    assert wal.parse_segment("0000000300000001000000FF") == (3, 511)
    assert wal.lsn_segment(1, "0/4000000", 64 * 1024 * 1024) == "000000010000000000000001"
    with pytest.raises(DriverInputError, match="not a WAL segment name"):
        wal.parse_segment("00000001000000000000000a.partial")


def test_repo_ls_lists_segments_with_their_push_time_and_nothing_else():
    found = wal.parse_repo_ls(REPO_LS)
    assert found == {
        "000000010000000000000009": datetime.fromtimestamp(1795657956, UTC),
        "00000001000000000000000A": datetime.fromtimestamp(1795657965, UTC),
    }
    repo = Repository(path="/srv/repo", stanza="main")
    assert wal.repo_ls(repo, "15-1").argv[-4:] == [
        "repo-ls", "archive/main/15-1", "--recurse", "--output=json"]  # fmt: skip
    with pytest.raises(DriverInputError, match="archive id"):
        wal.repo_ls(repo, "../15-1")


def test_arclog_listing_reads_find_output():
    text = "000000010000000000000003\t1795657956.5\n000000010000000000000004.gz\t1795657960.0\n"
    text += "00000002.history\t1795657961.0\n000000010000000000000005.partial\t1795657962.0\n"
    assert list(wal.parse_arclog_ls(text)) == ["000000010000000000000003",
                                               "000000010000000000000004"]  # fmt: skip
    assert wal.arclog_ls("/srv/arclog").argv[:4] == ["env", "--chdir=/srv/arclog", "find", "."]


def _segments(*names):
    return {name: T.replace(minute=i) for i, name in enumerate(names)}


def test_walk_continuous_gap_and_across_a_timeline_switch():
    s = _segments("000000010000000000000009", "00000001000000000000000A",
                  "00000001000000000000000B", "00000001000000000000000C")  # fmt: skip
    found = wal.walk(s, "00000001000000000000000A")
    assert (found.continuous, found.last, found.present, found.restorable_to) == (
        True, "00000001000000000000000C", 3, T.replace(minute=3))  # fmt: skip

    del s["00000001000000000000000B"]
    found = wal.walk(s, "00000001000000000000000A")
    assert (found.first_gap, found.last_restorable, found.missing) == (
        "00000001000000000000000B", "00000001000000000000000A", 1)  # fmt: skip
    assert found.restorable_to == T.replace(minute=1) and found.last == "00000001000000000000000C"

    # Promoted at segment 0B: timeline 2 goes on from there; timeline 1's later names are ignored.
    s = _segments("00000001000000000000000A", "00000002000000000000000B",
                  "00000002000000000000000C", "00000001000000000000000B")  # fmt: skip
    found = wal.walk(s, "00000001000000000000000A")
    assert (found.continuous, found.last, found.last_restorable) == (
        True, "00000002000000000000000C", "00000002000000000000000C")  # fmt: skip

    nothing = wal.walk({}, "00000001000000000000000A")
    assert (nothing.continuous, nothing.first_gap, nothing.restorable_to) == (
        False, "00000001000000000000000A", None)  # fmt: skip


def test_archive_id_of_a_backup_comes_from_its_database():
    info = ('[{"name": "main", "archive": [{"id": "14-1", "database": {"id": 1}}, '
            '{"id": "15-2", "database": {"id": 2}}], "backup": [{"label": "20261126-015235F", '
            '"database": {"id": 2}}]}]')  # fmt: skip
    assert wal.archive_id_of(info, "main", "20261126-015235F") == "15-2"
    assert wal.archive_id_of(info, "main", "20261126-000000F") == ""
