"""Pages of the users app: people (see users/views/__init__.py).

The people list and a person's page (with its offboarding box, whose context the offboarding
pages share), and the directory syncs that bring people in: start one, list them, a held sync's
page to confirm or dismiss it. LIST_LIMIT and the banner of a held sync (`_hold`) serve every
list of the app.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from console import jobs
from console.access import require_perm
from users import access, actions
from users.actions import offboarding
from users.forms import ConfirmSyncForm, OffboardConfirmForm, PeopleFilterForm
from users.models import Person

LIST_LIMIT = 500


def _hold(user):
    return actions.open_hold() if user.has_perm("users.view_directorysync") else None


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
