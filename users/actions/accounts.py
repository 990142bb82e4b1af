"""The account inventory: importing every login of every cluster, and classifying them.

`import_accounts(cluster)` reads the logins of a cluster's primary through the executor
(users/sql/accounts-*-list.sql), then, in one transaction, adds new accounts, refreshes the
server facts of known ones, marks vanished ones gone, applies the naming rules where no person
decided, and writes one audit entry with what changed. The read is audited by the executor.

Classification, by a person: `link_account` (personal, to a Person), `mark_account_functional`
(an owner and a purpose), `unclassify_account`. Each is audited and returns early when the
account is already so. An import never overrides what a person decided (`linked_by=manual`).
"""

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from clusters.models import Cluster, Node
from console import audit
from console.executor import ExecutorError, run_sql
from console.models import AuditEntry
from users import inventory
from users.models import AccountImport, DatabaseAccount, Person

SERVER_FACTS = (
    "locked", "expired", "superuser", "member_of", "valid_until", "password_changed_at",
    "plugin", "attributes", "comment",
)  # fmt: skip
_LIST_LIMIT = 20  # names listed in an audit entry before "and n more"
IMPORT_WORKERS = 8  # clusters imported at once: a server that does not answer delays only one


class ClassificationRefused(Exception):
    """The classification asked for is not possible; the message names the field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def naming_rules() -> inventory.NamingRules:
    return inventory.NamingRules(settings.PEOPLE_ACCOUNT_NAME_RULES)


def source_nodes(cluster: Cluster) -> list[Node]:
    """The database servers of a cluster in the order their logins are read: the primary, then
    the others (roles and mysql.* tables replicate, so a standby answers when the primary is
    down; a diverged replica is a drift for the monitoring to find, not for this list)."""
    services = (Node.Service.POSTGRESQL, Node.Service.MARIADB)
    nodes = list(cluster.nodes.filter(service__in=services).order_by("name"))
    return sorted(nodes, key=lambda n: n.role != Node.Role.PRIMARY)


def read_accounts(node: Node, *, actor=None, job=None) -> list[inventory.ServerAccount]:
    """The logins on `node`, read through the executor (audited there)."""
    if node.service == Node.Service.POSTGRESQL:
        result = run_sql(node.pg_target(), "users:accounts-pg-list", actor=actor, job=job,
                         label="account inventory")  # fmt: skip
        return inventory.pg_accounts(result.columns, result.rows)
    result = run_sql(node.mysql_target(), "users:accounts-mariadb-list", actor=actor, job=job,
                     label="account inventory")  # fmt: skip
    return inventory.mariadb_accounts(result.columns, result.rows)


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    return shown + (f" and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else "")


def import_accounts(cluster: Cluster, *, actor=None, job=None, source=AuditEntry.Source.JOB):
    """Import one cluster's logins, read from its primary or, when that cannot be read, from
    another of its servers; returns the AccountImport (failed when no server could be read: then
    no account changes). Idempotent: a second import of an unchanged server changes nothing and
    says so."""
    started = timezone.now()
    record = AccountImport(cluster=cluster, started=started, job=job)
    errors, found, node = [], None, None
    for node in source_nodes(cluster):
        try:
            found = read_accounts(node, actor=actor, job=job)
            break
        except ExecutorError as e:
            errors.append(str(e))
    record.node = node
    if found is None:
        error = "; ".join(errors) or f"cluster {cluster.name} has no database server"
        record.status, record.error = AccountImport.Status.FAILED, error
        record.finished = timezone.now()
        with transaction.atomic():
            record.save()
            audit.append(
                audit.ACCOUNTS_IMPORTED, actor=actor, source=source,
                status=AuditEntry.Status.FAILED, target=f"cluster:{cluster.name}",
                node=node.name if node else "", error=error, job_id=job.pk if job else None,
            )  # fmt: skip
        return record
    record.error = "; ".join(errors)  # servers tried before the one that answered
    with transaction.atomic():
        _store(cluster, node, found, record, actor=actor, source=source)
        record.status, record.finished = AccountImport.Status.SUCCEEDED, timezone.now()
        record.save()
    return record


def import_clusters(
    clusters: Iterable[Cluster], *, actor=None, job=None, source=AuditEntry.Source.JOB,
    done: Callable[[AccountImport], None] | None = None,
) -> list[AccountImport]:  # fmt: skip
    """`import_accounts` for several clusters, IMPORT_WORKERS at a time, each thread on its own
    console connection; `done(record)` is called as each cluster ends. Returns the records in
    the clusters' order."""
    clusters = list(clusters)

    def one(cluster: Cluster) -> AccountImport:
        try:
            return import_accounts(cluster, actor=actor, job=job, source=source)
        finally:
            connection.close()

    records: dict[int, AccountImport] = {}
    workers = max(1, min(IMPORT_WORKERS, len(clusters)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import") as pool:
        futures = [pool.submit(one, cluster) for cluster in clusters]
        for future in as_completed(futures):
            record = future.result()
            records[record.cluster_id] = record
            if done is not None:
                done(record)
    return [records[cluster.pk] for cluster in clusters]


def _store(cluster, node, found, record: AccountImport, *, actor, source: str) -> None:
    now = timezone.now()
    known = {
        (a.name, a.host): a
        for a in DatabaseAccount.objects.select_for_update().filter(cluster=cluster)
    }
    people = {p.uid.lower(): p for p in Person.objects.all()}
    uids = {key: p.uid for key, p in people.items()}
    rules = naming_rules()
    added, changed, gone, linked = [], [], [], []
    for server in found:
        account = known.get(server.key)
        if account is None and not server.can_login:
            continue  # a group role, not a login: listed under "member of"
        facts = _facts(server)
        if account is None:
            account = DatabaseAccount(cluster=cluster, node=node, name=server.name,
                                      host=server.host, first_seen=now, **facts)  # fmt: skip
            added.append(account)
        else:
            before = {f: getattr(account, f) for f in SERVER_FACTS}
            was_gone = account.gone_at is not None
            for f, value in facts.items():
                setattr(account, f, value)
            if was_gone or before != {f: getattr(account, f) for f in SERVER_FACTS}:
                changed.append(account)
            account.gone_at = None
        account.node, account.last_seen = node, now
        if _apply_rules(account, rules, uids, people):
            linked.append(account)
        account.save()
    present = {s.key for s in found}
    for key, account in known.items():
        if key not in present and account.gone_at is None:
            account.gone_at = now
            account.save(update_fields=["gone_at"])
            gone.append(account)
    record.seen = len(found)
    record.added, record.changed, record.gone, record.linked = (
        len(added), len(changed), len(gone), len(linked),
    )  # fmt: skip
    lines = [
        f"{record.seen} logins read from {node.name}; {len(added)} new, "
        f"{len(changed)} changed, {len(gone)} gone, {len(linked)} linked by naming rules"
    ]
    for title, items in (("new", added), ("gone", gone), ("linked", linked)):
        if items:
            lines.append(
                f"{title}: "
                + _names(
                    [_linked_label(a) for a in items]
                    if title == "linked"
                    else [a.login for a in items]
                )
            )
    audit.append(
        audit.ACCOUNTS_IMPORTED, actor=actor, source=source, target=f"cluster:{cluster.name}",
        node=node.name, output="\n".join(lines), job_id=record.job_id,
    )  # fmt: skip


def _linked_label(account: DatabaseAccount) -> str:
    return f"{account.login} -> {account.person.uid if account.person else '-'}"


def _facts(server: inventory.ServerAccount) -> dict:
    return {
        "locked": server.locked,
        "expired": server.expired,
        "superuser": server.superuser,
        "member_of": list(server.member_of),
        "valid_until": server.valid_until,
        "password_changed_at": server.password_changed_at,
        "plugin": server.plugin,
        "attributes": list(server.attributes),
        "comment": server.comment,
    }


def _apply_rules(account, rules, uids, people) -> bool:
    """Link an account no person decided about by the naming rules; True when it changed."""
    if account.linked_by == DatabaseAccount.LinkedBy.MANUAL:
        return False
    if account.kind == DatabaseAccount.Kind.FUNCTIONAL:
        return False
    uid = rules.person_for(account.name, uids)
    person = people[uid.lower()] if uid else None
    if person is None:
        if account.linked_by == DatabaseAccount.LinkedBy.RULE:
            account.kind, account.linked_by, account.person = (
                DatabaseAccount.Kind.UNCLASSIFIED,
                "",
                None,
            )
            return True
        return False
    if account.person_id == person.pk and account.kind == DatabaseAccount.Kind.PERSONAL:
        return False
    account.kind, account.linked_by, account.person = (
        DatabaseAccount.Kind.PERSONAL, DatabaseAccount.LinkedBy.RULE, person,
    )  # fmt: skip
    account.classified_by_name, account.classified_at = "naming rule", timezone.now()
    return True


# --- Classification by a person -----------------------------------------------------------------


def _classified(account: DatabaseAccount, actor, action: str, output: str, source: str) -> None:
    account.linked_by = DatabaseAccount.LinkedBy.MANUAL
    account.classified_by_name = actor.get_username() if actor else ""
    account.classified_at = timezone.now()
    account.save()
    audit.append(
        action, actor=actor, source=source,
        target=f"account:{account.cluster.name}:{account.login}", output=output,
    )  # fmt: skip


def link_account(account: DatabaseAccount, person: Person, *, actor, source=AuditEntry.Source.UI):
    """Make `account` personal, belonging to `person`, by a person's decision (imports keep it).
    Audited; returns False when it already was."""
    with transaction.atomic():
        account = (
            DatabaseAccount.objects.select_for_update().select_related("cluster").get(pk=account.pk)
        )
        if (
            account.kind == DatabaseAccount.Kind.PERSONAL
            and account.person_id == person.pk
            and account.linked_by == DatabaseAccount.LinkedBy.MANUAL
        ):
            return False
        before = account.person.uid if account.person else account.kind
        account.kind, account.person = DatabaseAccount.Kind.PERSONAL, person
        account.owner_person, account.owner_team, account.purpose = None, "", ""
        _classified(account, actor, audit.ACCOUNT_LINKED,
                    f"personal account of {person.uid} (was: {before})", source)  # fmt: skip
    return True


def mark_account_functional(
    account: DatabaseAccount, *, owner_person: Person | None, owner_team: str, purpose: str,
    actor, source=AuditEntry.Source.UI,
) -> bool:  # fmt: skip
    """Make `account` functional: an application account with an owner (a person, a team or
    both) and a purpose. Audited; returns False when it already was exactly so."""
    owner_team, purpose = owner_team.strip(), purpose.strip()
    if owner_person is None and not owner_team:
        raise ClassificationRefused("owner: name an owning person or team", field="owner_team")
    if not purpose:
        raise ClassificationRefused("purpose: say what the account is for", field="purpose")
    with transaction.atomic():
        account = (
            DatabaseAccount.objects.select_for_update().select_related("cluster").get(pk=account.pk)
        )
        wanted = (DatabaseAccount.Kind.FUNCTIONAL, owner_person.pk if owner_person else None,
                  owner_team, purpose)  # fmt: skip
        if (account.kind, account.owner_person_id, account.owner_team, account.purpose) == wanted:
            return False
        account.kind, account.person = DatabaseAccount.Kind.FUNCTIONAL, None
        account.owner_person, account.owner_team, account.purpose = (
            owner_person,
            owner_team,
            purpose,
        )
        owner = ", ".join(x for x in (owner_person and owner_person.uid, owner_team) if x)
        _classified(account, actor, audit.ACCOUNT_CLASSIFIED,
                    f"functional; owner: {owner}; purpose: {purpose}", source)  # fmt: skip
    return True


def unclassify_account(account: DatabaseAccount, *, actor, source=AuditEntry.Source.UI) -> bool:
    """Back to the orphans to review; the naming rules no longer apply to it (a person decided).
    Audited; returns False when it already was unclassified by a person."""
    with transaction.atomic():
        account = (
            DatabaseAccount.objects.select_for_update().select_related("cluster").get(pk=account.pk)
        )
        if (
            account.kind == DatabaseAccount.Kind.UNCLASSIFIED
            and account.linked_by == DatabaseAccount.LinkedBy.MANUAL
        ):
            return False
        account.kind, account.person = DatabaseAccount.Kind.UNCLASSIFIED, None
        account.owner_person, account.owner_team, account.purpose = None, "", ""
        _classified(account, actor, audit.ACCOUNT_CLASSIFIED, "unclassified", source)
    return True
