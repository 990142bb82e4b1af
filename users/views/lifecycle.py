"""Pages of the users app: the account lifecycle (issue 6 part 3; see users/views/__init__.py).

The manage page of an account (its forms, behind users.access's gates) and one view per action:
each POST queues one job and the job page shows it run; create and rotate lead to the page that
shows the one-time password once.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from console.access import require_perm
from users import access
from users.models import DatabaseAccount
from users.views.accounts import _account_context


def _lifecycle_forms(request, account, **bound) -> dict:
    from users.forms import DropAccountForm, ExpiryForm, PrivilegesForm, RoleForm, TypedConfirmForm

    return {
        "can_manage": access.can_manage_accounts(request.user),
        "can_lock": access.can_lock(request.user, account),
        "lock_form": bound.get("lock_form") or TypedConfirmForm(account=account),
        "drop_form": bound.get("drop_form") or DropAccountForm(account=account),
        "role_form": bound.get("role_form") or RoleForm(),
        "privileges_form": bound.get("privileges_form") or PrivilegesForm(account=account),
        "expiry_form": bound.get("expiry_form") or ExpiryForm(account=account),
    }


def _lifecycle_page(request, account, status=200, **bound):
    context = {**_account_context(request, account), **_lifecycle_forms(request, account, **bound)}
    return render(request, "users/account_lifecycle.html", context, status=status)


def _queued(request, job):
    messages.success(request, f"Queued: {job.title}.")
    return redirect("job_detail", pk=job.pk)


@require_GET
@login_required
def account_lifecycle(request, pk: int):
    account = access.get_account_for_user(request.user, pk)
    if not (access.can_manage_accounts(request.user) or access.can_lock(request.user, account)):
        require_perm(request.user, "users.manage_account")
    return _lifecycle_page(request, account)


@require_POST
@login_required
def account_lock(request, pk: int):
    from users.actions import lifecycle
    from users.forms import TypedConfirmForm

    account = access.get_account_to_lock(request.user, pk)
    form = TypedConfirmForm(request.POST, account=account)
    if not form.is_valid():
        return _lifecycle_page(request, account, status=400, lock_form=form)
    return _queued(
        request, lifecycle.request_action(account, "lock_account", {}, actor=request.user)
    )


@require_POST
@login_required
def account_unlock(request, pk: int):
    from users.actions import lifecycle

    account = access.get_account_to_lock(request.user, pk)
    return _queued(
        request, lifecycle.request_action(account, "unlock_account", {}, actor=request.user)
    )


@require_POST
@login_required
def account_drop(request, pk: int):
    from users.actions import lifecycle
    from users.forms import DropAccountForm

    account = access.get_account_to_manage(request.user, pk)
    form = DropAccountForm(request.POST, account=account)
    if not form.is_valid():
        return _lifecycle_page(request, account, status=400, drop_form=form)
    params = {"reassign_to": form.cleaned_data["reassign_to"]}
    return _queued(
        request, lifecycle.request_action(account, "drop_account", params, actor=request.user)
    )


@require_POST
@login_required
def account_role(request, pk: int):
    from users.actions import lifecycle
    from users.forms import RoleForm

    account = access.get_account_to_manage(request.user, pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _lifecycle_page(request, account, status=400, role_form=form)
    action = f"{form.cleaned_data['operation']}_role"
    params = {"role": form.cleaned_data["role"]}
    return _queued(request, lifecycle.request_action(account, action, params, actor=request.user))


@require_POST
@login_required
def account_privileges(request, pk: int):
    from users.actions import lifecycle
    from users.forms import PrivilegesForm

    account = access.get_account_to_manage(request.user, pk)
    form = PrivilegesForm(request.POST, account=account)
    if not form.is_valid():
        return _lifecycle_page(request, account, status=400, privileges_form=form)
    data = form.cleaned_data
    action = f"{data['operation']}_privileges"
    params = {
        "privileges": data["privileges"],
        "database": data["database"],
        "schema": data.get("schema") or "public",
    }
    return _queued(request, lifecycle.request_action(account, action, params, actor=request.user))


@require_POST
@login_required
def account_expiry(request, pk: int):
    from users.actions import lifecycle
    from users.forms import ExpiryForm

    account = access.get_account_to_manage(request.user, pk)
    form = ExpiryForm(request.POST, account=account)
    if not form.is_valid():
        return _lifecycle_page(request, account, status=400, expiry_form=form)
    return _queued(
        request,
        lifecycle.request_action(
            account, "set_password_expiry", form.job_params(), actor=request.user
        ),
    )


@require_POST
@login_required
def account_rotate(request, pk: int):
    from users.actions import lifecycle

    account = access.get_account_to_manage(request.user, pk)
    if account.kind != DatabaseAccount.Kind.FUNCTIONAL:
        messages.error(request, "Only functional accounts have their password rotated here.")
        return redirect("users:account_lifecycle", pk=account.pk)
    job = lifecycle.request_action(account, "rotate_password", {}, actor=request.user)
    return redirect("users:account_password", pk=job.pk)


@login_required
def account_create(request):
    from users.actions import lifecycle
    from users.forms import CreateAccountForm

    require_perm(request.user, "users.manage_account")
    if request.method == "POST":
        form = CreateAccountForm(request.POST)
        if form.is_valid():
            cluster = form.cleaned_data["cluster"]
            job = lifecycle.request_create(cluster, form.job_params(), actor=request.user)
            return redirect("users:account_password", pk=job.pk)
        return render(request, "users/account_create.html", {"form": form}, status=400)
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    initial = {"cluster": request.GET.get("cluster")} if request.GET.get("cluster") else None
    return render(
        request, "users/account_create.html", {"form": CreateAccountForm(initial=initial)}
    )


@never_cache
@login_required
def account_password(request, pk: int):
    """The one-time password of a create or rotate job, to the person who asked: GET shows the
    job's state and a button; POST shows the password once (a prefetch cannot spend it)."""
    from users.actions import lifecycle

    job = access.get_password_job_for_user(request.user, pk)
    context = {"job": job, "password": None, "error": ""}
    if request.method == "POST":
        try:
            context["password"] = lifecycle.reveal_password(job, actor=request.user)
        except lifecycle.PasswordGone as e:
            context["error"] = str(e)
        job.refresh_from_db()
    elif request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    context["available"] = "password_token" in (job.result or {})
    return render(request, "users/account_password.html", context)
