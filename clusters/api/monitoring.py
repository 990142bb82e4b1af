"""Read-only monitoring API (/api/clusters/, /api/nodes/, /api/samples/, /api/alerts/) and the
Prometheus endpoint (/metrics, mounted by console.urls).

Behind the same gates as the pages (clusters.access): clusters.view_cluster, view_node (nodes,
samples, /metrics) and view_alert. Lists are paged by cursor with a constant number of queries
per page: a cluster page reads its clusters, their nodes' NodeStatus rows (clusters.health) and
their firing alert counts, three queries whatever the page holds. Filters are validated by small
forms; a bad value is a 400 naming the parameter, and no query runs.
"""

from django import forms
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from clusters import access, health, metrics
from clusters.api import router
from clusters.models import Alert, Cluster, Node, NodeStatus, Sample, Severity

MAX_PAGE_SIZE = 1000


def _paging(ordering, size: int = 100) -> type[CursorPagination]:
    attrs = {"ordering": ordering, "page_size": size, "page_size_query_param": "page_size",
             "max_page_size": MAX_PAGE_SIZE}  # fmt: skip
    return type("Pagination", (CursorPagination,), attrs)


# --- filters ------------------------------------------------------------------------------------


def _optional_choice(choices) -> forms.ChoiceField:
    return forms.ChoiceField(required=False, choices=[("", "any"), *choices])


class ClusterFilterForm(forms.Form):
    environment = forms.CharField(required=False, max_length=64, help_text="Environment name.")
    kind = _optional_choice(Cluster.Kind.choices)

    def filter(self, qs: QuerySet) -> QuerySet:
        data = self.cleaned_data
        if data["environment"]:
            qs = qs.filter(environment__name=data["environment"])
        if data["kind"]:
            qs = qs.filter(kind=data["kind"])
        return qs


class NodeFilterForm(forms.Form):
    cluster = forms.IntegerField(required=False, min_value=1, help_text="Cluster id.")
    service = _optional_choice(Node.Service.choices)
    state = _optional_choice(NodeStatus.State.choices)

    def filter(self, qs: QuerySet) -> QuerySet:
        data = self.cleaned_data
        if data["cluster"]:
            qs = qs.filter(cluster_id=data["cluster"])
        if data["service"]:
            qs = qs.filter(service=data["service"])
        if data["state"] == NodeStatus.State.UNKNOWN:  # never collected has no status row
            qs = qs.filter(Q(status__isnull=True) | Q(status__state=NodeStatus.State.UNKNOWN))
        elif data["state"]:
            qs = qs.filter(status__state=data["state"])
        return qs


class SampleFilterForm(forms.Form):
    node = forms.IntegerField(
        min_value=1,
        help_text="Node id (required: samples are read one node at a time).",
        error_messages={"required": "Give the node's id: samples are read one node at a time."},
    )
    metric = forms.RegexField(
        required=False, max_length=64, regex=r"^[a-z0-9_.]+$",
        help_text='Metric name, e.g. "up", "replication.replay_lag_bytes".',
        error_messages={"invalid": "A metric name has only a-z, 0-9, _ and dots."},
    )  # fmt: skip
    since = forms.DateTimeField(required=False, help_text="From (ISO 8601), inclusive.")
    until = forms.DateTimeField(required=False, help_text="To (ISO 8601), inclusive.")

    def clean(self) -> dict:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "“until” must not be before “since”.")
        return data

    def filter(self, qs: QuerySet) -> QuerySet:
        data = self.cleaned_data
        if data["metric"]:
            qs = qs.filter(metric=data["metric"])
        if data["since"]:
            qs = qs.filter(ts__gte=data["since"])
        if data["until"]:
            qs = qs.filter(ts__lte=data["until"])
        return qs


class AlertFilterForm(forms.Form):
    cluster = forms.IntegerField(required=False, min_value=1, help_text="Cluster id.")
    state = _optional_choice(Alert.State.choices)
    severity = _optional_choice(Severity.choices)
    rule = forms.SlugField(required=False, max_length=64, help_text='Rule key, e.g. "node_down".')

    def filter(self, qs: QuerySet) -> QuerySet:
        data = self.cleaned_data
        if data["cluster"]:
            qs = qs.filter(cluster_id=data["cluster"])
        if data["state"]:
            qs = qs.filter(state=data["state"])
        if data["severity"]:
            qs = qs.filter(severity=data["severity"])
        if data["rule"]:
            qs = qs.filter(rule__key=data["rule"])
        return qs


def _cleaned(form_class, params) -> forms.Form:
    form = form_class(params)
    if not form.is_valid():
        raise ValidationError(form.errors)
    return form


def _parameters(form_class) -> list[OpenApiParameter]:
    types = {forms.IntegerField: OpenApiTypes.INT, forms.DateTimeField: OpenApiTypes.DATETIME}
    return [
        OpenApiParameter(
            name,
            types.get(type(field), OpenApiTypes.STR),
            required=field.required,
            description=str(field.help_text or ""),
            enum=[v for v, _ in field.choices if v]
            if isinstance(field, forms.ChoiceField)
            else None,
        )
        for name, field in form_class.base_fields.items()
    ]


# --- serializers --------------------------------------------------------------------------------


class AlertCountsSerializer(serializers.Serializer):
    warning = serializers.IntegerField()
    critical = serializers.IntegerField()


class ClusterNodeSerializer(serializers.ModelSerializer):
    state = serializers.CharField(source="status.state", default=NodeStatus.State.UNKNOWN,
                                  help_text="up, down or unknown (never collected).")  # fmt: skip

    class Meta:
        model = Node
        fields = ["id", "name", "service", "role", "state"]
        read_only_fields = fields


class ClusterSerializer(serializers.ModelSerializer):
    environment = serializers.CharField(source="environment.name")
    state = serializers.CharField(
        source="health.state", help_text="healthy, degraded, down, or unknown (not collected)."
    )
    reasons = serializers.ListField(
        child=serializers.CharField(), source="health.reasons", help_text="Why, for people."
    )
    standbys = serializers.IntegerField(source="health.standbys")
    standbys_in_sync = serializers.IntegerField(source="health.standbys_in_sync")
    worst_lag_bytes = serializers.IntegerField(
        source="health.worst_lag_bytes", allow_null=True,
        help_text="The largest standby replay lag in bytes (null when no standby reports one).",
    )  # fmt: skip
    alerts_firing = AlertCountsSerializer(help_text="Open (firing) alerts by severity.")

    class Meta:
        model = Cluster
        fields = [
            "id", "name", "kind", "environment", "description", "created", "state", "reasons",
            "standbys", "standbys_in_sync", "worst_lag_bytes", "alerts_firing",
        ]  # fmt: skip
        read_only_fields = fields


class ClusterDetailSerializer(ClusterSerializer):
    nodes = ClusterNodeSerializer(many=True, source="node_list")

    class Meta(ClusterSerializer.Meta):
        fields = [*ClusterSerializer.Meta.fields, "nodes"]
        read_only_fields = fields


class NodeStatusSerializer(serializers.ModelSerializer):
    class Meta:
        model = NodeStatus
        fields = [
            "state", "polled", "poll_ms", "reachable", "error", "role_seen", "in_recovery",
            "replication_state", "sync_state", "replay_lag_bytes", "disk_used_percent",
            "log_errors", "log_fatals", "log_panics", "log_auth_failures", "log_error", "details",
        ]  # fmt: skip
        read_only_fields = fields


class NodeSerializer(serializers.ModelSerializer):
    cluster_name = serializers.CharField(source="cluster.name", default=None)
    environment = serializers.CharField(source="cluster.environment.name", default=None)
    status = NodeStatusSerializer(allow_null=True, help_text="The latest collection (null: never).")

    class Meta:
        model = Node
        fields = [
            "id", "name", "cluster", "cluster_name", "environment", "service", "role", "address",
            "ssh_port", "db_port", "version", "data_directory", "log_path", "timeline",
            "last_discovered", "status",
        ]  # fmt: skip
        read_only_fields = fields


class SampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Sample
        fields = ["id", "node", "metric", "ts", "value"]
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer):
    rule = serializers.CharField(source="rule.key")
    rule_title = serializers.CharField(source="rule.title")
    cluster_name = serializers.CharField(source="cluster.name")
    node_name = serializers.CharField(source="node.name", default=None)

    class Meta:
        model = Alert
        fields = [
            "id", "rule", "rule_title", "cluster", "cluster_name", "node", "node_name", "subject",
            "state", "severity", "value", "message", "first_seen", "last_seen", "raised",
            "cleared", "silenced", "notified",
        ]  # fmt: skip
        read_only_fields = fields


# --- viewsets -----------------------------------------------------------------------------------


def _with_health(clusters: list[Cluster]) -> list[Cluster]:
    """Attach `health` and `alerts_firing` to each cluster: two queries for the whole list."""
    healths = health.health_of_clusters(clusters)
    counts = (
        Alert.objects.filter(cluster__in=clusters, state=Alert.State.FIRING)
        .values_list("cluster_id", "severity")
        .annotate(n=Count("id"))
    )
    firing = {(cluster_id, severity): n for cluster_id, severity, n in counts}
    for cluster in clusters:
        cluster.health = healths[cluster.pk]
        cluster.alerts_firing = {s: firing.get((cluster.pk, s), 0) for s in Severity.values}
    return clusters


@extend_schema_view(list=extend_schema(parameters=_parameters(ClusterFilterForm)))
class ClusterViewSet(viewsets.ReadOnlyModelViewSet):
    """Clusters with their state (clusters.health), standbys in sync, worst replication lag and
    firing alert counts; needs clusters.view_cluster. The detail adds the nodes."""

    pagination_class = _paging("name")
    lookup_value_regex = r"\d+"

    def get_serializer_class(self):
        return ClusterDetailSerializer if self.action == "retrieve" else ClusterSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Cluster.objects.none()
        clusters = access.clusters_for_user(self.request.user)
        return _cleaned(ClusterFilterForm, self.request.query_params).filter(clusters)

    def paginate_queryset(self, queryset):
        return _with_health(super().paginate_queryset(queryset))

    def get_object(self) -> Cluster:
        cluster = access.get_cluster_for_user(self.request.user, int(self.kwargs["pk"]))
        cluster.node_list = list(cluster.nodes.select_related("status").order_by("name"))
        return _with_health([cluster])[0]


@extend_schema_view(list=extend_schema(parameters=_parameters(NodeFilterForm)))
class NodeViewSet(viewsets.ReadOnlyModelViewSet):
    """Registered nodes (bare hosts included) with their latest collection; needs
    clusters.view_node."""

    serializer_class = NodeSerializer
    pagination_class = _paging("name")
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Node.objects.none()
        nodes = access.nodes_for_user(self.request.user)
        if self.action == "list":
            nodes = _cleaned(NodeFilterForm, self.request.query_params).filter(nodes)
        return nodes

    def get_object(self) -> Node:
        return access.get_node_for_user(self.request.user, int(self.kwargs["pk"]))


@extend_schema_view(list=extend_schema(parameters=_parameters(SampleFilterForm)))
class SampleViewSet(viewsets.GenericViewSet):
    """Raw samples of one node (kept CLUSTERS_SAMPLE_RAW_DAYS days), newest first, paged by
    cursor on (ts, id); needs clusters.view_node."""

    serializer_class = SampleSerializer
    pagination_class = _paging(("-ts", "-id"))

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Sample.objects.none()
        form = _cleaned(SampleFilterForm, self.request.query_params)
        pk = form.cleaned_data["node"]
        try:
            samples = access.samples_of_node_for_user(self.request.user, pk)
        except Http404:
            raise ValidationError({"node": [f"No node has id {pk}."]}) from None
        return form.filter(samples)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


@extend_schema_view(list=extend_schema(parameters=_parameters(AlertFilterForm)))
class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Alerts, newest first (open and cleared: the history); needs clusters.view_alert."""

    serializer_class = AlertSerializer
    pagination_class = _paging(("-first_seen", "-id"))
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Alert.objects.none()
        alerts = access.alerts_for_user(self.request.user)
        if self.action == "list":
            alerts = _cleaned(AlertFilterForm, self.request.query_params).filter(alerts)
        return alerts


router.register("clusters", ClusterViewSet, basename="cluster")
router.register("nodes", NodeViewSet, basename="node")
router.register("samples", SampleViewSet, basename="sample")
router.register("alerts", AlertViewSet, basename="alert")


# --- /metrics -----------------------------------------------------------------------------------


class _AnyAccept(BaseContentNegotiation):
    """Errors are JSON whatever the scraper accepts (Prometheus asks for text formats only)."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MetricsView(APIView):
    """GET /metrics: the fleet in the Prometheus text format (or OpenMetrics when asked), for a
    token ("Authorization: Token <key>") or a session with clusters.view_node. 401 (with
    WWW-Authenticate) without credentials, 403 without the permission."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = _AnyAccept

    @extend_schema(exclude=True)
    def get(self, request):
        access.require_metrics_access(request.user)
        body, content_type = metrics.render(request.headers.get("Accept"))
        return HttpResponse(body, content_type=content_type)
