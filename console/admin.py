"""The admin site: read-only views of the console's records, audited user and group admins.

Nothing here can change or remove an audit entry, a job or a stored secret, or show a secret.
Changes to who may do what (a user's groups, permissions, is_active/is_staff/is_superuser, name,
password; a group's permissions) write their audit entry in the same transaction as the change.
The admin site has no sign-in page of its own: it sends visitors to the console's audited one.
"""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import router, transaction
from django.urls import reverse
from rest_framework.authtoken.admin import TokenAdmin as DRFTokenAdmin
from rest_framework.authtoken.models import TokenProxy

from console import audit
from console.access import PERSONAS
from console.auth import request_id_of
from console.models import AuditEntry, Credential, Job, JobLogLine

USER_FIELDS = ("username", "is_active", "is_staff", "is_superuser")


def _admin_login(request, extra_context=None):
    """Admin sign-in goes through the console's login page, so every attempt is audited."""
    if request.user.is_authenticated:
        raise PermissionDenied  # signed in but not staff: signing in again would not help
    return redirect_to_login(request.GET.get("next", reverse("admin:index")), reverse("login"))


admin.site.login = _admin_login


def set_diff(before: set[str], after: set[str]) -> str:
    """'added: a, b; removed: c' ('-' for none): the format of every membership change entry."""
    added = ", ".join(sorted(after - before)) or "-"
    removed = ", ".join(sorted(before - after)) or "-"
    return f"added: {added}; removed: {removed}"


def _perm_names(permissions) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in permissions.values_list("content_type__app_label", "codename")
    }


def _audit(request, action: str, target: str, output: str) -> None:
    audit.append(
        action,
        actor=request.user,
        source=AuditEntry.Source.UI,
        target=target,
        output=output,
        request_id=request_id_of(request),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewing only: no add, change or delete for anyone, superusers included."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "created", "actor_name", "source", "action", "target", "status")
    list_filter = ("source", "status")  # choices only: no DISTINCT scan over millions of rows
    search_fields = ("=actor_name", "=action", "=target")
    search_help_text = "Exact actor name, action (auth.login) or target (user:alice)"
    show_full_result_count = False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "title", "status", "user_name", "created", "finished")
    list_filter = ("status", "kind")
    search_fields = ("=user_name", "title")
    show_full_result_count = False


@admin.register(JobLogLine)
class JobLogLineAdmin(ReadOnlyAdmin):
    list_display = ("id", "job", "created", "level", "message")
    list_filter = ("level",)
    list_select_related = ("job",)
    show_full_result_count = False


@admin.register(Credential)
class CredentialAdmin(ReadOnlyAdmin):
    """Name and kind only; secrets are stored by console.secrets and never shown."""

    fields = ("name", "kind", "username", "created", "rotated")
    exclude = ("secret_token",)
    list_display = ("name", "kind", "username", "created", "rotated")
    list_filter = ("kind",)


admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class TokenAdmin(ReadOnlyAdmin, DRFTokenAdmin):
    """Which users hold an API token, never the token itself (links use the user's id)."""

    fields = ("user", "created")
    list_display = ("user", "created")
    search_fields = ("user__username",)


admin.site.unregister(User)


@admin.register(User)
class ConsoleUserAdmin(UserAdmin):
    """Django's user admin, with every change to access or identity audited."""

    def save_model(self, request, obj, form, change):
        before = User.objects.filter(pk=obj.pk).values(*USER_FIELDS).first() if change else None
        super().save_model(request, obj, form, change)
        target = f"user:{obj.get_username()}"
        if before is None:
            flags = ", ".join(f"{f}={getattr(obj, f)}" for f in USER_FIELDS[1:])
            _audit(request, audit.AUTH_USER_CHANGED, target, f"created ({flags})")
            return
        diff = [
            f"{f}: {before[f]} -> {getattr(obj, f)}"
            for f in USER_FIELDS
            if before[f] != getattr(obj, f)
        ]
        if diff:
            _audit(request, audit.AUTH_USER_CHANGED, target, "; ".join(diff))

    def save_related(self, request, form, formsets, change):
        user = form.instance
        groups_before = set(user.groups.values_list("name", flat=True))
        perms_before = _perm_names(user.user_permissions)
        super().save_related(request, form, formsets, change)
        groups_after = set(user.groups.values_list("name", flat=True))
        perms_after = _perm_names(user.user_permissions)
        target = f"user:{user.get_username()}"
        if groups_after != groups_before:
            _audit(
                request, audit.AUTH_GROUPS_CHANGED, target, set_diff(groups_before, groups_after)
            )
        if perms_after != perms_before:
            _audit(
                request, audit.AUTH_PERMISSIONS_CHANGED, target, set_diff(perms_before, perms_after)
            )

    def user_change_password(self, request, id, form_url=""):
        # Django's view does not run in a transaction; this one does, with its audit entry.
        with transaction.atomic(using=router.db_for_write(User)):
            user = self.get_object(request, unquote(id))
            before = user.password if user is not None else None
            response = super().user_change_password(request, id, form_url)
            if user is not None:
                user.refresh_from_db(fields=["password"])
                if user.password != before:
                    what = "set" if user.has_usable_password() else "disabled"
                    _audit(
                        request,
                        audit.AUTH_USER_CHANGED,
                        f"user:{user.get_username()}",
                        f"local password {what}",
                    )
        return response

    def delete_model(self, request, obj):
        _audit(request, audit.AUTH_USER_CHANGED, f"user:{obj.get_username()}", "deleted")
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic(using=router.db_for_write(User)):
            for name in queryset.values_list("username", flat=True):
                _audit(request, audit.AUTH_USER_CHANGED, f"user:{name}", "deleted")
            super().delete_queryset(request, queryset)


admin.site.unregister(Group)


@admin.register(Group)
class ConsoleGroupAdmin(GroupAdmin):
    """Django's group admin; permission changes are audited, persona groups keep their names."""

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.name in PERSONAS:
            return ("name",)  # LDAP mapping and the code refer to personas by name
        return ()

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.name in PERSONAS:
            return False
        return super().has_delete_permission(request, obj)

    def save_related(self, request, form, formsets, change):
        group = form.instance
        before = _perm_names(group.permissions) if change else set()
        super().save_related(request, form, formsets, change)
        after = _perm_names(group.permissions)
        if after != before:
            _audit(
                request,
                audit.AUTH_PERMISSIONS_CHANGED,
                f"group:{group.name}",
                set_diff(before, after),
            )

    def delete_model(self, request, obj):
        members = ", ".join(sorted(obj.user_set.values_list("username", flat=True))) or "-"
        _audit(
            request, audit.AUTH_GROUPS_CHANGED, f"group:{obj.name}", f"deleted; members: {members}"
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        if queryset.filter(name__in=PERSONAS).exists():
            raise PermissionDenied  # persona groups are defined by the code
        with transaction.atomic(using=router.db_for_write(Group)):
            for group in queryset:
                self.delete_model(request, group)
