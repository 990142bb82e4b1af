"""What the backup report holds (backups/report.py reads it): one ClusterReport per cluster,
one EnvironmentSummary per environment, the Report around them, how they are sorted and added
up, and the figures written for people. Pure: no query here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from backups.models import RunStatus

WINDOWS = (7, 30, 90)  # days
# A run counts in a success rate once it has an outcome: validated sound (ok, the success), or
# not usable (done: never validated, error, corrupt, failed). Pending and running runs have no
# outcome yet; deleted ones were removed by retention and their outcome is no longer known.
FINISHED = (RunStatus.OK, RunStatus.DONE, RunStatus.ERROR, RunStatus.CORRUPT, RunStatus.FAILED)
SORTS = {
    "environment": "environment, then name",
    "name": "name",
    "age": "oldest last usable backup first",
    "success": "lowest 30-day success rate first",
    "missed": "most missed schedules (30 days) first",
    "retention": "retention not met first",
    "test_restore": "oldest test restore first",
}
MET, NOT_MET, NO_RETENTION, NO_POLICY = "met", "not met", "no retention set", "no policy"


@dataclass(slots=True)
class LastBackup:
    pk: int
    backup_id: str
    mode: str
    started: datetime | None
    ended: datetime | None
    duration: timedelta | None
    total_bytes: int | None
    written_bytes: int | None

    @property
    def finished(self) -> datetime | None:
        return self.ended or self.started

    @property
    def duration_text(self) -> str:
        return human_duration(self.duration)


@dataclass(slots=True)
class LastTestRestore:
    pk: int
    ended: datetime | None
    duration: timedelta | None
    check_ok: bool | None
    backup_id: str
    target: str

    @property
    def duration_text(self) -> str:
        return human_duration(self.duration)


@dataclass(slots=True)
class Rate:
    """Backups of one window: `ok` of `finished` (see FINISHED) usable."""

    ok: int = 0
    finished: int = 0

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.ok / self.finished, 1) if self.finished else None

    @property
    def text(self) -> str:
        return "—" if self.percent is None else f"{self.percent:g} %"


@dataclass
class Retention:
    """Does each catalog of the cluster keep what its enabled policies' retention asks?
    `status` is MET, NOT_MET, NO_RETENTION or NO_POLICY; `reasons` say what is missing."""

    status: str = NO_POLICY
    reasons: list[str] = field(default_factory=list)
    fulls_kept: int | None = None  # usable full backups, in the catalog that has fewest
    fulls_wanted: int | None = None  # keep_data_generations / retention_full
    oldest_days: float | None = None  # age of the oldest usable backup (the worst catalog)
    days_wanted: int | None = None  # keep_data_days


@dataclass
class ClusterReport:
    pk: int
    name: str
    kind: str
    environment: str
    policies: int = 0  # enabled policies
    last_usable: LastBackup | None = None
    age: timedelta | None = None  # since the newest usable backup ended
    rates: dict[int, Rate] = field(default_factory=lambda: {d: Rate() for d in WINDOWS})
    missed: dict[int, int] = field(default_factory=lambda: dict.fromkeys(WINDOWS, 0))  # per window
    retention: Retention = field(default_factory=Retention)
    test_restore: LastTestRestore | None = None
    restorable_to: datetime | None = None  # from the newest archive check
    rpo: timedelta | None = None
    archive_continuous: bool | None = None  # that check: WAL unbroken since the last backup
    archive_gap: str = ""  # its first missing segment
    archive_checked: datetime | None = None

    @property
    def age_hours(self) -> float | None:
        return round(self.age.total_seconds() / 3600, 1) if self.age is not None else None

    @property
    def age_text(self) -> str:
        return human_age(self.age)

    @property
    def rpo_text(self) -> str:
        return human_age(self.rpo)

    @property
    def rate_list(self) -> list[Rate]:
        return [self.rates[d] for d in WINDOWS]

    @property
    def missed_7(self) -> int:
        return self.missed[7]

    @property
    def missed_30(self) -> int:
        return self.missed[30]

    @property
    def missed_90(self) -> int:
        return self.missed[90]

    @property
    def test_restore_age(self) -> timedelta | None:
        if self.test_restore is None or self.test_restore.ended is None:
            return None
        return self._now - self.test_restore.ended

    _now: datetime | None = None


@dataclass
class EnvironmentSummary:
    name: str
    clusters: int = 0
    with_usable: int = 0  # clusters with a usable backup
    fresh: int = 0  # ... whose newest usable backup ended within FRESH
    rates: dict[int, Rate] = field(default_factory=lambda: {d: Rate() for d in WINDOWS})
    missed: dict[int, int] = field(default_factory=lambda: dict.fromkeys(WINDOWS, 0))
    retention_met: int = 0
    retention_not_met: int = 0
    tested: int = 0  # clusters with a successful test restore within 30 days
    oldest_age: timedelta | None = None  # the worst last usable backup (None: none has one)

    @property
    def without_usable(self) -> int:
        return self.clusters - self.with_usable


FRESH = timedelta(hours=26)  # a daily backup, plus slack: "backed up in the last day"
TESTED_WITHIN = timedelta(days=30)


@dataclass
class Report:
    generated_at: datetime
    environment: str  # the filter ("" for all)
    sort: str
    environments: list[str]
    clusters: list[ClusterReport]
    summaries: list[EnvironmentSummary]  # one per environment shown, then "all" when several

    @property
    def period(self) -> str:
        """ "7 days (since …), 30 days (since …) and 90 days (since …), up to <now>"."""
        end = timezone.localtime(self.generated_at)
        since = [
            f"{d} days (since {timezone.localtime(self.generated_at - timedelta(days=d)):%Y-%m-%d})"
            for d in WINDOWS
        ]
        return f"{', '.join(since[:-1])} and {since[-1]}, up to {end:%Y-%m-%d %H:%M %Z}"


_NEVER = timedelta(days=100_000)  # sorts "no backup" after every real age


def sort_rows(rows: list[ClusterReport], sort: str) -> list[ClusterReport]:
    """Sort in Python: the rows are all in memory anyway (the summary needs them)."""
    name = lambda r: (r.name.lower(), r.pk)  # noqa: E731
    keys = {
        "environment": lambda r: (r.environment.lower(), *name(r)),
        "name": name,
        "age": lambda r: (-(r.age if r.age is not None else _NEVER).total_seconds(), *name(r)),
        "success": lambda r: (
            r.rates[30].percent if r.rates[30].percent is not None else 101.0,
            *name(r),
        ),
        "missed": lambda r: (-r.missed[30], *name(r)),
        "retention": lambda r: (
            [NOT_MET, NO_POLICY, NO_RETENTION, MET].index(r.retention.status),
            *name(r),
        ),
        "test_restore": lambda r: (
            -(r.test_restore_age if r.test_restore_age is not None else _NEVER).total_seconds(),
            *name(r),
        ),
    }
    return sorted(rows, key=keys.get(sort, keys["environment"]))


def summarise(rows: list[ClusterReport], now: datetime) -> list[EnvironmentSummary]:
    """One summary per environment (by name), then one over all of them when several."""
    by_env: dict[str, EnvironmentSummary] = {}
    total = EnvironmentSummary("all environments")
    for row in rows:
        env = by_env.setdefault(row.environment, EnvironmentSummary(row.environment))
        for s in (env, total):
            _add(s, row, now)
    summaries = [by_env[n] for n in sorted(by_env, key=str.lower)]
    return summaries + [total] if len(summaries) > 1 else summaries


def _add(s: EnvironmentSummary, row: ClusterReport, now: datetime) -> None:
    s.clusters += 1
    if row.last_usable is not None:
        s.with_usable += 1
        if row.age is not None and row.age <= FRESH:
            s.fresh += 1
    worst = row.age if row.last_usable is not None else None
    if row.last_usable is None:
        s.oldest_age = _NEVER if s.oldest_age is None else max(s.oldest_age, _NEVER)
    elif worst is not None:
        s.oldest_age = worst if s.oldest_age is None else max(s.oldest_age, worst)
    for d in WINDOWS:
        s.rates[d].ok += row.rates[d].ok
        s.rates[d].finished += row.rates[d].finished
        s.missed[d] += row.missed[d]
    if row.retention.status == MET:
        s.retention_met += 1
    elif row.retention.status == NOT_MET:
        s.retention_not_met += 1
    if row.test_restore_age is not None and row.test_restore_age <= TESTED_WITHIN:
        s.tested += 1


def human_age(age: timedelta | None) -> str:
    """3 h, 2.5 d: an age for people ("—" when there is none)."""
    if age is None:
        return "—"
    if never(age):
        return "never"
    hours = age.total_seconds() / 3600
    if hours < 1:
        return f"{max(0, round(hours * 60))} min"
    if hours < 48:
        return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"
    return f"{hours / 24:.1f} d"


def human_duration(duration: timedelta | None) -> str:
    """42 s, 12 min, 1.5 h ("—" when unknown)."""
    if duration is None:
        return "—"
    seconds = duration.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def percent(rate: Rate) -> str:
    return rate.text


def never(age: timedelta | None) -> bool:
    """True for the "no usable backup at all" sentinel of EnvironmentSummary.oldest_age."""
    return age is not None and age >= _NEVER
