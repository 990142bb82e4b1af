"""Pages of the users app: people, their accounts across the fleet, the directory syncs.

Thin: one gate in users.access, then render, enqueue one job or call one action.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from clusters.models import Cluster
from console import audit, jobs
from console.access import require_perm
from console.models import AuditEntry
from users import access, actions, evidence
from users.actions import offboarding
from users.forms import (
    AccountFilterForm,
    ConfirmSyncForm,
    FunctionalAccountForm,
    LinkAccountForm,
    OffboardConfirmForm,
    PeopleFilterForm,
)
from users.models import AccountImport, DatabaseAccount, Person

LIST_LIMIT = 500


def _hold(user):
    return actions.open_hold() if user.has_perm("users.view_directorysync") else None


@require_GET
@login_required
def person_list(request):
    people = access.people_for_user(request.user)
    form = PeopleFilterForm(request.GET or None)
    if form.is_valid():
        if q := form.cleaned_data["q"].strip():
            people = people.filter(
                Q(uid__icontains=q) | Q(name__icontains=q) | Q(mail__icontains=q)
            )
        if form.cleaned_data["state"]:
            people = people.filter(state=form.cleaned_data["state"])
    context = {
        "form": form,
        "people": list(people.order_by("uid")[: LIST_LIMIT + 1]),
        "limit": LIST_LIMIT,
        "hold": _hold(request.user),
        "can_sync": access.can_sync(request.user),
        "last_sync": access.syncs_for_user(request.user).first()
        if request.user.has_perm("users.view_directorysync")
        else None,
    }
    context["more"] = len(context["people"]) > LIST_LIMIT
    context["people"] = context["people"][:LIST_LIMIT]
    return render(request, "users/person_list.html", context)


@require_GET
@login_required
def person_detail(request, uid: str):
    person = access.get_person_for_user(request.user, uid)
    accounts = access.accounts_for_user(request.user)
    context = {
        "person": person,
        "accounts": list(
            accounts.filter(person=person).order_by("gone_at", "cluster__name", "name")
        ),
        "owned": list(accounts.filter(owner_person=person, gone_at__isnull=True)),
        "team_owned": list(
            accounts.filter(owner_team__in=person.groups, gone_at__isnull=True).exclude(
                owner_person=person
            )
        ),
        "hold": _hold(request.user),
        **_offboarding_context(request.user, person),
    }
    return render(request, "users/person_detail.html", context)


@require_POST
@login_required
def sync_start(request):
    require_perm(request.user, "users.sync_directory")
    job = jobs.enqueue("users.sync_directory", "Sync people from the directory", user=request.user)
    messages.success(request, "The directory sync is running.")
    return redirect("job_detail", pk=job.pk)


@require_GET
@login_required
def sync_list(request):
    syncs = access.syncs_for_user(request.user)[:100]
    return render(request, "users/directorysync_list.html",
                  {"syncs": syncs, "hold": _hold(request.user)})  # fmt: skip


@require_GET
@login_required
def sync_detail(request, pk: int):
    run = access.get_sync_for_user(request.user, pk)
    form = ConfirmSyncForm(expected=len(run.would_leave))
    context = {"run": run, "form": form, "can_sync": access.can_sync(request.user),
               "leaving": Person.objects.filter(uid__in=run.would_leave)}  # fmt: skip
    return render(request, "users/directorysync_detail.html", context)


@require_POST
@login_required
def sync_confirm(request, pk: int):
    run = access.get_sync_to_resolve(request.user, pk)
    form = ConfirmSyncForm(request.POST, expected=len(run.would_leave))
    if form.is_valid():
        try:
            run = actions.confirm_directory_sync(run, actor=request.user)
        except actions.SyncRefused as e:
            messages.error(request, str(e))
        else:
            messages.success(request, f"Directory sync #{run.pk} confirmed and applied.")
        return redirect("users:sync_detail", pk=run.pk)
    context = {"run": run, "form": form, "can_sync": True,
               "leaving": Person.objects.filter(uid__in=run.would_leave)}  # fmt: skip
    return render(request, "users/directorysync_detail.html", context, status=400)


@require_POST
@login_required
def sync_dismiss(request, pk: int):
    run = access.get_sync_to_resolve(request.user, pk)
    actions.dismiss_directory_sync(run, actor=request.user)
    messages.success(request, f"Directory sync #{run.pk} dismissed; nothing was applied.")
    return redirect("users:sync_detail", pk=run.pk)


@require_GET
@login_required
def account_list(request):
    accounts = access.accounts_for_user(request.user)
    form = AccountFilterForm(request.GET or None)
    cluster = None
    if form.is_valid():
        data = form.cleaned_data
        if q := data["q"].strip():
            accounts = accounts.filter(
                Q(name__icontains=q) | Q(person__uid__icontains=q) | Q(owner_team__icontains=q)
            )
        if cluster := data["cluster"]:
            accounts = accounts.filter(cluster=cluster)
        if data["kind"]:
            accounts = accounts.filter(kind=data["kind"])
        if not data["gone"]:
            accounts = accounts.filter(gone_at__isnull=True)
    else:
        accounts = accounts.filter(gone_at__isnull=True)
    rows = list(accounts.order_by("cluster__name", "name", "host")[: LIST_LIMIT + 1])
    clusters = [cluster] if cluster else Cluster.objects.all()
    imports = [AccountImport.objects.filter(cluster=c).first() for c in clusters]
    context = {
        "form": form,
        "accounts": rows[:LIST_LIMIT],
        "more": len(rows) > LIST_LIMIT,
        "limit": LIST_LIMIT,
        "cluster": cluster,
        "imports": [i for i in imports if i is not None],
        "orphans": access.accounts_for_user(request.user)
        .filter(kind=DatabaseAccount.Kind.UNCLASSIFIED, gone_at__isnull=True)
        .count(),
        "can_import": access.can_import(request.user),
        "hold": _hold(request.user),
    }
    return render(request, "users/databaseaccount_list.html", context)


@require_POST
@login_required
def accounts_import(request):
    require_perm(request.user, "users.import_accounts")
    job = jobs.enqueue("users.import_accounts", "Import database accounts", user=request.user)
    messages.success(request, "The account import is running.")
    return redirect("job_detail", pk=job.pk)


def _account_context(request, account, **forms):
    context = {
        "account": account,
        "can_classify": access.can_classify(request.user),
        "link_form": forms.get("link_form")
        or LinkAccountForm(initial={"person": account.person.uid if account.person else ""}),
        "functional_form": forms.get("functional_form")
        or FunctionalAccountForm(
            initial={
                "owner_person": account.owner_person.uid if account.owner_person else "",
                "owner_team": account.owner_team,
                "purpose": account.purpose,
            }
        ),
    }
    return context


@require_GET
@login_required
def account_detail(request, pk: int):
    account = access.get_account_for_user(request.user, pk)
    return render(request, "users/databaseaccount_detail.html", _account_context(request, account))


@require_POST
@login_required
def account_link(request, pk: int):
    account = access.get_account_to_classify(request.user, pk)
    form = LinkAccountForm(request.POST)
    if not form.is_valid():
        context = _account_context(request, account, link_form=form)
        return render(request, "users/databaseaccount_detail.html", context, status=400)
    person = form.cleaned_data["person"]
    if actions.link_account(account, person, actor=request.user):
        messages.success(request, f"{account.login} is now a personal account of {person.uid}.")
    return redirect("users:account_detail", pk=account.pk)


@require_POST
@login_required
def account_functional(request, pk: int):
    account = access.get_account_to_classify(request.user, pk)
    form = FunctionalAccountForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            changed = actions.mark_account_functional(
                account, owner_person=data["owner_person"], owner_team=data["owner_team"],
                purpose=data["purpose"], actor=request.user,
            )  # fmt: skip
        except actions.ClassificationRefused as e:
            form.add_error(e.field, str(e))
        else:
            if changed:
                messages.success(request, f"{account.login} is now a functional account.")
            return redirect("users:account_detail", pk=account.pk)
    context = _account_context(request, account, functional_form=form)
    return render(request, "users/databaseaccount_detail.html", context, status=400)


@require_POST
@login_required
def account_unclassify(request, pk: int):
    account = access.get_account_to_classify(request.user, pk)
    if actions.unclassify_account(account, actor=request.user):
        messages.success(request, f"{account.login} is back among the accounts to review.")
    return redirect("users:account_detail", pk=account.pk)


# --- Offboarding (issue 6 part 4) --------------------------------------------------------------


def _offboarding_context(user, person, **forms) -> dict:
    run = offboarding.current_run(person) or person.offboardings.first()
    return {
        "run": run,
        "steps": list(run.steps.all()) if run else [],
        "can_offboard": access.can_offboard(user),
        "can_evidence": access.can_download_evidence(user),
        "offboard_form": forms.get("offboard_form") or OffboardConfirmForm(prefix="offboard"),
        "undo_form": forms.get("undo_form") or OffboardConfirmForm(prefix="undo"),
    }


@require_GET
@login_required
def person_offboarding(request, uid: str):
    """The offboarding box alone, polled by htmx while the job runs."""
    person = access.get_person_for_user(request.user, uid)
    context = {"person": person, **_offboarding_context(request.user, person)}
    response = render(request, "users/partials/offboarding.html", context)
    run = context["run"]
    if request.headers.get("HX-Request") and run and run.state not in ("requested", "running"):
        response["HX-Refresh"] = "true"  # done: reload the page, its account states changed
    return response


def _refused(request, person, error, *, form_name: str, form):
    form.add_error("confirmation" if error.field == "confirmation" else None, str(error))
    accounts = access.accounts_for_user(request.user)
    context = {
        "person": person,
        "accounts": list(accounts.filter(person=person).order_by("gone_at", "cluster__name")),
        "owned": list(accounts.filter(owner_person=person, gone_at__isnull=True)),
        "team_owned": list(
            accounts.filter(owner_team__in=person.groups, gone_at__isnull=True).exclude(
                owner_person=person
            )
        ),
        "hold": _hold(request.user),
        **_offboarding_context(request.user, person, **{form_name: form}),
    }
    return render(request, "users/person_detail.html", context, status=400)


@require_POST
@login_required
def person_offboard(request, uid: str):
    person = access.get_person_to_offboard(request.user, uid)
    form = OffboardConfirmForm(request.POST, prefix="offboard")
    confirmation = form.cleaned_data["confirmation"] if form.is_valid() else ""
    try:
        run = offboarding.start_offboarding(person, actor=request.user, confirmation=confirmation)
    except offboarding.OffboardingRefused as e:
        return _refused(request, person, e, form_name="offboard_form", form=form)
    messages.success(request, f"Offboarding of {person.uid}: {run.get_state_display()}.")
    return redirect("users:person_detail", uid=person.uid)


@require_POST
@login_required
def person_offboard_undo(request, uid: str):
    person = access.get_person_to_offboard(request.user, uid)
    run = offboarding.current_run(person)
    form = OffboardConfirmForm(request.POST, prefix="undo")
    if run is None:
        messages.error(request, f"{person.uid} has no offboarding to undo.")
        return redirect("users:person_detail", uid=person.uid)
    confirmation = form.cleaned_data["confirmation"] if form.is_valid() else ""
    try:
        offboarding.undo_offboarding(run, actor=request.user, confirmation=confirmation)
    except offboarding.OffboardingRefused as e:
        return _refused(request, person, e, form_name="undo_form", form=form)
    messages.success(request, f"The offboarding of {person.uid} is undone; accounts unlocked.")
    return redirect("users:person_detail", uid=person.uid)


@require_GET
@login_required
def offboarding_evidence(request, uid: str, pk: int, fmt: str):
    run = access.get_offboarding_evidence(request.user, uid, pk)
    now = timezone.now()
    if fmt == "pdf":
        body = evidence.as_pdf(run, generated_by=request.user.get_username(), generated_at=now)
        content_type = "application/pdf"
    else:
        body, content_type = evidence.as_csv(run), "text/csv; charset=utf-8"
    audit.append(audit.OFFBOARDING_EVIDENCE_EXPORTED, actor=request.user,
                 source=AuditEntry.Source.UI, target=f"person:{uid}",
                 output=f"offboarding #{run.pk} evidence as {fmt.upper()}")  # fmt: skip
    response = HttpResponse(body, content_type=content_type)
    name = f"offboarding-{run.pk}-{now:%Y%m%d-%H%M%S}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_GET
@login_required
def offboarding_list(request):
    runs = access.offboardings_for_user(request.user)[:LIST_LIMIT]
    return render(request, "users/offboardingrun_list.html", {"runs": runs})


# --- Account lifecycle (issue 6 part 3): each POST queues one job; the job page shows it run ------


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
