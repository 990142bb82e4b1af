"""Template filters of the dashboard and cluster pages: sizes and durations for people."""

from django import template
from django.utils import timezone

register = template.Library()

_UNITS = ["B", "kB", "MB", "GB", "TB", "PB"]


@register.filter
def bytes_human(value) -> str:
    """1536 -> "1.5 kB" (powers of 1024, as PostgreSQL's pg_size_pretty); None -> "—"."""
    if value is None or value == "":
        return "—"
    size = float(value)
    sign = "-" if size < 0 else ""
    size = abs(size)
    for unit in _UNITS:
        if size < 1024 or unit == _UNITS[-1]:
            return f"{sign}{size:.0f} {unit}" if unit == "B" else f"{sign}{size:.1f} {unit}"
        size /= 1024
    return "—"  # not reached


@register.filter
def seconds_human(value) -> str:
    """A duration in seconds, short: "40 ms", "2.4 s", "12 s", "5 min", "3 h 20 min", "2 d 4 h"."""
    if value is None or value == "":
        return "—"
    s = float(value)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    minutes = int(s // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def age(value) -> str:
    """How long ago a datetime was, short: "12 s ago", "5 min ago"."""
    if not value:
        return "—"
    return f"{seconds_human(max(0.0, (timezone.now() - value).total_seconds()))} ago"


@register.filter
def get_item(mapping, key):
    return mapping.get(key, "")
