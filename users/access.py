"""The one access gate of the users app: views and the API ask here, never query themselves."""

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404

from console.access import require_perm
from users.models import DatabaseAccount, DirectorySync, OffboardingRun, Person


def people_for_user(user):
    require_perm(user, "users.view_person")
    live = Q(accounts__gone_at__isnull=True)
    return Person.objects.annotate(account_count=Count("accounts", filter=live))


def get_person_for_user(user, uid: str) -> Person:
    require_perm(user, "users.view_person")
    try:
        return Person.objects.get(uid=uid)
    except Person.DoesNotExist:
        raise Http404("No such person") from None


def accounts_for_user(user):
    require_perm(user, "users.view_databaseaccount")
    return DatabaseAccount.objects.select_related("cluster", "node", "person", "owner_person")


def get_account_for_user(user, pk: int) -> DatabaseAccount:
    try:
        return accounts_for_user(user).get(pk=pk)
    except DatabaseAccount.DoesNotExist:
        raise Http404("No such account") from None


def get_account_to_classify(user, pk: int) -> DatabaseAccount:
    require_perm(user, "users.change_databaseaccount")
    return get_account_for_user(user, pk)


def syncs_for_user(user):
    require_perm(user, "users.view_directorysync")
    return DirectorySync.objects.all()


def get_sync_for_user(user, pk: int) -> DirectorySync:
    try:
        return syncs_for_user(user).get(pk=pk)
    except DirectorySync.DoesNotExist:
        raise Http404("No such directory sync") from None


def get_sync_to_resolve(user, pk: int) -> DirectorySync:
    require_perm(user, "users.sync_directory")
    return get_sync_for_user(user, pk)


def can_sync(user) -> bool:
    return user.has_perm("users.sync_directory")


def can_import(user) -> bool:
    return user.has_perm("users.import_accounts")


def can_classify(user) -> bool:
    return user.has_perm("users.change_databaseaccount")


def get_person_to_offboard(user, uid: str) -> Person:
    require_perm(user, "users.offboard_person")
    return get_person_for_user(user, uid)


def get_offboarding_evidence(user, uid: str, pk: int):
    """An offboarding run of the person `uid`, for its evidence report."""
    require_perm(user, "users.view_offboarding_evidence")
    try:
        return OffboardingRun.objects.select_related("person").get(pk=pk, person__uid=uid)
    except OffboardingRun.DoesNotExist:
        raise Http404("No such offboarding") from None


def offboardings_for_user(user):
    require_perm(user, "users.view_offboardingrun")
    return OffboardingRun.objects.select_related("person")


def can_offboard(user) -> bool:
    return user.has_perm("users.offboard_person")


def can_download_evidence(user) -> bool:
    return user.has_perm("users.view_offboarding_evidence")


# --- Account lifecycle (issue 6 part 3) ----------------------------------------------------------


def can_manage_accounts(user) -> bool:
    return user.has_perm("users.manage_account")


def can_lock(user, account: DatabaseAccount) -> bool:
    """DBAs lock any account; the helpdesk (lock_account only) personal accounts."""
    if can_manage_accounts(user):
        return True
    return user.has_perm("users.lock_account") and account.kind == DatabaseAccount.Kind.PERSONAL


def get_account_to_manage(user, pk: int) -> DatabaseAccount:
    require_perm(user, "users.manage_account")
    return get_account_for_user(user, pk)


def get_account_to_lock(user, pk: int) -> DatabaseAccount:
    require_perm(user, "users.lock_account")
    account = get_account_for_user(user, pk)
    if not can_lock(user, account):
        raise PermissionDenied("Only DBAs lock and unlock accounts other than personal ones.")
    return account


def get_password_job_for_user(user, pk: int):
    """A create or rotate job of this user's (its one-time password is theirs only)."""
    from console.models import Job
    from users.actions.lifecycle import PASSWORD_JOBS

    require_perm(user, "users.manage_account")
    try:
        return Job.objects.get(pk=pk, kind__in=PASSWORD_JOBS, user=user)
    except Job.DoesNotExist:
        raise Http404("No such job of yours") from None
