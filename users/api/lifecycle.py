"""API of the users app: the account lifecycle (issue 6 part 3; see users/api/__init__.py).

The same forms, gates and actions as the pages. Each POST queues one job and answers 202 with
it; the one-time password of a create or rotate job is fetched once by its requester from
/api/account-passwords/<job>/ (POST).
"""

from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from console.access import require_perm
from console.models import AuditEntry
from users import access
from users.models import DatabaseAccount

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


urlpatterns = [
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
]
