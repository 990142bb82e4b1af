"""The directory sync: Person rows from LDAP, with the safety that an outage or a mass
departure never offboards anyone by itself.

`sync_directory` reads the directory (users.ldap), plans the changes (`plan_sync`, pure) and
applies them unless the run must be held: the directory could not be read completely, or more
than PEOPLE_SYNC_MAX_LEFT_SHARE of the active people would become `left` at once. A held run
changes no Person, keeps what was read, and waits: `confirm_directory_sync` (a DBA) applies
exactly that, `dismiss_directory_sync` drops it. Every change and decision is audited.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from console import audit
from console.models import AuditEntry
from users import ldap
from users.actions.offboarding import request_offboarding
from users.ldap import DirectoryEntry, DirectoryUnavailable
from users.models import DirectorySync, Person

GONE = "gone from the directory"
DISABLED = "disabled in the directory"


class SyncRefused(Exception):
    """A confirmation or dismissal that cannot be done; the message is for the DBA."""


@dataclass
class SyncPlan:
    """What applying a directory read would change."""

    create: list[DirectoryEntry] = field(default_factory=list)
    update: list[tuple[Person, DirectoryEntry, list[str]]] = field(default_factory=list)
    leave: list[tuple[Person, str]] = field(default_factory=list)  # person, reason
    returned: list[tuple[Person, DirectoryEntry]] = field(default_factory=list)
    present: list[str] = field(default_factory=list)  # uids found and not disabled
    seen: int = 0


def _changes(person: Person, entry: DirectoryEntry) -> list[str]:
    changed = []
    for attr, value in (("name", entry.name), ("mail", entry.mail), ("dn", entry.dn)):
        if getattr(person, attr) != value:
            changed.append(attr)
    if list(person.groups) != list(entry.groups):
        changed.append("groups")
    return changed


def plan_sync(entries: list[DirectoryEntry], people: list[Person]) -> SyncPlan:
    """Compare a complete directory read with the Person rows. Pure."""
    plan = SyncPlan(seen=len(entries))
    by_uid = {p.uid.lower(): p for p in people}
    found = set()
    for entry in entries:
        key = entry.uid.lower()
        found.add(key)
        person = by_uid.get(key)
        if not entry.disabled:
            plan.present.append(entry.uid)
        if person is None:
            if not entry.disabled:
                plan.create.append(entry)
            continue
        if entry.disabled:
            if person.state == Person.State.ACTIVE:
                plan.leave.append((person, DISABLED))
            continue
        if person.state == Person.State.LEFT:
            plan.returned.append((person, entry))
        elif changed := _changes(person, entry):
            plan.update.append((person, entry, changed))
    for key, person in by_uid.items():
        if key not in found and person.state == Person.State.ACTIVE:
            plan.leave.append((person, GONE))
    return plan


def too_many_leave(leaving: int, active: int, share: float | None = None) -> bool:
    """Whether `leaving` of `active` people is more than the allowed share at once."""
    share = settings.PEOPLE_SYNC_MAX_LEFT_SHARE if share is None else share
    return active > 0 and leaving / active > share


def sync_directory(*, actor=None, source: str = AuditEntry.Source.SCHEDULE, job=None):
    """Read the directory and apply it to the Person rows, or hold the run. Returns the
    DirectorySync. Idempotent: a second run over an unchanged directory changes nothing."""
    started = timezone.now()
    try:
        entries = ldap.read_directory()
    except DirectoryUnavailable as e:
        return _hold(
            DirectorySync.HoldKind.UNREACHABLE, str(e), started=started, actor=actor,
            source=source, job=job,
        )  # fmt: skip
    with transaction.atomic():
        people = list(Person.objects.select_for_update().order_by("pk"))
        plan = plan_sync(entries, people)
        active = sum(1 for p in people if p.state == Person.State.ACTIVE)
        if too_many_leave(len(plan.leave), active):
            share = settings.PEOPLE_SYNC_MAX_LEFT_SHARE
            reason = (
                f"{len(plan.leave)} of {active} active people would be marked left at once "
                f"(more than {share:.0%}); nothing was changed. A DBA confirms or dismisses."
            )
            return _hold(
                DirectorySync.HoldKind.TOO_MANY_LEFT, reason, started=started, actor=actor,
                source=source, job=job, entries=entries, plan=plan,
            )  # fmt: skip
        run = DirectorySync(
            started=started, status=DirectorySync.Status.APPLIED, source=source, job=job
        )
        _supersede_open_hold()
        _apply(plan, run, actor=actor, source=source)
        return run


def _supersede_open_hold() -> None:
    """A newer run replaces the held one: a DBA confirms only the latest read."""
    for held in DirectorySync.objects.select_for_update().filter(status=DirectorySync.Status.HELD):
        held.status = DirectorySync.Status.SUPERSEDED
        held.resolved_at = timezone.now()
        held.snapshot = []
        held.save(update_fields=["status", "resolved_at", "snapshot"])


def _hold(kind, reason, *, started, actor, source, job, entries=(), plan=None) -> DirectorySync:
    """Record a held run and audit it, unless the open hold already says the same (same kind,
    same people leaving): then it is refreshed with this read, and no new alert is raised."""
    would_leave = sorted(p.uid for p, _ in plan.leave) if plan else []
    snapshot = [e.as_dict() for e in entries]
    with transaction.atomic():
        same = (
            DirectorySync.objects.select_for_update()
            .filter(status=DirectorySync.Status.HELD, hold_kind=kind, would_leave=would_leave)
            .first()
        )
        if same is not None:
            same.reason, same.snapshot, same.seen = reason, snapshot, len(entries)
            same.finished = timezone.now()
            same.save(update_fields=["reason", "snapshot", "seen", "finished"])
            return same
        _supersede_open_hold()
        run = DirectorySync.objects.create(
            started=started,
            finished=timezone.now(),
            status=DirectorySync.Status.HELD,
            hold_kind=kind,
            reason=reason,
            source=source,
            job=job,
            seen=len(entries),
            would_leave=would_leave,
            snapshot=snapshot,
        )
        audit.append(
            audit.DIRECTORY_SYNC_HELD,
            actor=actor,
            source=AuditEntry.Source.LDAP_SYNC,
            status=AuditEntry.Status.FAILED,
            target=f"directory-sync:{run.pk}",
            error=reason,
            output=("would mark left: " + ", ".join(would_leave)) if would_leave else "",
            job_id=job.pk if job else None,
        )
    return run


def _apply(plan: SyncPlan, run: DirectorySync, *, actor, source: str) -> None:
    """Write the plan and its audit entries; the caller holds the transaction."""
    now = timezone.now()
    job_id = run.job_id

    def log(action: str, person: Person, output: str) -> None:
        audit.append(
            action, actor=actor, source=AuditEntry.Source.LDAP_SYNC,
            target=f"person:{person.uid}", output=output, job_id=job_id,
        )  # fmt: skip

    for entry in plan.create:
        person = Person.objects.create(
            uid=entry.uid, name=entry.name, mail=entry.mail, dn=entry.dn,
            groups=list(entry.groups), first_seen=now, last_seen=now,
        )  # fmt: skip
        log(audit.PERSON_SYNCED, person, f"created; groups: {', '.join(entry.groups) or '-'}")
    for person, entry, changed in plan.update:
        before = {name: getattr(person, name) for name in changed}
        _copy(person, entry, now)
        person.save()
        detail = "; ".join(f"{n}: {before[n]!s} -> {getattr(person, n)!s}" for n in changed)
        log(audit.PERSON_SYNCED, person, detail)
    for person, entry in plan.returned:
        _copy(person, entry, now)
        person.state, person.left_at, person.left_reason = Person.State.ACTIVE, None, ""
        person.save()
        log(audit.PERSON_SYNCED, person, "active again: the directory has their entry back")
    for person, reason in plan.leave:
        person.state, person.left_at, person.left_reason = Person.State.LEFT, now, reason
        person.save(update_fields=["state", "left_at", "left_reason"])
        log(audit.PERSON_LEFT, person, reason)
        request_offboarding(person, job=run.job)  # starts, or waits for approval
    Person.objects.filter(uid__in=plan.present).update(last_seen=now)
    run.finished = timezone.now()
    run.seen, run.created, run.updated = plan.seen, len(plan.create), len(plan.update)
    run.left, run.returned = len(plan.leave), len(plan.returned)
    run.save()
    audit.append(
        audit.DIRECTORY_SYNCED,
        actor=actor,
        source=AuditEntry.Source.LDAP_SYNC,
        target=f"directory-sync:{run.pk}",
        output=f"{run.seen} entries read; {run.created} created, {run.updated} updated, "
        f"{run.left} left, {run.returned} active again",
        job_id=job_id,
    )


def _copy(person: Person, entry: DirectoryEntry, now) -> None:
    person.name, person.mail, person.dn = entry.name, entry.mail, entry.dn
    person.groups = list(entry.groups)
    person.last_seen = now


def confirm_directory_sync(run: DirectorySync, *, actor, source: str = AuditEntry.Source.UI):
    """Apply a run held for too many leavers, as read then, on a DBA's word. Audited. Safe to
    retry: a run already confirmed is returned as it is."""
    with transaction.atomic():
        run = DirectorySync.objects.select_for_update().get(pk=run.pk)
        if run.status == DirectorySync.Status.CONFIRMED:
            return run
        if not run.confirmable:
            raise SyncRefused(
                f"directory sync #{run.pk} is {run.get_status_display()}"
                + (" and read nothing to apply" if run.status == run.Status.HELD else "")
                + "; only a sync held for too many leavers can be confirmed"
            )
        entries = [DirectoryEntry.from_dict(e) for e in run.snapshot]
        people = list(Person.objects.select_for_update().order_by("pk"))
        plan = plan_sync(entries, people)
        run.status = DirectorySync.Status.CONFIRMED
        run.resolved_by = actor
        run.resolved_by_name = actor.get_username() if actor else ""
        run.resolved_at = timezone.now()
        run.snapshot = []
        audit.append(
            audit.DIRECTORY_SYNC_CONFIRMED, actor=actor, source=source,
            target=f"directory-sync:{run.pk}",
            output=f"applying: {len(plan.leave)} people marked left "
            f"({', '.join(p.uid for p, _ in plan.leave) or '-'})",
        )  # fmt: skip
        _apply(plan, run, actor=actor, source=source)
    return run


def dismiss_directory_sync(run: DirectorySync, *, actor, source: str = AuditEntry.Source.UI):
    """Close a held run without applying anything. Audited; a closed run is left as it is."""
    with transaction.atomic():
        run = DirectorySync.objects.select_for_update().get(pk=run.pk)
        if run.status != DirectorySync.Status.HELD:
            return run
        run.status = DirectorySync.Status.DISMISSED
        run.resolved_by = actor
        run.resolved_by_name = actor.get_username() if actor else ""
        run.resolved_at = timezone.now()
        run.snapshot = []
        run.save()
        audit.append(
            audit.DIRECTORY_SYNC_DISMISSED, actor=actor, source=source,
            target=f"directory-sync:{run.pk}", output=f"dismissed: {run.reason}",
        )  # fmt: skip
    return run


def open_hold() -> DirectorySync | None:
    """The held run waiting for a DBA, if any (the banner of the people pages)."""
    return DirectorySync.objects.filter(status=DirectorySync.Status.HELD).first()
