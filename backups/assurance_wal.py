"""WAL archive continuity, pure (no network, no database): segment names and arithmetic, the
listings of an archive (pgBackRest `repo-ls --output=json`, a pg_rman arclog directory read
with `find -printf`), and the walk from a backup's first segment to the newest archived one.

A segment name is 24 hex digits: timeline, then the segment number split in two (the "log"
and the segment within it; 2^32 / segment size segments per log: 256 for 16 MiB). A timeline
switch copies the segment holding the switch point under the new timeline's name, so the walk
follows a segment number on its own timeline, or on a higher one when only that one has it.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from backups.drivers.base import Command, DriverInputError
from backups.drivers.pg_rman import check_path
from backups.drivers.pgbackrest import Repository, check_stanza

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
_SEGMENT_RE = re.compile(r"[0-9A-F]{24}")
# pgBackRest stores a segment as <name>-<sha1>[.gz|.lz4|.zst|.bz2|.xz]
_REPO_FILE_RE = re.compile(r"(?:.*/)?([0-9A-F]{24})-[0-9a-f]{40}(?:\.(?:gz|lz4|zst|bz2|xz))?")
# pg_rman's arclog directory holds what archive_command copied: <name>[.gz]
_ARCLOG_FILE_RE = re.compile(r"([0-9A-F]{24})(?:\.gz)?")
_ARCHIVE_ID_RE = re.compile(r"\d+(?:\.\d+)?-\d+")


def segments_per_log(segment_size: int) -> int:
    if segment_size <= 0 or (1 << 32) % segment_size:
        raise DriverInputError("segment_size", f"not a WAL segment size: {segment_size}.")
    return (1 << 32) // segment_size


def segment_name(timeline: int, number: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    per_log = segments_per_log(segment_size)
    return f"{timeline:08X}{number // per_log:08X}{number % per_log:08X}"


def parse_segment(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> tuple[int, int]:
    """(timeline, segment number) of a segment name."""
    if not _SEGMENT_RE.fullmatch(name or ""):
        raise DriverInputError("segment", f"not a WAL segment name: {name!r}.")
    return int(name[:8], 16), int(name[8:16], 16) * segments_per_log(segment_size) + int(
        name[16:], 16
    )


def lsn_segment(
    timeline: int, lsn: str, segment_size: int = DEFAULT_SEGMENT_SIZE, *, end: bool = False
) -> str:
    """The segment holding the record at `lsn` ("0/A000028") on `timeline`; with `end`, the
    segment holding the last byte before it (WAL needed up to `lsn`: on a segment boundary,
    the previous segment, as pg_walfile_name names it)."""
    match = re.fullmatch(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})", lsn or "")
    if not match or not timeline:
        raise DriverInputError("start_lsn", f"not an LSN on a timeline: {timeline}/{lsn!r}.")
    position = (int(match[1], 16) << 32) | int(match[2], 16)
    if end and position:
        position -= 1
    return segment_name(timeline, position // segment_size, segment_size)


# --- listings --------------------------------------------------------------------------------


def repo_ls(repo: Repository, archive_id: str) -> Command:
    """List one archive of the stanza (`archive/<stanza>/<archive id>`), recursively, as JSON:
    every segment file with its size and time (when it was pushed)."""
    if not _ARCHIVE_ID_RE.fullmatch(archive_id or ""):
        raise DriverInputError("archive_id", f"not a pgBackRest archive id: {archive_id!r}.")
    path = f"archive/{check_stanza(repo.stanza)}/{archive_id}"
    return Command(repo.options() + ["repo-ls", path, "--recurse", "--output=json"])


def arclog_ls(arclog_path: str) -> Command:
    """List a pg_rman arclog directory: one `<name>\\t<mtime epoch>` line per file. find runs
    from inside the directory: started from a working directory the OS user may not enter
    (sudo from root's /root), find lists everything but exits 1 ("Failed to restore initial
    working directory", seen in the lab)."""
    path = check_path("arclog_path", arclog_path)
    return Command(["env", f"--chdir={path}", "find", ".", "-maxdepth", "1", "-type", "f",
                    "-printf", "%f\\t%T@\\n"])  # fmt: skip


def archive_id_of(info_stdout: str, stanza: str, label: str) -> str:
    """The archive id ("15-1") holding the WAL of backup `label`: the archive of the same
    database id in `info --output=json`; "" when the backup or its archive is not listed."""
    for st in json.loads(info_stdout):
        if st.get("name") != stanza:
            continue
        db_id = next(
            (b["database"]["id"] for b in st.get("backup", []) if b.get("label") == label), None
        )
        for archive in st.get("archive") or []:
            if db_id is not None and archive.get("database", {}).get("id") == db_id:
                return archive.get("id", "")
    return ""


def _epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def parse_repo_ls(stdout: str) -> dict[str, datetime]:
    """`repo-ls --output=json` of an archive: {segment name: time it was pushed}. Partial
    segments, backup labels (`.backup`) and timeline histories are not segments."""
    found: dict[str, datetime] = {}
    for path, entry in json.loads(stdout or "{}").items():
        match = _REPO_FILE_RE.fullmatch(path)
        if match and entry.get("type") == "file":
            found[match[1]] = _epoch(entry.get("time", 0))
    return found


def parse_arclog_ls(stdout: str) -> dict[str, datetime]:
    """`find -printf '%f\\t%T@\\n'` of a pg_rman arclog directory: {segment name: mtime}."""
    found: dict[str, datetime] = {}
    for line in stdout.splitlines():
        name, _, stamp = line.partition("\t")
        match = _ARCLOG_FILE_RE.fullmatch(name)
        if match and stamp:
            found[match[1]] = _epoch(float(stamp))
    return found


# --- the walk --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Continuity:
    """The walk from `first` (the backup's start segment) to `last` (the newest archived
    segment from the backup's timeline on). `first_gap` is the first missing segment ("" when
    none), `last_restorable` the last segment of the unbroken chain and `restorable_to` its
    time; `missing` counts every missing segment up to `last`, `present` those found."""

    first: str
    last: str
    first_gap: str = ""
    last_restorable: str = ""
    restorable_to: datetime | None = None
    present: int = 0
    missing: int = 0
    gaps: list[str] = field(default_factory=list)  # the first few missing segments

    @property
    def continuous(self) -> bool:
        return not self.first_gap


def walk(
    segments: dict[str, datetime], first: str, segment_size: int = DEFAULT_SEGMENT_SIZE
) -> Continuity:
    """Follow segment numbers from `first` to the newest segment archived on its timeline or a
    later one. At each number the segment of the current timeline is taken, else that of the
    lowest higher timeline (a switch); none: a gap. The chain restorable from the backup ends
    before the first gap."""
    start_tli, start_no = parse_segment(first, segment_size)
    by_number: dict[int, dict[int, str]] = {}
    for name in segments:
        tli, number = parse_segment(name, segment_size)
        if tli >= start_tli and number >= start_no:
            by_number.setdefault(number, {})[tli] = name
    if not by_number:
        return Continuity(first=first, last="", first_gap=first, missing=1, gaps=[first])
    newest = max(by_number)
    last = by_number[newest][max(by_number[newest])]
    tli, first_gap, last_ok, present, missing, gaps = start_tli, "", "", 0, 0, []
    for number in range(start_no, newest + 1):
        there = by_number.get(number, {})
        if tli in there:
            name = there[tli]
        elif any(t > tli for t in there):
            tli = min(t for t in there if t > tli)
            name = there[tli]
        else:
            missing += 1
            expected = segment_name(tli, number, segment_size)
            first_gap = first_gap or expected
            if len(gaps) < 10:
                gaps.append(expected)
            continue
        present += 1
        if not first_gap:
            last_ok = name
    return Continuity(
        first=first,
        last=last,
        first_gap=first_gap,
        last_restorable=last_ok,
        restorable_to=segments[last_ok] if last_ok else None,
        present=present,
        missing=missing,
        gaps=gaps,
    )
