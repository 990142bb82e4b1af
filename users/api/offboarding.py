"""API of the users app: offboarding (issue 6 part 4; see users/api/__init__.py).

The same gates, form and actions as the person page. POST /api/people/<uid>/offboard/ starts it
(202 with the queued job; 200 with the person's current run unchanged when there is one), GET
/api/people/<uid>/offboarding/ reads the run and its steps, POST /api/people/<uid>/offboard/undo/
unlocks what it locked. A wrong or missing typed confirmation is a 400 naming `confirmation`;
nothing changes.
"""

from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from console.models import AuditEntry
from users import access
from users.models import OffboardingRun, OffboardingStep


class OffboardingStepSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")

    class Meta:
        model = OffboardingStep
        fields = ["id", "account", "kind", "cluster_name", "engine", "login", "result",
                  "locked_before", "locked_at", "sessions_ended", "verified_at", "servers",
                  "evidence", "error", "attempts", "unlocked_at"]  # fmt: skip
        read_only_fields = fields


class OffboardingRunSerializer(serializers.ModelSerializer):
    person = serializers.CharField(source="person.uid")
    job_url = serializers.SerializerMethodField()
    steps = OffboardingStepSerializer(many=True, read_only=True)

    class Meta:
        model = OffboardingRun
        fields = ["id", "person", "state", "reason", "source", "requested_by_name",
                  "requested_at", "approval_required", "approved_by_name", "approved_at", "job",
                  "job_url", "attempts", "last_attempt_at", "next_retry_at", "completed_at",
                  "undone_by_name", "undone_at", "steps"]  # fmt: skip
        read_only_fields = fields

    def get_job_url(self, run) -> str | None:
        return reverse("job_detail", args=[run.job_id]) if run.job_id else None


def _run_body(run) -> dict:
    run = OffboardingRun.objects.select_related("person").prefetch_related("steps").get(pk=run.pk)
    return OffboardingRunSerializer(run).data


def _confirmation(request, person) -> tuple[str | None, Response | None]:
    """The typed confirmation of the request, or the 400 answer naming the field."""
    from users.forms import OffboardConfirmForm

    form = OffboardConfirmForm(request.data)
    if not form.is_valid():
        return None, Response(form.errors, status=status.HTTP_400_BAD_REQUEST)
    return form.cleaned_data["confirmation"], None


def _refusal(error) -> Response:
    if error.field:
        return Response({error.field: [str(error)]}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)


class PersonOffboardingView(APIView):
    """GET: the person's current offboarding run (else their latest) with its steps; `run` is
    null when they were never offboarded. Readable by whoever may see the person's page."""

    http_method_names = ["get", "options"]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, uid: str):
        from users.actions import offboarding

        person = access.get_person_for_user(request.user, uid)
        run = offboarding.current_run(person) or person.offboardings.first()
        return Response({"person": person.uid, "state": person.state,
                         "run": _run_body(run) if run else None})  # fmt: skip


# A POST that names the person and carries their uid typed as the confirmation.
_CONFIRMED_POST = extend_schema(
    request=OpenApiTypes.OBJECT,
    responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT,
               409: OpenApiTypes.OBJECT},
)  # fmt: skip


def _confirmed(request, uid: str):
    """(the person the user may offboard, the typed confirmation, None) or (…, a 400 answer)."""
    person = access.get_person_to_offboard(request.user, uid)
    confirmation, bad = _confirmation(request, person)
    return person, confirmation, bad


class PersonOffboardView(APIView):
    """POST {"confirmation": "<uid>"}: offboard the person (helpdesk and DBAs)."""

    http_method_names = ["post", "options"]

    @_CONFIRMED_POST
    def post(self, request, uid: str):
        from users.actions import offboarding

        person, confirmation, bad = _confirmed(request, uid)
        if bad is not None:
            return bad
        before = offboarding.current_run(person)
        try:
            run = offboarding.start_offboarding(
                person, actor=request.user, confirmation=confirmation, source=AuditEntry.Source.API
            )
        except offboarding.OffboardingRefused as e:
            return _refusal(e)
        unchanged = before is not None and before.state != OffboardingRun.State.AWAITING_APPROVAL
        return Response(
            _run_body(run), status=status.HTTP_200_OK if unchanged else status.HTTP_202_ACCEPTED
        )


class PersonOffboardUndoView(APIView):
    """POST {"confirmation": "<uid>"}: undo the person's offboarding (unlock what it locked)."""

    http_method_names = ["post", "options"]

    @_CONFIRMED_POST
    def post(self, request, uid: str):
        from users.actions import offboarding

        person, confirmation, bad = _confirmed(request, uid)
        if bad is not None:
            return bad
        run = offboarding.current_run(person)
        if run is None:
            return Response({"detail": f"{person.uid} has no offboarding to undo."},
                            status=status.HTTP_409_CONFLICT)  # fmt: skip
        try:
            run = offboarding.undo_offboarding(
                run, actor=request.user, confirmation=confirmation, source=AuditEntry.Source.API
            )
        except offboarding.OffboardingRefused as e:
            return _refusal(e)
        return Response(_run_body(run))


urlpatterns = [
    path(
        "people/<str:uid>/offboarding/",
        PersonOffboardingView.as_view(),
        name="users-api-person-offboarding",
    ),
    path(
        "people/<str:uid>/offboard/", PersonOffboardView.as_view(), name="users-api-person-offboard"
    ),
    path(
        "people/<str:uid>/offboard/undo/",
        PersonOffboardUndoView.as_view(),
        name="users-api-person-offboard-undo",
    ),
]
