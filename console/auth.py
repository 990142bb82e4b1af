"""Sign-in: local accounts and LDAP, persona groups from the directory, audited.

Every sign-in, failed sign-in, lock-out and sign-out writes an audit entry. Passwords never reach
an entry: a failed attempt records only the name that was typed (cut to 150 characters), the
client address (in `output`, taken the way django-axes takes it) and the reason.

Rate limiting is django-axes (AxesStandaloneBackend first in AUTHENTICATION_BACKENDS, AxesMiddleware
last); when it refuses an attempt, its middleware calls `locked_out` below.
"""

import logging
import uuid
from datetime import timedelta

import ldap
import ldap.dn
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_ip_address, get_cool_off
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_auth_ldap.backend import LDAPBackend

from console import audit
from console.models import AuditEntry

logger = logging.getLogger(__name__)

NAME_LIMIT = 150  # longest attempted user name kept in an audit entry
AXES_NAME_LIMIT = 255  # width of axes' AccessAttempt.username


# --- Directory sign-in -------------------------------------------------------------------------


def _normalize_dn(dn: str) -> str:
    """A DN in one spelling (no spaces after commas, lower case) so DNs compare reliably."""
    try:
        return ldap.dn.dn2str(ldap.dn.str2dn(dn)).lower()
    except ldap.DECODING_ERROR:
        return dn.strip().lower()


def personas_from_group_dns(group_dns) -> set[str]:
    """The persona names whose LDAP group (settings.LDAP_PERSONA_GROUPS) is among `group_dns`."""
    member_of = {_normalize_dn(dn) for dn in group_dns}
    return {
        persona
        for persona, dn in settings.LDAP_PERSONA_GROUPS.items()
        if _normalize_dn(dn) in member_of
    }


def sync_persona_groups(user, personas: set[str], *, request_id: str = "") -> bool:
    """Make `user`'s persona groups exactly `personas`; other groups are never touched.

    Idempotent: writes nothing when the groups already match and the local password is already
    unusable. Otherwise each change and its audit entry (source ldap-sync) commit together. The
    user row is locked so two sign-ins of one person at once cannot interleave. A directory
    account loses any usable local password, so only the directory can let it in; `user` gets the
    new password hash too, or the session made from it would not survive the next request.
    Returns whether the persona groups changed.
    """
    persona_names = set(settings.LDAP_PERSONA_GROUPS)
    with transaction.atomic():
        locked = get_user_model().objects.select_for_update().get(pk=user.pk)
        current = set(locked.groups.filter(name__in=persona_names).values_list("name", flat=True))
        added, removed = personas - current, current - personas
        if added or removed:
            locked.groups.remove(*Group.objects.filter(name__in=removed))
            locked.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in added))
            audit.append(
                audit.AUTH_GROUPS_CHANGED,
                source=AuditEntry.Source.LDAP_SYNC,
                target=f"user:{user.get_username()}",
                request_id=request_id,
                output=f"added: {', '.join(sorted(added)) or '-'}; "
                f"removed: {', '.join(sorted(removed)) or '-'}",
            )
        if locked.has_usable_password():
            locked.set_unusable_password()
            locked.save(update_fields=["password"])
            user.password = locked.password
            audit.append(
                audit.AUTH_USER_CHANGED,
                source=AuditEntry.Source.LDAP_SYNC,
                target=f"user:{user.get_username()}",
                request_id=request_id,
                output="local password disabled: the directory manages this account",
            )
    return bool(added or removed)


class ConsoleLDAPBackend(LDAPBackend):
    """django-auth-ldap, plus persona groups set from the directory on every sign-in.

    The hook is `authenticate_ldap_user`: it runs only for a bind that succeeded, after
    django-auth-ldap saved the user (new users get an unusable local password there). When the
    group lookup fails the sign-in fails too, so nobody signs in with stale personas.
    """

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is None:
            return None
        try:
            personas = personas_from_group_dns(ldap_user.group_dns)
        except ldap.LDAPError as e:
            logger.warning("LDAP group lookup failed for %s: %s", user.get_username(), e)
            return None
        request = getattr(ldap_user, "_request", None)  # django-auth-ldap keeps it there
        sync_persona_groups(
            user, personas, request_id=request_id_of(request) if request is not None else ""
        )
        return user


# --- Views -------------------------------------------------------------------------------------


def request_id_of(request: HttpRequest) -> str:
    """One id per request, shared by every audit entry that request writes."""
    if not hasattr(request, "console_request_id"):
        request.console_request_id = uuid.uuid4().hex
    return request.console_request_id


def _client(request: HttpRequest) -> str:
    return f"client ip: {get_client_ip_address(request) or 'unknown'}"


def _attempted_name(request: HttpRequest) -> str:
    return request.POST.get("username", "").strip()[:NAME_LIMIT]


def axes_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The name django-axes counts failures under: trimmed and lower-cased, as LDAP matches it.

    Without this, "Alice" and "alice" would be separate counters for one directory account. Cut
    to axes' column width: axes cuts every other field itself, and an overlong name would make
    its INSERT fail, turning a failed sign-in (on any door: page, API token) into a server error.
    """
    name = (credentials or {}).get("username")
    if name is None and request is not None and request.method == "POST":
        name = request.POST.get("username")
    return name.strip().lower()[:AXES_NAME_LIMIT] if isinstance(name, str) else name


class LoginView(auth_views.LoginView):
    """The one sign-in page (the admin site sends its visitors here). Audits every outcome."""

    template_name = "registration/login.html"

    def post(self, request, *args, **kwargs):
        # Whether axes refuses this attempt before any password is checked: such an attempt is
        # audited once, as auth.locked_out by `locked_out`, not also as a failed sign-in.
        name = _attempted_name(request)
        request.console_locked_before = not AxesProxyHandler.is_allowed(request, {"username": name})
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.get_user()
        audit.append(
            audit.AUTH_LOGIN,
            actor=user,
            source=AuditEntry.Source.UI,
            target=f"user:{user.get_username()}",
            output=_client(self.request),
            request_id=request_id_of(self.request),
        )
        return response

    def form_invalid(self, form):
        # Only attempts that reached authentication count; an empty field is not an attempt.
        reasons = [e.code for e in form.non_field_errors().as_data()]
        if reasons and not self.request.console_locked_before:
            name = _attempted_name(self.request)
            audit.append(
                audit.AUTH_LOGIN_FAILED,
                actor_name=name,
                source=AuditEntry.Source.UI,
                status=AuditEntry.Status.FAILED,
                target=f"user:{name}",
                output=f"{_client(self.request)}; reason: {', '.join(reasons)}",
                request_id=request_id_of(self.request),
            )
        return super().form_invalid(form)


class LogoutView(auth_views.LogoutView):
    """Sign-out, POST only (Django's default); audited when someone was signed in."""

    def post(self, request, *args, **kwargs):
        user = request.user if request.user.is_authenticated else None
        response = super().post(request, *args, **kwargs)
        if user is not None:
            audit.append(
                audit.AUTH_LOGOUT,
                actor=user,
                source=AuditEntry.Source.UI,
                target=f"user:{user.get_username()}",
                output=_client(request),
                request_id=request_id_of(request),
            )
        return response


def _minutes(delta: timedelta | None) -> int:
    return max(1, round(delta.total_seconds() / 60)) if delta else 0


def locked_out(request: HttpRequest, credentials=None, *args, **kwargs) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: audit the refused attempt once and answer 429 with the wait.

    django-axes 8 calls it as (request, original_response, credentials) and falls back to
    (request, credentials); both are accepted. The cool-off restarts with every refused attempt
    (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT), so the wait shown is the whole cool-off.
    """
    if args or isinstance(credentials, HttpResponse):
        credentials = args[0] if args else kwargs.get("credentials")
    name = ((credentials or {}).get("username") or _attempted_name(request))[:NAME_LIMIT]
    minutes = _minutes(get_cool_off(request))
    failures = getattr(request, "axes_failures_since_start", None)
    audit.append(
        audit.AUTH_LOCKED_OUT,
        actor_name=name,
        source=AuditEntry.Source.UI,
        status=AuditEntry.Status.FAILED,
        target=f"user:{name}",
        output=f"{_client(request)}; refused for {minutes} min"
        + (f" after {failures} failed sign-ins" if failures else ""),
        request_id=request_id_of(request),
    )
    context = {"username": name, "minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT}
    return render(request, "registration/locked_out.html", context, status=429)
