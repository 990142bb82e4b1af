"""Backup catalogs made and changed by DBAs: `create_catalog`, `update_catalog`,
`delete_catalog`, `check_catalog` (the "Check" button) and `read_catalog_now` ("Read now").

Before a catalog is saved (or its path, nodes, stanza or WAL directories change), the console
proves on the hosts, over SSH through console.executor and as the postgres OS user, that it can
be used: the path exists or can be created and is writable on the first node (the primary
first), every node of the catalog sees the same directory (the marker-file check of
backups.actions.runs, `check_shared_catalog`), then the engine initialises it: pg_rman `init`
(a directory that already holds a catalog is adopted), or pgBackRest `stanza-create` then
`check` (WAL archiving into the repository works). Each failure raises ValidationError naming
the field (path, nodes, stanza, arclog_path, engine) and nothing is saved; a directory the check
created is removed again. Once saved, the catalog is read (`read_catalog`/`read_repository`), so
backups made outside the console appear as runs.

Remote calls are audited by the executor (audit.BACKUP_COMMAND, started then outcome); the
console change is audited (backup.catalog_created/_changed/_deleted) in the same transaction as
the row, and a check as backup.catalog_checked (succeeded or failed).
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from backups.actions.catalogs import (
    CatalogRead,
    PgBackRestFailed,
    PgRmanFailed,
    pg_instance,
    read_catalog,
    read_repository,
    run_pg_rman,
    run_pgbackrest,
)
from backups.actions.runs import check_shared_catalog
from backups.drivers import pg_rman, pgbackrest
from backups.models import BackupCatalog, Engine
from clusters.models import Node
from console import audit
from console.errors import ExpectedFailure
from console.executor import ExecutorError, run_command
from console.models import AuditEntry

# What a DBA may change on an existing catalog; cluster and engine stay (make another catalog).
CATALOG_FIELDS = ("name", "path", "nodes", "arclog_path", "srvlog_path", "stanza", "time_zone")
# A change to one of these is checked on the hosts again before it is saved.
CHECKED_FIELDS = ("path", "nodes", "arclog_path", "srvlog_path", "stanza")


class CatalogRefused(ExpectedFailure):
    """A catalog change was refused (it is in use): nothing changed."""


@dataclass(frozen=True)
class CheckResult:
    node: str  # where the engine ran
    shared_by: list[str]  # the nodes that saw the marker (the first node included)
    created_path: bool  # the check created the catalog directory
    steps: list[str]  # what was proved, for the message and the audit entry


class _Planned:
    """A catalog as check_shared_catalog reads one (its path and nodes), before it is saved:
    the marker check runs before anything is written in the console's database."""

    class _Nodes:
        def __init__(self, nodes):
            self._nodes = list(nodes)

        def all(self):
            return self._nodes

    def __init__(self, path: str, nodes):
        self.path = path
        self.nodes = self._Nodes(nodes)


def catalog_nodes(cluster, nodes) -> list[Node]:
    """The nodes the engine runs on, the primary first; none chosen: the cluster's primary."""
    nodes = list(nodes) or list(
        Node.objects.filter(
            cluster=cluster, service=Node.Service.POSTGRESQL, role=Node.Role.PRIMARY
        )  # fmt: skip
    )
    if not nodes:
        raise ValidationError({"nodes": f"{cluster.name} has no primary PostgreSQL node; "
                                        "choose the nodes that see the catalog."})  # fmt: skip
    strangers = [n.name for n in nodes if n.cluster_id != cluster.pk]
    if strangers:
        raise ValidationError({"nodes": f"Not nodes of {cluster.name}: {', '.join(strangers)}."})
    return sorted(nodes, key=lambda n: (n.role != Node.Role.PRIMARY, n.name))


def _as_postgres(node: Node, argv: list[str], *, actor, **options):
    return run_command(node, argv, actor=actor, action=audit.BACKUP_COMMAND,
                       sudo_user="postgres", check=False, **options)  # fmt: skip


def _remote(field: str, node: Node, exc: ExecutorError) -> ValidationError:
    return ValidationError({field: f"The console could not run the check on {node.name}: {exc}"})


def check_shared_path(path: str, nodes: list[Node], *, actor) -> tuple[bool, list[str]]:
    """As postgres: `path` exists or can be created, and is a writable directory, on the first
    node; then (several nodes) every other node sees a file written there (check_shared_catalog,
    the same check every backup makes). Returns whether the directory was created here and the
    nodes that share it. ValidationError on `path` or `nodes`; a directory created here is
    removed again when the check fails."""
    first = nodes[0]
    try:
        existed = (
            _as_postgres(first, ["test", "-e", path], actor=actor, ok_exits=(0, 1)).exit_code == 0
        )
        made = _as_postgres(first, ["mkdir", "-p", "--", path], actor=actor)
        if made.exit_code != 0:
            raise ValidationError({"path": f"postgres cannot create {path} on {first.name}: "
                                           f"{made.stderr.strip()}"})  # fmt: skip
        try:
            usable = _as_postgres(first, ["test", "-d", path, "-a", "-w", path, "-a", "-x", path],
                                  actor=actor)  # fmt: skip
            if usable.exit_code != 0:
                raise ValidationError({"path": f"{path} on {first.name} is not a directory "
                                               "postgres may write into."})  # fmt: skip
            try:
                check_shared_catalog(_Planned(path, nodes), first, actor=actor)
            except ExpectedFailure as exc:
                field = "path" if "not writable" in str(exc) else "nodes"
                message = str(exc).replace("nothing was backed up", "nothing was saved")
                raise ValidationError({field: message}) from None
        except (ValidationError, ExecutorError):
            if not existed:  # only an empty directory, the one made here
                _as_postgres(first, ["rmdir", "--", path], actor=actor)
            raise
    except ExecutorError as exc:
        raise _remote("nodes", first, exc) from None
    return not existed, [n.name for n in nodes]


def _engine_field(error_text: str, default: str) -> str:
    return "path" if "Permission denied" in error_text or "may not read or write" in error_text \
        else default  # fmt: skip


def initialise(catalog: BackupCatalog, node: Node, *, actor) -> list[str]:
    """The engine's own set-up of the catalog on `node`: pgBackRest `stanza-create` (nothing
    when the stanza exists) and `check`; pg_rman `init` (a directory that holds a catalog
    already is adopted as it is), after checking its WAL directory. ValidationError naming
    the field; pg_rman missing on the host is said on `engine`."""
    try:
        instance, _settings = pg_instance(node, actor=actor)
    except ExecutorError as exc:
        raise _remote("nodes", node, exc) from None
    if catalog.engine == Engine.PGBACKREST:
        repo = pgbackrest.Repository(path=catalog.path, stanza=catalog.stanza)
        try:
            run_pgbackrest(node, pgbackrest.stanza_create(repo, instance), actor=actor)
        except PgBackRestFailed as exc:
            field = _engine_field(str(exc), "stanza")
            raise ValidationError({field: f"pgBackRest stanza-create on {node.name}: {exc}"}) \
                from None  # fmt: skip
        timeout = settings.BACKUPS_CHECK_ARCHIVE_TIMEOUT
        try:
            run_pgbackrest(node, pgbackrest.check(repo, instance, archive_timeout=timeout),
                           actor=actor, timeout=timeout + 90)  # fmt: skip
        except PgBackRestFailed as exc:
            raise ValidationError({"stanza": (
                f"pgBackRest check on {node.name}: {str(exc).rstrip('.')}. The server must "
                f"archive its WAL into this repository (archive_command: pgbackrest "
                f"--stanza={catalog.stanza} --repo1-path={catalog.path} archive-push %p)."
            )}) from None  # fmt: skip
        return [f"stanza {catalog.stanza} created on {node.name}", "pgBackRest check passed"]
    for field in ("arclog_path", "srvlog_path"):
        value = getattr(catalog, field)
        if value and _as_postgres(node, ["test", "-d", value, "-a", "-r", value],
                                  actor=actor).exit_code != 0:  # fmt: skip
            raise ValidationError({field: f"{value} is not a directory postgres can read on "
                                          f"{node.name}."})  # fmt: skip
    command = pg_rman.init(catalog.path, instance.path, arclog_path=catalog.arclog_path,
                           srvlog_path=catalog.srvlog_path or None)  # fmt: skip
    try:
        run_pg_rman(node, command, actor=actor)
    except PgRmanFailed as exc:
        if exc.error.code == "NOT_INSTALLED":
            raise ValidationError({"engine": f"{exc} ({node.name}): install pg_rman there, or "
                                             "choose pgBackRest."}) from None  # fmt: skip
        if "already exist" not in exc.error.error:
            raise ValidationError({_engine_field(str(exc), "path"):
                                   f"pg_rman init on {node.name}: {exc}"}) from None  # fmt: skip
        return [f"the pg_rman catalog in {catalog.path} already existed: adopted"]
    return [f"pg_rman catalog initialised on {node.name}"]


def prove(catalog: BackupCatalog, nodes, *, actor) -> CheckResult:
    """Every check and the engine's initialisation, for `catalog` (saved or not) on `nodes`."""
    nodes = catalog_nodes(catalog.cluster, nodes)
    created, shared = check_shared_path(catalog.path, nodes, actor=actor)
    steps = [f"{catalog.path} writable by postgres on {nodes[0].name}"
             + (" (created)" if created else "")]  # fmt: skip
    if len(shared) > 1:
        steps.append(f"shared by {', '.join(shared)}")
    try:
        try:
            steps += initialise(catalog, nodes[0], actor=actor)
        except ExecutorError as exc:  # the host went away between the checks and the engine
            raise _remote("nodes", nodes[0], exc) from None
    except ValidationError:
        if created:  # leave no half-made catalog directory behind
            _as_postgres(nodes[0], ["rm", "-rf", "--", catalog.path], actor=actor)
        raise
    return CheckResult(nodes[0].name, shared, created, steps)


def describe(catalog: BackupCatalog, nodes) -> str:
    names = ", ".join(n.name for n in nodes) or "the primary"
    extra = f", stanza {catalog.stanza}" if catalog.stanza else ""
    extra += f", arclog {catalog.arclog_path}" if catalog.arclog_path else ""
    extra += f", srvlog {catalog.srvlog_path}" if catalog.srvlog_path else ""
    return f"catalog {catalog} ({catalog.engine}) at {catalog.path}{extra}; nodes: {names}"


def read_catalog_now(catalog: BackupCatalog, *, actor) -> CatalogRead:
    """Read the catalog (pg_rman) or the repository (pgBackRest, with verify) into runs."""
    if catalog.engine == Engine.PG_RMAN:
        return read_catalog(catalog, actor=actor)
    return read_repository(catalog, actor=actor, verify=True)


@dataclass(frozen=True)
class Saved:
    catalog: BackupCatalog
    check: CheckResult | None
    read: CatalogRead | None
    read_error: str  # the first read failed (the catalog is saved and initialised regardless)


def _read_after(catalog: BackupCatalog, *, actor) -> tuple[CatalogRead | None, str]:
    try:
        return read_catalog_now(catalog, actor=actor), ""
    except (ExpectedFailure, ExecutorError) as exc:
        return None, str(exc)


def create_catalog(
    catalog: BackupCatalog, nodes, *, actor, source: str = AuditEntry.Source.UI
) -> Saved:
    """Validate, prove on the hosts (see the module), then save the catalog and its nodes with
    its audit entry (backup.catalog_created) in one transaction, then read it. ValidationError
    naming the field, and nothing saved, when any step fails."""
    catalog.full_clean(validate_unique=True)
    nodes = list(nodes)
    result = prove(catalog, nodes, actor=actor)
    try:
        with transaction.atomic():
            catalog.initialized = timezone.now()
            catalog.save()
            catalog.nodes.set(nodes)
            output = f"{describe(catalog, nodes)}; {'; '.join(result.steps)}"
            audit.append(audit.BACKUP_CATALOG_CREATED, actor=actor, source=source,
                         target=f"backup_catalog:{catalog.pk}", node=result.node,
                         output=output)  # fmt: skip
    except IntegrityError:  # another DBA saved the same name while the checks ran
        catalog.pk = None
        raise ValidationError({"name": f"{catalog.cluster.name} has a catalog named "
                                       f"{catalog.name} already."}) from None  # fmt: skip
    read, error = _read_after(catalog, actor=actor)
    return Saved(catalog, result, read, error)


def update_catalog(
    catalog: BackupCatalog, values: dict, *, actor, source: str = AuditEntry.Source.UI
) -> list[str]:
    """Change a catalog's fields (CATALOG_FIELDS; `nodes` a list of Node). A change of path,
    nodes, stanza or WAL directory is proved on the hosts first (as on create); path and stanza
    stay while the catalog has runs (their backups are where it says). Audited
    (backup.catalog_changed, old and new values) in the transaction of the change. Returns the
    fields changed; none: no write, no entry. ValidationError naming the field, nothing saved."""
    unknown = set(values) - set(CATALOG_FIELDS)
    if unknown:
        raise ValueError(f"not catalog fields: {sorted(unknown)}")
    before = {name: getattr(catalog, name) for name in values if name != "nodes"}
    old_nodes = sorted(catalog.nodes.all(), key=lambda n: n.pk)
    before["nodes"] = old_nodes
    new_nodes = sorted(values.get("nodes", old_nodes), key=lambda n: n.pk)
    changed = [n for n, v in values.items() if n != "nodes" and before[n] != v]
    if [n.pk for n in new_nodes] != [n.pk for n in old_nodes]:
        changed.append("nodes")
    if not changed:
        return []
    runs = catalog.runs.count()
    for name in ("path", "stanza"):
        if name in changed and runs:
            raise ValidationError({name: f"{catalog} has {runs} run{'s' if runs != 1 else ''} "
                                         f"whose backups are in {catalog.path}; make a new "
                                         "catalog instead."})  # fmt: skip
    for name in changed:
        if name != "nodes":
            setattr(catalog, name, values[name])
    try:
        catalog.full_clean()
        result = (prove(catalog, new_nodes, actor=actor)
                  if set(changed) & set(CHECKED_FIELDS) else None)  # fmt: skip
    except Exception:
        for name in changed:
            if name != "nodes":
                setattr(catalog, name, before[name])
        raise
    with transaction.atomic():
        fields = [n for n in changed if n != "nodes"]
        if result is not None:
            catalog.initialized = timezone.now()
            fields.append("initialized")
        if fields:
            catalog.save(update_fields=fields)
        if "nodes" in changed:
            catalog.nodes.set(new_nodes)

        def shown(name, value):
            return ", ".join(n.name for n in value) or "-" if name == "nodes" else value

        diff = "; ".join(f"{n}: {shown(n, before[n])} -> {shown(n, values[n])}" for n in changed)
        audit.append(audit.BACKUP_CATALOG_CHANGED, actor=actor, source=source,
                     target=f"backup_catalog:{catalog.pk}",
                     output=f"catalog {catalog}: {diff}"
                     + (f"; {'; '.join(result.steps)}" if result else ""))  # fmt: skip
    return changed


def check_catalog(catalog: BackupCatalog, *, actor, source: str = AuditEntry.Source.UI):
    """The "Check" button: the create checks again on the saved catalog (its path writable and
    shared, stanza-create and check / pg_rman init, both doing nothing on a catalog that is set
    up). Audited as backup.catalog_checked, succeeded or failed with the message. Returns the
    CheckResult; raises ValidationError (its field and message) when a check fails."""
    target = f"backup_catalog:{catalog.pk}"
    try:
        result = prove(catalog, catalog.nodes.all(), actor=actor)
    except ValidationError as exc:
        message = "; ".join(f"{f}: {' '.join(m)}" for f, m in exc.message_dict.items())
        audit.append(audit.BACKUP_CATALOG_CHECKED, actor=actor, source=source, target=target,
                     status=AuditEntry.Status.FAILED, error=message,
                     output=describe(catalog, catalog.nodes.all()))  # fmt: skip
        raise
    with transaction.atomic():
        if catalog.initialized is None:
            catalog.initialized = timezone.now()
            catalog.save(update_fields=["initialized"])
        audit.append(audit.BACKUP_CATALOG_CHECKED, actor=actor, source=source, target=target,
                     node=result.node, output="; ".join(result.steps))  # fmt: skip
    return result


def catalog_users(catalog: BackupCatalog) -> dict[str, int]:
    """What still refers to the catalog, by kind (only kinds with at least one)."""
    counts = {
        "run": catalog.runs.count(),
        "policy": catalog.policies.count(),
        "restore": catalog.restores.count(),
        "test-restore policy": catalog.test_restore_policies.count(),
    }
    return {kind: n for kind, n in counts.items() if n}


def delete_catalog(catalog: BackupCatalog, *, actor, source: str = AuditEntry.Source.UI) -> None:
    """Delete the catalog's record (the files on the hosts stay), audited
    (backup.catalog_deleted) in the same transaction. Refused with CatalogRefused, nothing
    changed, while runs, policies, restores or test-restore policies refer to it. The view asks
    for the catalog's name typed first."""
    with transaction.atomic():
        locked = BackupCatalog.objects.select_for_update().filter(pk=catalog.pk).first()
        if locked is None:  # deleted already: a retry does nothing
            return
        users = catalog_users(locked)
        if users:
            plural = {"policy": "policies"}
            what = ", ".join(f"{n} {plural.get(k, k + 's') if n != 1 else k}"
                             for k, n in users.items())  # fmt: skip
            raise CatalogRefused(
                f"{catalog} is still used by {what}: delete its policies first; a catalog "
                "with runs or restores is kept as their record."
            )
        output = describe(locked, locked.nodes.all()) + "; the files on the hosts were kept"
        pk = locked.pk
        locked.delete()
        audit.append(audit.BACKUP_CATALOG_DELETED, actor=actor, source=source,
                     target=f"backup_catalog:{pk}", output=output)  # fmt: skip
