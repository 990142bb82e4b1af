"""A restore plan: which backup, which WAL and which command a restore would use (no network).

`make_plan(catalog, node, target, ...)` reads only the console's records: the catalog's
*usable* runs (status `ok`: validated and sound; a `done`, `corrupt` or `error` backup is never
offered), the target node and the recovery target, and returns a `RestorePlan` with the backup
chosen (the newest usable one that ended before the target), the WAL it needs (from the
backup's first segment to the target), the engine's command and the word to type to confirm.
Bad input raises `PlanError` naming the form field at fault; nothing remote happens here.

A node of the catalog's cluster is restored **in place** (only its primary: a standby is
rebuilt from the primary, not restored), into its own data directory and port; any other
registered host (a bare host, for a test or a clone) gets the data directory and port given.
"""

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from backups.drivers import pg_rman, pgbackrest
from backups.drivers.base import Command, DriverInputError
from backups.models import BackupCatalog, BackupRun, Engine, RecoveryTargetKind, RunStatus
from clusters.models import Cluster, Node

TARGET_ACTIONS = ("promote", "pause", "shutdown")
# The data directory also reaches pg_ctl's -o (a string its shell reads): plain characters only.
_SAFE_PATH_RE = re.compile(r"/[A-Za-z0-9_./-]*")
_ADDRESS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]*")
_TIME_RE = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d{1,6})?"
    r" ?(?P<zone>Z|UTC|[+-]\d{2}(?::?\d{2})?)?"
)
WAL_SEGMENT_BYTES = 16 * 1024 * 1024  # PostgreSQL's default wal_segment_size


class PlanError(ValueError):
    """The restore cannot be planned; `field` names the wizard's field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RecoveryTarget:
    """Where recovery stops and what the server does there. `moment` is a time target as an
    aware UTC datetime; `value` is what the engines get (a time always as UTC with `+00`)."""

    kind: str = RecoveryTargetKind.LATEST
    value: str = ""
    inclusive: bool | None = None
    action: str = "promote"
    moment: datetime | None = None

    def describe(self) -> str:
        if self.kind == RecoveryTargetKind.LATEST:
            return "the latest point (the end of the archived WAL)"
        edge = {None: "", True: " (inclusive)", False: " (exclusive)"}[self.inclusive]
        label = {"time": "time", "xid": "transaction id", "timeline": "end of timeline"}
        return f"{label[self.kind]} {self.value}{edge}, then {self.action}"


def parse_time(value: str) -> datetime:
    """A recovery time as an aware datetime: `YYYY-MM-DD HH:MM:SS[.ffffff][ zone]`; without a
    zone it is UTC (the wizard says so). Raises PlanError on `target_value`."""
    text = (value or "").strip()
    try:
        pg_rman.check_target_time(text, "target_value")
    except DriverInputError as exc:
        raise PlanError("target_value", exc.message) from None
    m = _TIME_RE.fullmatch(text)
    if m is None:
        raise PlanError("target_value", f"not a time: {value!r}.")
    moment = datetime.fromisoformat(f"{m['date']}T{m['time']}{m['frac'] or ''}")
    zone = m["zone"] or "+00"
    if zone in ("Z", "UTC"):
        zone = "+00"
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    if offset > timedelta(hours=15):
        raise PlanError("target_value", f"not a UTC offset: {zone!r}.")
    return (moment - sign * offset).replace(tzinfo=UTC)


def parse_target(
    kind: str, value: str = "", *, inclusive: bool | None = None, action: str = "promote"
) -> RecoveryTarget:
    """Check a recovery target as the wizard's step 3 gives it; PlanError names the field."""
    value = (value or "").strip()
    if kind not in RecoveryTargetKind.values:
        raise PlanError("target_kind", f"one of {', '.join(RecoveryTargetKind.values)}.")
    if action not in TARGET_ACTIONS:
        raise PlanError("target_action", f"one of {', '.join(TARGET_ACTIONS)}.")
    if kind == RecoveryTargetKind.LATEST:
        if value:
            raise PlanError("target_value", "the latest point takes no value; leave it empty.")
        return RecoveryTarget(kind, "", None, "promote")
    if not value:
        raise PlanError("target_value", f"give {RecoveryTargetKind(kind).label}.")
    if kind == RecoveryTargetKind.TIME:
        moment = parse_time(value)
        text = moment.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".") + "+00"
        return RecoveryTarget(kind, text, inclusive, action, moment)
    try:
        number = pg_rman.check_positive_int(
            "target_value", value, maximum=2**32 - 1 if kind == "timeline" else 2**64 - 1
        )
    except DriverInputError as exc:
        raise PlanError(
            "target_value", f"{RecoveryTargetKind(kind).label}: {exc.message}"
        ) from None
    if kind == RecoveryTargetKind.TIMELINE:
        if inclusive is not None:
            raise PlanError("target_inclusive", "only a time or an xid target can be inclusive.")
        return RecoveryTarget(kind, str(number), None, "promote")
    return RecoveryTarget(kind, str(number), inclusive, action)


def usable_backups(catalog: BackupCatalog):
    """The backups a restore may start from: validated and sound (`ok`), newest end first.
    A pg_rman archive backup holds only WAL: never a base (its WAL is still replayed)."""
    runs = BackupRun.objects.filter(catalog=catalog, status=RunStatus.OK).exclude(mode="archive")
    return runs.order_by("-ended", "-started", "-id")


def choose_backup(catalog: BackupCatalog, target: RecoveryTarget) -> BackupRun:
    """The newest usable backup that ended before the target. PlanError when there is none."""
    runs = usable_backups(catalog)
    unusable = BackupRun.objects.filter(catalog=catalog).exclude(status=RunStatus.OK).count()
    never = (
        f" ({unusable} other backups are not usable: unvalidated, corrupt or failed)"
        if (unusable)
        else ""
    )
    if not runs.exists():
        raise PlanError("catalog", f"{catalog} has no usable (validated and sound) backup{never}.")
    if target.kind == RecoveryTargetKind.TIME:
        if target.moment > timezone.now() + timedelta(minutes=1):
            raise PlanError(
                "target_value",
                f"{target.value} is in the future: recovery would "
                f"stop at the end of the archived WAL and fail.",
            )
        chosen = runs.filter(ended__lte=target.moment).first()
        if chosen is None:
            oldest = runs.last()
            raise PlanError(
                "target_value",
                f"no usable backup ended before {target.value}: the "
                f"oldest usable one ({oldest.backup_id}) ended at "
                f"{oldest.ended:%Y-%m-%d %H:%M:%S} UTC{never}.",
            )
        return chosen
    if target.kind == RecoveryTargetKind.XID:
        known = runs.filter(recovery_xid__isnull=False)
        if known.exists():  # pg_rman records each backup's xid; pgBackRest does not
            chosen = known.filter(recovery_xid__lt=int(target.value)).first()
            if chosen is None:
                raise PlanError(
                    "target_value",
                    f"no usable backup ended before transaction {target.value}{never}.",
                )
            return chosen
    if target.kind == RecoveryTargetKind.TIMELINE:
        chosen = runs.filter(timeline__lte=int(target.value)).first()
        if chosen is None:
            raise PlanError(
                "target_value", f"no usable backup on timeline {target.value} or before it{never}."
            )
        return chosen
    return runs.first()


def wal_segment(lsn: str, timeline: int | None) -> str:
    """The WAL file holding `lsn` (`0/5000028`) on `timeline`, as PostgreSQL names it."""
    if not lsn or not timeline:
        return ""
    high, low = (int(part, 16) for part in lsn.split("/"))
    position = (high << 32) | low
    segments_per_id = 0x100000000 // WAL_SEGMENT_BYTES
    number = position // WAL_SEGMENT_BYTES
    return f"{timeline:08X}{number // segments_per_id:08X}{number % segments_per_id:08X}"


@dataclass(frozen=True)
class RestorePlan:
    """Everything a restore will do, shown before it is confirmed."""

    cluster: Cluster
    catalog: BackupCatalog
    node: Node
    data_directory: str
    port: int
    in_place: bool
    target: RecoveryTarget
    backup: BackupRun
    wal_first: str  # the backup's first WAL segment ('' when the record has no LSN)
    wal_until: str  # in words: up to where WAL is replayed
    command: Command
    check_query: str = ""

    @property
    def confirm_word(self) -> str:
        """Typed to confirm: the node's name in place (it overwrites that server), the
        cluster's name for a test or a clone on another host."""
        return self.node.name if self.in_place else self.cluster.name

    @property
    def engine(self) -> str:
        return self.catalog.engine


def _place(cluster: Cluster, node: Node, data_directory: str, port) -> tuple[str, int, bool]:
    if node.cluster_id == cluster.pk:
        if node.service != Node.Service.POSTGRESQL or node.role != Node.Role.PRIMARY:
            raise PlanError(
                "target_node",
                f"{node.name} is a {node.role} of {cluster.name}: "
                f"restore its primary in place and rebuild standbys from it, or "
                f"restore onto another host.",
            )
        if not node.data_directory:
            raise PlanError(
                "target_node",
                f"{node.name}'s data directory is not known yet: rediscover {cluster.name} first.",
            )
        given = (data_directory or "").rstrip("/")
        if given and given != node.data_directory.rstrip("/"):
            raise PlanError(
                "data_directory",
                f"in place, {node.name} is restored into its own "
                f"data directory {node.data_directory}; leave it empty.",
            )
        return node.data_directory, node.db_port or 5432, True
    if not _ADDRESS_RE.fullmatch(node.address):
        # The address reaches pg_ctl's -o (listen_addresses) on the other host.
        raise PlanError(
            "target_node",
            f"{node.name}'s address {node.address!r} is not a plain host name or IP address.",
        )
    if node.service not in (Node.Service.NONE, Node.Service.POSTGRESQL):
        raise PlanError(
            "target_node",
            f"{node.name} is a {node.get_service_display()} node: "
            f"choose a bare host or a PostgreSQL server.",
        )
    path = (data_directory or "").strip()
    if not path:
        raise PlanError(
            "data_directory", f"give the data directory to restore into on {node.name}."
        )
    if not _SAFE_PATH_RE.fullmatch(path) or "/../" in f"{path}/" or path.rstrip("/") in ("", "/"):
        raise PlanError(
            "data_directory",
            f"an absolute path of letters, digits, '_', '.', '-' and '/' (no '..'): {path!r}.",
        )
    if node.data_directory and path.rstrip("/") == node.data_directory.rstrip("/"):
        raise PlanError(
            "data_directory",
            f"that is {node.name}'s own server's data directory; choose a new directory.",
        )
    try:
        port = pg_rman.check_positive_int(
            "port", port if port not in (None, "") else "", maximum=65535
        )
    except DriverInputError as exc:
        raise PlanError("port", exc.message) from None
    if port < 1024:
        raise PlanError("port", f"use a port above 1023 (the server runs as postgres): {port}.")
    return path.rstrip("/"), port, False


def make_plan(
    catalog: BackupCatalog,
    node: Node,
    target: RecoveryTarget,
    *,
    data_directory: str = "",
    port=None,
    check_query: str = "",
    delta: bool | None = None,
    backup: BackupRun | None = None,
) -> RestorePlan:
    """The plan of a restore of `catalog`'s cluster onto `node` (see the module's docstring).
    `delta` (pgBackRest `--delta`: only files that differ are replaced) defaults to in place;
    the job sets it when the pre-checks found a data directory to restore over. `backup`
    keeps the backup a confirmed plan chose (refused if it is no longer usable)."""
    cluster = catalog.cluster
    path, port, in_place = _place(cluster, node, data_directory, port)
    if backup is None:
        backup = choose_backup(catalog, target)
    elif backup.catalog_id != catalog.pk or not backup.usable:
        raise PlanError(
            "backup",
            f"backup {backup.backup_id} is no longer usable "
            f"({backup.get_status_display()}): plan the restore again.",
        )
    if target.kind == RecoveryTargetKind.LATEST:
        until = "the end of the archived WAL"
    elif target.kind == RecoveryTargetKind.TIME:
        until = f"the first commit after {target.value}"
    elif target.kind == RecoveryTargetKind.XID:
        until = f"the commit of transaction {target.value}"
    else:
        until = f"the end of timeline {target.value}"
    plan = RestorePlan(
        cluster=cluster,
        catalog=catalog,
        node=node,
        data_directory=path,
        port=port,
        in_place=in_place,
        target=target,
        backup=backup,
        wal_first=wal_segment(backup.start_lsn, backup.timeline),
        wal_until=until,
        command=Command(["true"]),
        check_query=check_query,
    )
    return replace(plan, command=restore_command(plan, delta=in_place if delta is None else delta))


def restore_command(plan: RestorePlan, *, delta: bool = False) -> Command:
    """The engine's restore command for the plan. pgBackRest is told the planned backup
    (`--set`): left to itself it would pick the newest backup before the target, even one the
    console found corrupt. pg_rman chooses its base itself among validated backups (it skips
    CORRUPT ones) and takes no set."""
    target = plan.target
    if plan.catalog.engine == Engine.PG_RMAN:
        inclusive = target.inclusive if target.kind in ("time", "xid") else None
        rman_target = pg_rman.RecoveryTarget(target.kind, target.value, inclusive)
        action = target.action if target.kind in ("time", "xid") else None
        return pg_rman.restore(
            plan.catalog.path,
            plan.data_directory,
            rman_target,
            arclog_path=plan.catalog.arclog_path or None,
            srvlog_path=plan.catalog.srvlog_path or None,
            target_action=action,
        )
    repo = pgbackrest.Repository(path=plan.catalog.path, stanza=plan.catalog.stanza)
    base = pgbackrest.restore(repo, plan.data_directory, label=plan.backup.backup_id, delta=delta)
    argv = list(base.argv)
    at = argv.index("restore") + 1
    argv[at:at] = pgbackrest_target(target)
    return Command(argv, base.os_user)


def pgbackrest_target(target: RecoveryTarget) -> list[str]:
    """pgBackRest's options for a recovery target: `--type=time|xid --target=...`,
    `--target-exclusive`, `--target-timeline`, `--target-action`."""
    if target.kind == RecoveryTargetKind.LATEST:
        return []
    if target.kind == RecoveryTargetKind.TIMELINE:
        # Recovery runs to the timeline's end, then promotes: pgBackRest takes --target-action
        # only with a --type that stops early.
        return [f"--target-timeline={target.value}"]
    argv = [f"--type={target.kind}", f"--target={target.value}"]
    if target.inclusive is False:
        argv.append("--target-exclusive")
    return argv + [f"--target-action={target.action}"]
