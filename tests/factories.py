"""Plain factory functions for tests: users with personas, audit entries, jobs."""

import itertools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from console import audit
from console.models import AuditEntry, Job, JobLogLine

PASSWORD = "correct-horse-battery-staple-7"
_numbers = itertools.count(1)


def make_user(username: str | None = None, *, persona: str | None = None, **fields):
    """A local user (password PASSWORD), in the persona's group when one is given.

    The persona groups exist after migrate (console.access.sync_personas).
    """
    username = username or f"{persona or 'user'}{next(_numbers)}"
    user = get_user_model().objects.create_user(username, password=PASSWORD, **fields)
    if persona:
        user.groups.add(Group.objects.get(name=persona))
    return user


def make_audit_entry(action: str = "test.action", *, actor=None, **fields) -> AuditEntry:
    """An entry appended to the real chain through console.audit.append."""
    fields.setdefault("source", AuditEntry.Source.UI)
    return audit.append(action, actor=actor, **fields)


def make_job(*, user=None, kind: str = "console.verify_audit", **fields) -> Job:
    """A job row as enqueue() would create it, without sending anything to Celery."""
    fields.setdefault("title", kind)
    if user is not None:
        fields.setdefault("user_name", user.get_username())
    return Job.objects.create(kind=kind, user=user, **fields)


def make_log_line(job: Job, message: str, level: str = JobLogLine.Level.INFO) -> JobLogLine:
    return JobLogLine.objects.create(job=job, message=message, level=level)
