"""Pages of the users app: offboarding (issue 6 part 4; see users/views/__init__.py).

Start and undo a person's offboarding from their page (typed confirmation; a refusal renders the
person's page again with the error), the offboarding box that htmx polls while the job runs, the
evidence as PDF or CSV (audited), and the list of offboardings.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from console import audit
from console.models import AuditEntry
from users import access, evidence
from users.actions import offboarding
from users.forms import OffboardConfirmForm
from users.views.people import LIST_LIMIT, _hold, _offboarding_context


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
