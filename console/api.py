"""REST API of the console app, mounted at /api/.

Read-only endpoints for jobs and audit entries behind the same gates as the pages (console.access),
the OpenAPI schema, and a token endpoint. Token and session authentication both work; the token
endpoint goes through django.contrib.auth.authenticate() with the request, so failed attempts are
counted and locked out by django-axes like the sign-in page.
"""

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_ip_address
from django.urls import include, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from console import access, actions
from console.auth import request_id_of
from console.forms import AuditFilterForm, JobFilterForm
from console.models import AuditEntry, Job, JobLogLine

LOG_TAIL = 200


class NewestFirstPagination(CursorPagination):
    """Cursor (keyset) paging on the primary key: stable and cheap on millions of rows."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = [
            "id", "created", "actor_name", "source", "action", "target", "node", "command",
            "status", "exit_code", "output", "error", "duration_ms", "request_id", "job_id",
            "intent_id", "prev_hash", "hash",
        ]  # fmt: skip
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = [
            "id", "kind", "title", "status", "user_name", "source", "created", "started",
            "finished", "progress", "params", "result", "error", "target_type", "target_id",
            "target_name",
        ]  # fmt: skip
        read_only_fields = fields


class JobLogLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobLogLine
        fields = ["id", "created", "level", "message"]
        read_only_fields = fields


class JobDetailSerializer(JobSerializer):
    log = serializers.SerializerMethodField(
        help_text=f"The last {LOG_TAIL} log lines, oldest first."
    )

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "log"]
        read_only_fields = fields

    def get_log(self, job: Job) -> list[dict]:
        tail = list(job.log_lines.order_by("-id")[:LOG_TAIL])[::-1]
        return JobLogLineSerializer(tail, many=True).data


def _filter_parameters(form_class, since_until: bool = False) -> list[OpenApiParameter]:
    params = [
        OpenApiParameter(name, OpenApiTypes.STR, description=str(field.help_text or field.label))
        for name, field in form_class.base_fields.items()
        if name not in ("since", "until")
    ]
    if since_until:
        params += [
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="From (ISO 8601)."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="To (ISO 8601)."),
        ]
    return params


def _filtered(form_class, params, qs):
    form = form_class(params)
    if not form.is_valid():
        raise ValidationError(form.errors)
    return form.filter(qs)


@extend_schema_view(list=extend_schema(parameters=_filter_parameters(AuditFilterForm, True)))
class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """Audit entries, newest first; needs the console.view_auditentry permission."""

    serializer_class = AuditEntrySerializer
    pagination_class = NewestFirstPagination
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AuditEntry.objects.none()
        entries = access.audit_entries_for_user(self.request.user)
        if self.action == "list":
            entries = _filtered(AuditFilterForm, self.request.query_params, entries)
        return entries


@extend_schema_view(list=extend_schema(parameters=_filter_parameters(JobFilterForm)))
class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Jobs, newest first: every job with console.view_all_jobs, else the caller's own."""

    pagination_class = NewestFirstPagination
    lookup_value_regex = r"\d+"

    def get_serializer_class(self):
        return JobDetailSerializer if self.action == "retrieve" else JobSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Job.objects.none()
        return _filtered(
            JobFilterForm, self.request.query_params, access.jobs_for_user(self.request.user)
        )

    def get_object(self) -> Job:
        return access.get_job_for_user(self.request.user, int(self.kwargs["pk"]))


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()


class ObtainTokenView(ObtainAuthToken):
    """POST username and password, get the user's API token (created if new); all audited.

    Sign-in goes through authenticate() with the request, so django-axes counts failures and
    refuses a locked-out name (429) before any password is checked, as on the sign-in page.
    """

    authentication_classes = ()  # credentials come in the body; no session, so no CSRF

    @extend_schema(request=ObtainAuthToken.serializer_class, responses=TokenResponseSerializer)
    def post(self, request, *args, **kwargs):
        data = request.data if hasattr(request.data, "get") else {}
        name = str(data.get("username") or "").strip()
        locked_before = not AxesProxyHandler.is_allowed(request, {"username": name})
        serializer = self.get_serializer(data=request.data)
        valid = serializer.is_valid()
        client = f"client ip: {get_client_ip_address(request) or 'unknown'}"
        request_id = request_id_of(request)
        if valid:
            token, _ = actions.issue_api_token(
                serializer.validated_data["user"], client=client, request_id=request_id
            )
            return Response({"token": token.key})
        if locked_before or getattr(request, "axes_locked_out", False):
            actions.record_token_refused(
                name, locked_out=True, client=client, request_id=request_id
            )
            return Response(
                {"detail": "Too many failed sign-ins; try again later."},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        if name and data.get("password"):  # an empty field is not a sign-in attempt
            actions.record_token_refused(
                name,
                locked_out=False,
                client=client,
                request_id=request_id,
                reason="invalid_login",
            )
        raise ValidationError(serializer.errors)


router = SimpleRouter()
router.register("jobs", JobViewSet, basename="job")
router.register("audit", AuditEntryViewSet, basename="auditentry")

urlpatterns = [
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]),
        name="api_schema",
    ),
    path("token/", ObtainTokenView.as_view(), name="api_token"),
    path("", include(router.urls)),
]
