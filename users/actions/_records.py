"""What every lifecycle action shares: the executor keywords that name the account, and the
console side of a change (the DatabaseAccount row and its audit entry, in one transaction)."""

from django.db import transaction

from console import audit
from console.models import AuditEntry
from users.models import DatabaseAccount


def source_of(job) -> str:
    return job.source if job is not None else AuditEntry.Source.JOB


def record(action: str, account, output: str, *, actor, job, **changes) -> None:
    """The console side of an action: the row's changes and their audit entry, together."""
    with transaction.atomic():
        if changes:
            DatabaseAccount.objects.filter(pk=account.pk).update(**changes)
            for name, value in changes.items():
                setattr(account, name, value)
        audit.append(
            action,
            actor=actor,
            source=source_of(job),
            target=f"account:{account.pk}",
            node=account.node.name if account.node_id else "",
            output=output,
            job_id=job.pk if job is not None else None,
        )


def executor_kw(account, action: str, *, actor, job) -> dict:
    return {"actor": actor, "job": job, "action": action, "label": account.login}
