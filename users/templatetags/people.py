"""`{% load people %}{% directory_sync_banner %}`: the held directory sync, on any page."""

from django import template

from users.actions import open_hold

register = template.Library()


@register.inclusion_tag("users/partials/sync_banner.html", takes_context=True)
def directory_sync_banner(context) -> dict:
    """The banner of a held directory sync, for users who may see directory syncs."""
    user = context.get("user")
    if user is None or not user.has_perm("users.view_directorysync"):
        return {"hold": None}
    return {"hold": open_hold()}
