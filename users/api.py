"""API of the users app: /api/people/, /api/accounts/, /api/directory-syncs/ (read-only), the
account lifecycle actions and offboarding (POST, each behind the same gate as its page).

Behind the same gates as the pages (users.access). Lists are paged by cursor; filters are
validated by small forms, a bad value is a 400 naming the parameter.
"""

from django import forms
from django.db.models import Q
from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from console.access import require_perm
from console.models import AuditEntry
from users import access
from users.models import (
    DatabaseAccount,
    DirectorySync,
    OffboardingRun,
    OffboardingStep,
    Person,
)


def _paging(ordering: str) -> type[CursorPagination]:
    attrs = {"ordering": ordering, "page_size": 100, "page_size_query_param": "page_size",
             "max_page_size": 1000}  # fmt: skip
    return type("Pagination", (CursorPagination,), attrs)


class AccountSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    cluster_kind = serializers.CharField(source="cluster.kind")
    node = serializers.CharField(source="node.name", default=None)
    person = serializers.CharField(source="person.uid", default=None)
    owner_person = serializers.CharField(source="owner_person.uid", default=None)
    can_login = serializers.BooleanField(read_only=True)

    class Meta:
        model = DatabaseAccount
        fields = [
            "id", "cluster", "cluster_kind", "node", "name", "host", "can_login", "locked",
            "expired", "superuser", "member_of", "valid_until", "password_changed_at", "plugin",
            "attributes", "comment", "kind", "linked_by", "person", "owner_person", "owner_team",
            "purpose", "first_seen", "last_seen", "gone_at",
        ]  # fmt: skip
        read_only_fields = fields


class PersonSerializer(serializers.ModelSerializer):
    class Meta:
        model = Person
        fields = ["id", "uid", "name", "mail", "groups", "state", "left_at", "left_reason",
                  "first_seen", "last_seen"]  # fmt: skip
        read_only_fields = fields


class PersonDetailSerializer(PersonSerializer):
    accounts = serializers.SerializerMethodField()
    owned_accounts = serializers.SerializerMethodField()

    class Meta(PersonSerializer.Meta):
        fields = [*PersonSerializer.Meta.fields, "accounts", "owned_accounts"]
        read_only_fields = fields

    def _accounts(self, **filters):
        user = self.context["request"].user
        return AccountSerializer(access.accounts_for_user(user).filter(**filters), many=True).data

    def get_accounts(self, person) -> list[dict]:
        return self._accounts(person=person)

    def get_owned_accounts(self, person) -> list[dict]:
        return self._accounts(owner_person=person)


class DirectorySyncSerializer(serializers.ModelSerializer):
    class Meta:
        model = DirectorySync
        fields = ["id", "started", "finished", "status", "hold_kind", "reason", "source", "seen",
                  "created", "updated", "left", "returned", "would_leave", "resolved_by_name",
                  "resolved_at"]  # fmt: skip
        read_only_fields = fields


class PersonFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200)
    state = forms.ChoiceField(required=False, choices=[("", "any"), *Person.State.choices])


class AccountFilterForm(forms.Form):
    cluster = forms.IntegerField(required=False, min_value=1, help_text="Cluster id.")
    kind = forms.ChoiceField(required=False, choices=[("", "any"), *DatabaseAccount.Kind.choices])
    person = forms.CharField(required=False, max_length=255, help_text="Person uid.")
    gone = forms.BooleanField(required=False)


def _filtered(form_class, request):
    form = form_class(request.query_params)
    if not form.is_valid():
        raise ValidationError(form.errors)
    return form.cleaned_data


class PersonViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Person.objects.none()  # for the schema; get_queryset asks the gate
    lookup_field = "uid"
    lookup_value_regex = "[^/]+"
    pagination_class = _paging("uid")

    def get_serializer_class(self):
        return PersonDetailSerializer if self.action == "retrieve" else PersonSerializer

    def get_queryset(self):
        people = access.people_for_user(self.request.user)
        data = _filtered(PersonFilterForm, self.request)
        if data["q"]:
            q = data["q"]
            people = people.filter(
                Q(uid__icontains=q) | Q(name__icontains=q) | Q(mail__icontains=q)
            )
        if data["state"]:
            people = people.filter(state=data["state"])
        return people


class AccountViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = DatabaseAccount.objects.none()  # for the schema; get_queryset asks the gate
    serializer_class = AccountSerializer
    pagination_class = _paging("id")

    def get_queryset(self):
        accounts = access.accounts_for_user(self.request.user)
        if self.action == "retrieve":
            return accounts
        data = _filtered(AccountFilterForm, self.request)
        if data["cluster"]:
            accounts = accounts.filter(cluster_id=data["cluster"])
        if data["kind"]:
            accounts = accounts.filter(kind=data["kind"])
        if data["person"]:
            accounts = accounts.filter(person__uid=data["person"])
        if not data["gone"]:
            accounts = accounts.filter(gone_at__isnull=True)
        return accounts


class DirectorySyncViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = DirectorySync.objects.none()  # for the schema; get_queryset asks the gate
    serializer_class = DirectorySyncSerializer
    pagination_class = _paging("-id")

    def get_queryset(self):
        return access.syncs_for_user(self.request.user)


router = SimpleRouter()
router.register("people", PersonViewSet, basename="person")
router.register("accounts", AccountViewSet, basename="account")
router.register("directory-syncs", DirectorySyncViewSet, basename="directorysync")


# --- Account lifecycle (issue 6 part 3): the same forms, gates and actions as the pages. Each
# POST queues one job and answers 202 with it; the one-time password of a create or rotate job
# is fetched once by its requester from /api/account-passwords/<job>/ (POST).


# The request bodies are the pages' forms (validated by them; errors answer 400 by field), so the
# schema describes them as JSON objects rather than duplicating each form as a serializer.
_JOB_REQUEST = extend_schema(
    request=OpenApiTypes.OBJECT,
    responses={202: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    description="Queues the job; answers 202 with the job's id and URL, 400 naming bad fields.",
)


class _LifecycleView(APIView):
    """POST only. Subclasses name the gate, the form and how the form becomes a job."""

    http_method_names = ["post", "options"]
    gate = staticmethod(access.get_account_to_manage)
    form_class = None
    action = ""

    def params(self, form) -> tuple[str, dict]:
        return self.action, {}

    @_JOB_REQUEST
    def post(self, request, pk: int):
        from users.actions import lifecycle

        account = self.gate(request.user, pk)
        form = None
        if self.form_class is not None:
            form = _form(self.form_class, request.data, account)
            if not form.is_valid():
                return Response(form.errors, status=status.HTTP_400_BAD_REQUEST)
        action, params = self.params(form)
        job = lifecycle.request_action(
            account, action, params, actor=request.user, source=AuditEntry.Source.API
        )
        return _accepted(job)


def _form(form_class, data, account):
    """The page's form over the request's data (JSON or form-encoded)."""
    kwargs = {} if form_class.__name__ == "RoleForm" else {"account": account}
    return form_class(data, **kwargs)


def _accepted(job) -> Response:
    body = {
        "job": job.pk,
        "kind": job.kind,
        "status": job.status,
        "url": reverse("job_detail", args=[job.pk]),
    }
    if job.kind in ("users.create_account", "users.rotate_password"):
        body["password_url"] = reverse("users-api-account-password", args=[job.pk])
    return Response(body, status=status.HTTP_202_ACCEPTED)


class AccountLockView(_LifecycleView):
    gate = staticmethod(access.get_account_to_lock)
    action = "lock_account"

    @property
    def form_class(self):
        from users.forms import TypedConfirmForm

        return TypedConfirmForm


class AccountUnlockView(_LifecycleView):
    gate = staticmethod(access.get_account_to_lock)
    action = "unlock_account"


class AccountDropView(_LifecycleView):
    @property
    def form_class(self):
        from users.forms import DropAccountForm

        return DropAccountForm

    def params(self, form):
        return "drop_account", {"reassign_to": form.cleaned_data["reassign_to"]}


class AccountRoleView(_LifecycleView):
    @property
    def form_class(self):
        from users.forms import RoleForm

        return RoleForm

    def params(self, form):
        data = form.cleaned_data
        return f"{data['operation']}_role", {"role": data["role"]}


class AccountPrivilegesView(_LifecycleView):
    @property
    def form_class(self):
        from users.forms import PrivilegesForm

        return PrivilegesForm

    def params(self, form):
        data = form.cleaned_data
        return f"{data['operation']}_privileges", {
            "privileges": data["privileges"],
            "database": data["database"],
            "schema": data.get("schema") or "public",
        }


class AccountExpiryView(_LifecycleView):
    @property
    def form_class(self):
        from users.forms import ExpiryForm

        return ExpiryForm

    def params(self, form):
        return "set_password_expiry", form.job_params()


class AccountRotateView(_LifecycleView):
    action = "rotate_password"

    @_JOB_REQUEST
    def post(self, request, pk: int):
        account = self.gate(request.user, pk)
        if account.kind != DatabaseAccount.Kind.FUNCTIONAL:
            return Response(
                {"account": ["Only functional accounts have their password rotated."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return super().post(request, pk)


class AccountCreateView(APIView):
    http_method_names = ["post", "options"]

    @_JOB_REQUEST
    def post(self, request):
        from users.actions import lifecycle
        from users.forms import CreateAccountForm

        require_perm(request.user, "users.manage_account")
        form = CreateAccountForm(request.data)
        if not form.is_valid():
            return Response(form.errors, status=status.HTTP_400_BAD_REQUEST)
        job = lifecycle.request_create(
            form.cleaned_data["cluster"],
            form.job_params(),
            actor=request.user,
            source=AuditEntry.Source.API,
        )
        return _accepted(job)


class AccountPasswordView(APIView):
    """POST: the one-time password of your create or rotate job, once; then 410 Gone."""

    http_method_names = ["post", "options"]

    @extend_schema(
        request=None,
        responses={200: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT, 410: OpenApiTypes.OBJECT},
    )
    def post(self, request, pk: int):
        from users.actions import lifecycle

        job = access.get_password_job_for_user(request.user, pk)
        if job.status != "succeeded":
            return Response(
                {"status": job.status, "error": job.error}, status=status.HTTP_409_CONFLICT
            )
        try:
            password = lifecycle.reveal_password(
                job, actor=request.user, source=AuditEntry.Source.API
            )
        except lifecycle.PasswordGone as e:
            return Response({"detail": str(e)}, status=status.HTTP_410_GONE)
        response = Response({"login": job.result.get("login"), "password": password})
        response["Cache-Control"] = "no-store"
        return response


# --- Offboarding (issue 6 part 4): the same gates, form and actions as the person page. POST
# /api/people/<uid>/offboard/ starts it (202 with the queued job; 200 with the person's current
# run unchanged when there is one), GET /api/people/<uid>/offboarding/ reads the run and its
# steps, POST /api/people/<uid>/offboard/undo/ unlocks what it locked. A wrong or missing typed
# confirmation is a 400 naming `confirmation`; nothing changes.


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


class PersonOffboardView(APIView):
    """POST {"confirmation": "<uid>"}: offboard the person (helpdesk and DBAs)."""

    http_method_names = ["post", "options"]

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT,
                   409: OpenApiTypes.OBJECT},
    )  # fmt: skip
    def post(self, request, uid: str):
        from users.actions import offboarding

        person = access.get_person_to_offboard(request.user, uid)
        confirmation, bad = _confirmation(request, person)
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

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT,
                   409: OpenApiTypes.OBJECT},
    )  # fmt: skip
    def post(self, request, uid: str):
        from users.actions import offboarding

        person = access.get_person_to_offboard(request.user, uid)
        confirmation, bad = _confirmation(request, person)
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
    path("accounts/create/", AccountCreateView.as_view(), name="users-api-account-create"),
    path("accounts/<int:pk>/lock/", AccountLockView.as_view(), name="users-api-account-lock"),
    path("accounts/<int:pk>/unlock/", AccountUnlockView.as_view(), name="users-api-account-unlock"),
    path("accounts/<int:pk>/drop/", AccountDropView.as_view(), name="users-api-account-drop"),
    path("accounts/<int:pk>/roles/", AccountRoleView.as_view(), name="users-api-account-roles"),
    path(
        "accounts/<int:pk>/privileges/",
        AccountPrivilegesView.as_view(),
        name="users-api-account-privileges",
    ),
    path("accounts/<int:pk>/expiry/", AccountExpiryView.as_view(), name="users-api-account-expiry"),
    path("accounts/<int:pk>/rotate/", AccountRotateView.as_view(), name="users-api-account-rotate"),
    path(
        "account-passwords/<int:pk>/",
        AccountPasswordView.as_view(),
        name="users-api-account-password",
    ),
    *router.urls,
]
