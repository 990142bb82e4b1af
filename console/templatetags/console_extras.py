"""Small display helpers for the console's templates."""

import json
from datetime import timedelta

from django import template

register = template.Library()

PERSONA_ORDER = ("dba", "helpdesk", "manager", "auditor")


@register.filter
def persona_list(personas) -> list[str]:
    """The personas in a fixed, readable order (the context gives a set)."""
    return [p for p in PERSONA_ORDER if p in personas] + sorted(set(personas) - set(PERSONA_ORDER))


@register.filter
def duration(value) -> str:
    """A timedelta (or milliseconds as int) as `1 h 02 min`, `3 min 05 s`, `4.2 s` or `35 ms`."""
    if value is None or value == "":
        return ""
    ms = value.total_seconds() * 1000 if isinstance(value, timedelta) else float(value)
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def pretty_json(value) -> str:
    """A JSON value indented for a <pre>; the template escapes it like any text."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
