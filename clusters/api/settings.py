"""Server settings API: a node's parameters, changing one (the same form and job as the page),
and the history of changes.

- GET  /api/node-settings/{node id}/            every parameter, read live (audited read)
- POST /api/node-settings/{node id}/change/     {"name", "value"} or {"name", "reset": true},
  optional "scope" ("node" or "cluster") and "confirm_access": 202 with the job, or 400 naming
  the field; the parameter's row is read first (one audited read), nothing is changed on a 400.
- GET  /api/setting-changes/?node=&cluster=&name=   the history, newest first

Gates: clusters.view_settingchange to read, clusters.add_settingchange to change, as the pages.
"""

from django.http import Http404, QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from clusters import access
from clusters.actions.settings import SERVICES, enqueue_change
from clusters.actions.settings_read import list_settings, read_row
from clusters.api import router
from clusters.forms.settings import SettingChangeForm
from clusters.models import SettingChange
from console.executor import ExecutorError
from console.models import AuditEntry


class SettingSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField(help_text="As SHOW prints it (credentials masked).")
    setting = serializers.CharField(help_text="pg_settings.setting, in the unit below.")
    unit = serializers.CharField()
    category = serializers.CharField()
    description = serializers.CharField()
    context = serializers.CharField()
    vartype = serializers.CharField()
    source = serializers.CharField()
    sourcefile = serializers.CharField()
    default = serializers.CharField()
    pending = serializers.BooleanField(help_text="A restart is needed to run the configured value.")
    changed = serializers.BooleanField()
    file_value = serializers.CharField(allow_null=True, help_text="MariaDB: in the option file.")


class SettingChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = SettingChange
        fields = [
            "id", "request_id", "scope", "cluster", "node", "node_name", "engine", "name",
            "operation", "old_value", "new_value", "unit", "context", "config_file",
            "backup_file", "status", "error", "actor_name", "job", "created",
        ]  # fmt: skip
        read_only_fields = fields


def _settings_node(user, pk):
    node = access.get_node_for_user(user, pk)
    if node.service not in SERVICES:
        raise Http404("The console reads no settings from this node")
    return node


class ChangeRequestSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    value = serializers.CharField(required=False, allow_blank=True, max_length=4096)
    reset = serializers.BooleanField(required=False, default=False)
    scope = serializers.ChoiceField(choices=["node", "cluster"], required=False, default="node")
    confirm_access = serializers.BooleanField(required=False, default=False)


NODE_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Node id.")


class NodeSettingsViewSet(viewsets.ViewSet):
    """A node's server parameters (PostgreSQL pg_settings, MariaDB global variables)."""

    lookup_value_regex = r"\d+"

    @extend_schema(parameters=[NODE_ID], responses=SettingSerializer(many=True))
    def retrieve(self, request, pk=None):
        access.require_perm(request.user, "clusters.view_settingchange")
        node = _settings_node(request.user, pk)
        found = list_settings(node, actor=request.user)
        if found.error:
            return Response({"detail": found.error}, status=status.HTTP_502_BAD_GATEWAY)
        return Response(SettingSerializer(found.rows, many=True).data)

    @extend_schema(
        parameters=[NODE_ID], request=ChangeRequestSerializer, responses={202: OpenApiTypes.OBJECT}
    )
    @action(detail=True, methods=["post"])
    def change(self, request, pk=None):
        access.require_perm(request.user, "clusters.add_settingchange")
        node = _settings_node(request.user, pk)
        body = ChangeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            row = read_row(node, data["name"], actor=request.user)
        except ExecutorError as e:
            return Response({"detail": str(e)}, status=status.HTTP_502_BAD_GATEWAY)
        if row is None:
            raise ValidationError(
                {"name": [f"{node.name} has no parameter named {data['name']!r}."]}
            )
        fields = QueryDict(mutable=True)
        fields.update({"value": data.get("value", ""), "scope": data["scope"]})
        if data["reset"]:
            fields["reset"] = "1"
        if data["confirm_access"]:
            fields["confirm_access"] = "on"
        form = SettingChangeForm(fields, node=node, row=row, name=data["name"])
        if not form.is_valid():
            errors = {
                ("non_field_errors" if f == "__all__" else f): e for f, e in form.errors.items()
            }
            raise ValidationError(errors)
        cleaned = form.cleaned_data
        job = enqueue_change(
            node, data["name"], cleaned["value"], cluster_wide=cleaned["scope"] == "cluster",
            confirmed=cleaned["confirm_access"], actor=request.user, source=AuditEntry.Source.API,
        )  # fmt: skip
        return Response({"job": job.pk, "status": job.status}, status=status.HTTP_202_ACCEPTED)


class ChangesPagination(CursorPagination):
    ordering = "-created"
    page_size = 100


@extend_schema(
    parameters=[
        OpenApiParameter("node", int, description="Node id."),
        OpenApiParameter("cluster", int, description="Cluster id."),
        OpenApiParameter("name", str, description="Parameter name."),
    ]
)
class SettingChangeViewSet(viewsets.ReadOnlyModelViewSet):
    """The history of setting changes made through the console, newest first."""

    queryset = SettingChange.objects.all()  # for the schema; get_queryset gates every request
    serializer_class = SettingChangeSerializer
    pagination_class = ChangesPagination

    def get_queryset(self):
        access.require_perm(self.request.user, "clusters.view_settingchange")
        changes = SettingChange.objects.all()
        for key in ("node", "cluster"):
            value = self.request.query_params.get(key)
            if value is not None:
                if not value.isdigit():
                    raise ValidationError({key: "A whole number (an id)."})
                changes = changes.filter(**{key: int(value)})
        if self.request.query_params.get("name"):
            changes = changes.filter(name=self.request.query_params["name"])
        return changes


router.register("node-settings", NodeSettingsViewSet, basename="node-settings")
router.register("setting-changes", SettingChangeViewSet, basename="setting-change")
