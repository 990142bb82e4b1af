"""Account lifecycle actions (issue 6, part 3): create, grant and revoke, password expiry,
rotate, drop, and the jobs that run them. Lock and unlock are users.dbops primitives, shared
with offboarding; roles, privileges and expiry are in users.actions.grants (re-exported here);
the drop, with what the account owns, in users.actions.drop.

Each action runs in a job (users/tasks.py), on the server users.dbops.server_node picks, through
the executor (each statement audited there, intent then outcome, under the account.* action),
and records what it changed in the console (the DatabaseAccount row) with one more audit entry
in the same transaction. Each reads the server first and does nothing, saying so, when the work
is already done, so a retried job is safe.

Passwords: created and rotated passwords are generated here (never typed, never in a Celery
message); the server receives only the SCRAM-SHA-256 verifier or the mysql_native_password
hash (users.passwords), redacted from the audit entry. The clear password goes back to the
requester once: encrypted (console.crypto) in the job's result until `reveal_password` shows it
and wipes it.
"""

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from psycopg import sql

from clusters.models import Cluster
from console import audit, crypto
from console.errors import ExpectedFailure
from console.executor import SqlFailed, run_sql
from console.models import AuditEntry, Job
from users import dbops, passwords
from users.actions._records import executor_kw as _kw
from users.actions._records import record as _record
from users.actions.drop import describe_owned, drop_account
from users.actions.grants import (  # noqa: F401 - re-exported: the lifecycle's one entry point
    MARIADB_EXPIRY,
    MYSQL_PRIVILEGES,
    PG_PRIVILEGES,
    PG_TABLE_PRIVILEGES,
    grant_privileges,
    grant_role,
    privileges,
    revoke_privileges,
    revoke_role,
    set_password_expiry,
)
from users.dbops import AccountRefused
from users.models import DatabaseAccount, Person

NATIVE_USING = "IDENTIFIED VIA mysql_native_password USING %s"
PASSWORD_JOBS = ("users.create_account", "users.rotate_password")


class PasswordGone(ExpectedFailure):
    """The one-time password was already shown, or the job has none for this person."""


def mariadb_uses_native_hash() -> bool:
    """USERS_MARIADB_PASSWORD_PLUGIN: "mysql_native_password" (default: the console sends the
    hash) or "server" (the server's default plugin: the clear password is sent, as a bound
    parameter that is never recorded; use TLS)."""
    return settings.USERS_MARIADB_PASSWORD_PLUGIN != "server"


# --- passwords ---------------------------------------------------------------------------------


def _set_password(account, *, create: bool, valid_until=None, actor, job) -> str:
    """CREATE the account with, or ALTER it to, a new generated password; read the stored
    verifier back where the console may. Returns the clear password."""
    password = passwords.generate_password()
    node = dbops.server_node(account)
    action = audit.ACCOUNT_CREATED if create else audit.ACCOUNT_PASSWORD_ROTATED
    kw = _kw(account, action, actor=actor, job=job)
    if dbops.is_postgres(account):
        verifier = passwords.scram_sha256_verifier(password)
        parts = [
            sql.SQL("CREATE ROLE {} LOGIN" if create else "ALTER ROLE {}").format(
                dbops.role_identifier(account)
            ),
            sql.SQL("PASSWORD {}").format(sql.Literal(verifier)),
        ]
        if valid_until is not None:
            parts.append(sql.SQL("VALID UNTIL {}").format(sql.Literal(valid_until.isoformat())))
        run_sql(node.pg_target(), sql.SQL(" ").join(parts), secrets=(verifier, password), **kw)
        check = ("users:account-pg-password-check", {"verifier": verifier, "role": account.name})
    else:
        verb = "CREATE USER" if create else "ALTER USER"
        if mariadb_uses_native_hash():
            secret = passwords.mysql_native_password_hash(password)
            query = f"{verb} {dbops.mysql_account(account)} {NATIVE_USING}"
        else:
            secret = password
            query = f"{verb} {dbops.mysql_account(account)} IDENTIFIED BY %s"
        run_sql(node.mysql_target(), query, (secret,), secrets=(secret, password), **kw)
        check = (
            ("users:account-mariadb-password-check", (secret, account.name, account.host or "%"))
            if secret != password
            else None
        )
    if check is not None:
        _verify_stored(account, node, *check, actor=actor, job=job)
    return password


def _verify_stored(account, node, query: str, params, *, actor, job) -> None:
    target = node.pg_target() if dbops.is_postgres(account) else node.mysql_target()
    try:
        result = run_sql(
            target, query, params, **_kw(account, audit.ACCOUNT_STATE_READ, actor=actor, job=job)
        )
    except SqlFailed as e:
        if "permission denied" in str(e) or "denied" in str(e):
            return  # the console's login may not read stored passwords: nothing to compare
        raise
    if not result.rows or not result.rows[0][0]:
        raise ExpectedFailure(f"{account.login}: the server does not store the password just set")


def _password_result(account, password: str, actor) -> dict:
    return {
        "account": account.pk,
        "login": account.login,
        "password_token": crypto.encrypt(password).decode("ascii"),
        "password_for": actor.pk if actor is not None else None,
    }


def reveal_password(job: Job, *, actor, source=AuditEntry.Source.UI) -> str:
    """The clear password a create or rotate job made, to the person who asked for it, once:
    the encrypted copy is wiped from the job in the same transaction as the audit entry."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        result = dict(job.result or {})
        if job.kind not in PASSWORD_JOBS or result.get("password_for") != actor.pk:
            raise PasswordGone("this job has no password for you")
        token = result.pop("password_token", None)
        if token is None:
            shown = result.get("password_shown_at", "")
            raise PasswordGone(
                f"the password was shown once already ({shown}); it is not kept. "
                "Rotate the password again if it was lost."
            )
        password = crypto.decrypt(token.encode("ascii"))
        result["password_shown_at"] = timezone.now().strftime("%Y-%m-%d %H:%M:%S UTC")
        Job.objects.filter(pk=job.pk).update(result=result)
        audit.append(
            audit.ACCOUNT_PASSWORD_SHOWN,
            actor=actor,
            source=source,
            target=f"account:{result.get('account')}",
            job_id=job.pk,
            output=f"the password of {result.get('login')} was shown once",
        )
    return password


# --- create ------------------------------------------------------------------------------------


def create_account(
    cluster: Cluster,
    name: str,
    *,
    host: str = "",
    kind: str = DatabaseAccount.Kind.UNCLASSIFIED,
    person: Person | None = None,
    owner_person: Person | None = None,
    owner_team: str = "",
    purpose: str = "",
    valid_until: datetime | None = None,
    actor=None,
    job=None,
) -> tuple[DatabaseAccount, str]:
    """Create a login on the cluster with a generated password; returns the account row and
    the clear password (for the job to keep encrypted until shown once). PostgreSQL
    `CREATE ROLE … LOGIN PASSWORD '<SCRAM verifier>'` on the primary; MariaDB `CREATE USER …
    IDENTIFIED VIA mysql_native_password USING '<hash>'`. Refused, with nothing sent, for a name
    the server would misread, and when the account already exists on the server."""
    if cluster.kind == "mariadb":
        host = host or "%"
    else:
        host = ""
    dbops.check_account_name(name, cluster.kind, host)
    account = DatabaseAccount.objects.filter(cluster=cluster, name=name, host=host).first()
    probe = account or DatabaseAccount(cluster=cluster, name=name, host=host)
    node = dbops.server_node(probe)
    if dbops.account_state(probe, actor=actor, job=job, node=node)["exists"]:
        raise AccountRefused(f"{probe.login} already exists on {node.name}", "name")
    password = _set_password(probe, create=True, valid_until=valid_until, actor=actor, job=job)
    now = timezone.now()
    facts = {
        "node": node,
        "locked": False,
        "expired": False,
        "superuser": False,
        "member_of": [],
        "valid_until": valid_until,
        "gone_at": None,
        "last_seen": now,
        "kind": kind,
        "person": person if kind == DatabaseAccount.Kind.PERSONAL else None,
        "owner_person": owner_person if kind == DatabaseAccount.Kind.FUNCTIONAL else None,
        "owner_team": owner_team if kind == DatabaseAccount.Kind.FUNCTIONAL else "",
        "purpose": purpose if kind == DatabaseAccount.Kind.FUNCTIONAL else "",
        "linked_by": DatabaseAccount.LinkedBy.MANUAL if kind != "unclassified" else "",
        "classified_by_name": actor.get_username() if actor is not None else "",
        "classified_at": now,
    }
    with transaction.atomic():
        account, _ = DatabaseAccount.objects.update_or_create(
            cluster=cluster, name=name, host=host, defaults=facts
        )
        _record(
            audit.ACCOUNT_CREATED,
            account,
            f"created {account.login} on {node.name} "
            f"({kind}{': ' + person.uid if person and kind == 'personal' else ''})",
            actor=actor,
            job=job,
        )
    return account, password


def rotate_password(account: DatabaseAccount, *, actor=None, job=None) -> str:
    """Give a functional account a new generated password; returns it (shown once to the
    requester through the job). Personal accounts are refused: their owner sets their own."""
    if account.kind != DatabaseAccount.Kind.FUNCTIONAL:
        raise AccountRefused(
            f"{account.login} is not a functional account; only functional "
            "accounts have their password rotated by the console"
        )
    dbops_state = dbops.account_state(account, actor=actor, job=job)
    if not dbops_state["exists"]:
        raise dbops.AccountMissing(f"{account.login} does not exist on {dbops_state['node']}")
    password = _set_password(account, create=False, actor=actor, job=job)
    changes = {} if dbops.is_postgres(account) else {"password_changed_at": timezone.now()}
    _record(
        audit.ACCOUNT_PASSWORD_ROTATED,
        account,
        f"password of {account.login} rotated; the new one is shown once to the requester",
        actor=actor,
        job=job,
        **changes,
    )
    return password


# --- jobs ----------------------------------------------------------------------------------------

ACCOUNT_JOBS = {
    "lock_account": "Lock",
    "unlock_account": "Unlock",
    "grant_role": "Grant a role to",
    "revoke_role": "Revoke a role from",
    "grant_privileges": "Grant privileges to",
    "revoke_privileges": "Revoke privileges from",
    "set_password_expiry": "Set the password expiry of",
    "rotate_password": "Rotate the password of",
    "drop_account": "Drop",
}


def request_action(account: DatabaseAccount, action: str, params: dict, *, actor,
                   source: str = AuditEntry.Source.UI) -> Job:  # fmt: skip
    """Queue one lifecycle job on an account (users/tasks.py runs it). `params` is small JSON
    and never a secret; the job is sent to its worker once the caller's transaction commits."""
    from console import jobs

    if action not in ACCOUNT_JOBS:
        raise ValueError(f"not an account lifecycle action: {action}")
    title = f"{ACCOUNT_JOBS[action]} {account.login} on {account.cluster.name}"
    return jobs.enqueue(f"users.{action}", title[:255], user=actor, source=source,
                        params={**params, "account": account.pk}, target=account)  # fmt: skip


def request_create(cluster: Cluster, params: dict, *, actor,
                   source: str = AuditEntry.Source.UI) -> Job:  # fmt: skip
    """Queue the creation of an account on `cluster` (params as create_account's keywords, the
    people by uid, the time as ISO 8601). The name is checked before anything is queued."""
    from console import jobs

    dbops.check_account_name(params["name"], cluster.kind, params.get("host") or "%")
    title = f"Create {params['name']} on {cluster.name}"
    return jobs.enqueue("users.create_account", title[:255], user=actor, source=source,
                        params={**params, "cluster": cluster.pk}, target=cluster)  # fmt: skip


def run_create(job: Job) -> tuple[DatabaseAccount, dict]:
    """The body of the create job: the account, and the job's result (password encrypted)."""
    p = job.params
    people = {uid: Person.objects.get(uid=uid) for uid in (p.get("person"), p.get("owner_person"))
              if uid}  # fmt: skip
    until = p.get("valid_until")
    account, password = create_account(
        Cluster.objects.get(pk=p["cluster"]), p["name"], host=p.get("host", ""),
        kind=p.get("kind", DatabaseAccount.Kind.UNCLASSIFIED),
        person=people.get(p.get("person")), owner_person=people.get(p.get("owner_person")),
        owner_team=p.get("owner_team", ""), purpose=p.get("purpose", ""),
        valid_until=datetime.fromisoformat(until) if until else None, actor=job.user, job=job,
    )  # fmt: skip
    return account, _password_result(account, password, job.user)


_GRANTS = {
    "grant_role": grant_role,
    "revoke_role": revoke_role,
    "grant_privileges": grant_privileges,
    "revoke_privileges": revoke_privileges,
}


def run_account_action(job: Job, action: str) -> tuple[dbops.Done | None, dict]:
    """The body of an account job: calls the action named with the job's params; returns what
    it did and the job's result."""
    p, actor = job.params, job.user
    account = DatabaseAccount.objects.select_related("cluster", "node").get(pk=p["account"])
    if action == "rotate_password":
        password = rotate_password(account, actor=actor, job=job)
        return None, _password_result(account, password, actor)
    kw = {"actor": actor, "job": job}
    if action in ("lock_account", "unlock_account"):
        done = getattr(dbops, action)(account, **kw)
    elif action in ("grant_role", "revoke_role"):
        done = _GRANTS[action](account, p["role"], **kw)
    elif action in ("grant_privileges", "revoke_privileges"):
        done = _GRANTS[action](account, privileges_=p["privileges"], database=p["database"],
                                 schema=p.get("schema") or "public", **kw)  # fmt: skip
    elif action == "set_password_expiry":
        until = datetime.fromisoformat(p["until"]) if p.get("until") else None
        done = set_password_expiry(account, until=until, mariadb=p.get("mariadb", ""),
                                   days=p.get("days"), **kw)  # fmt: skip
    elif action == "drop_account":
        done = drop_account(account, reassign_to=p.get("reassign_to", ""), **kw)
    else:
        raise ValueError(f"not an account lifecycle action: {action}")
    result = {"account": account.pk, "changed": done.changed, "message": done.message}
    if "privileges" in done.detail:
        result["privileges"] = done.detail["privileges"]
    if "member_of" in done.detail:
        result["member_of"] = done.detail["member_of"]
    if "owned" in done.detail:
        result["owned"] = describe_owned(done.detail["owned"])
    return done, result
