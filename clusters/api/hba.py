"""pg_hba.conf API: the same form, actions and jobs as the pages.

- GET    /api/hba/{cluster id}/                      rules (secret values masked), lint, drift,
                                                     versions
- POST   /api/hba/{cluster id}/rules/                add a rule (optional 1-based "position")
- PUT    /api/hba/{cluster id}/rules/{rule id}/      change a rule (every field; options as
                                                     typed in pg_hba.conf, masked secrets kept)
- DELETE /api/hba/{cluster id}/rules/{rule id}/      delete a rule
- POST   /api/hba/{cluster id}/move/                 {"rule": id, "position": n (1-based)}
- GET    /api/hba/{cluster id}/preview/              each node's file and its diff to the node
- POST   /api/hba/{cluster id}/apply/                {"confirm": cluster name}: 202 with the job
- POST   /api/hba/{cluster id}/rollback/             {"version": n, "confirm": name}: 202
- POST   /api/hba/{cluster id}/read/                 {"adopt": false|true}: 202 (true imports)
- GET    /api/hba/{cluster id}/versions/{number}/    a version: each node's file and errors

A refused change is a 400 naming the fields (nothing saved, nothing sent). Gates as the pages:
clusters.view_hbaruleset, change_hbaruleset, apply_hbaruleset.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from clusters import access, hba, hbalint
from clusters.actions import hba as actions
from clusters.actions import hba_apply as apply_actions
from clusters.actions import hba_live as live_actions
from clusters.api import router
from clusters.forms.hba import HbaRuleForm, masked_options
from clusters.models import HbaVersion
from console.models import AuditEntry

API = AuditEntry.Source.API


class RuleSerializer(serializers.Serializer):
    target = serializers.ChoiceField(choices=hba.TARGETS, default="both")
    conn_type = serializers.CharField()
    database = serializers.CharField(default="all")
    user = serializers.CharField(default="all")
    address = serializers.CharField(required=False, allow_blank=True, default="")
    netmask = serializers.CharField(required=False, allow_blank=True, default="")
    method = serializers.CharField()
    options = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text='As in pg_hba.conf: ldapserver=x ldapbasedn="dc=a"',
    )  # fmt: skip
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    position = serializers.IntegerField(required=False, min_value=1, help_text="1-based; new rules")


class MoveSerializer(serializers.Serializer):
    rule = serializers.IntegerField()
    position = serializers.IntegerField(min_value=1)


class ConfirmSerializer(serializers.Serializer):
    confirm = serializers.CharField(help_text="The cluster's name, typed to confirm.")


class RollbackSerializer(ConfirmSerializer):
    version = serializers.IntegerField(min_value=1)


class ReadSerializer(serializers.Serializer):
    adopt = serializers.BooleanField(default=False)


def _rule_json(obj) -> dict:
    rule = obj.as_rule()
    return {
        "id": obj.pk, "position": obj.position + 1, "target": rule.target,
        "conn_type": rule.conn_type, "database": rule.database, "user": rule.user,
        "address": rule.address, "netmask": rule.netmask, "method": rule.method,
        "options": masked_options(rule), "comment": rule.comment,
        "line": hba.mask_secrets(rule.line()),
    }  # fmt: skip


def _version_json(version: HbaVersion, files: bool = False) -> dict:
    data = {
        "number": version.number, "kind": version.kind, "rolled_back_to": version.rolled_back_to,
        "status": version.status, "actor": version.actor_name, "created": version.created,
        "job": version.job_id,
        "nodes": [
            {"node": nv.node.name, "status": nv.status, "path": nv.path, "detail": nv.detail,
             "errors": nv.errors, "backup": nv.backup_path, "sha256": nv.sha256,
             **({"text": hba.mask_secrets(nv.text)} if files else {})}
            for nv in version.node_files.select_related("node")
        ],
    }  # fmt: skip
    return data


def _refused(e: actions.HbaRefused) -> ValidationError:
    return ValidationError(e.errors or {"detail": [str(e)]})


class HbaViewSet(viewsets.ViewSet):
    """A PostgreSQL cluster's pg_hba.conf, managed by the console."""

    lookup_value_regex = r"\d+"

    def _cluster(self, request, pk, perm="view"):
        return access.get_cluster_for_hba(request.user, int(pk), perm=perm)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def retrieve(self, request, pk=None):
        cluster = self._cluster(request, pk)
        ruleset = actions.ruleset_of(cluster)
        objects = list(ruleset.rules.all())
        drift, between = live_actions.drift_report(cluster)
        return Response({
            "cluster": cluster.name, "header": ruleset.header, "footer": ruleset.footer,
            "rules": [_rule_json(o) for o in objects],
            "lint": [{"rule": f.position + 1, "code": f.code, "message": f.message}
                     for f in hbalint.lint([o.as_rule() for o in objects])],
            "drift": [{"node": d.node.name, "in_sync": d.in_sync, "changes": d.changes,
                       "read_at": d.live.read_at if d.live else None,
                       "error": d.live.error if d.live else ""} for d in drift],
            "between_nodes": between,
            "versions": [_version_json(v) for v in ruleset.versions.all()[:20]],
        })  # fmt: skip

    def _save(self, request, pk, rule_id=None):
        cluster = self._cluster(request, pk, perm="change")
        ruleset = actions.ruleset_of(cluster)
        previous = None
        if rule_id is not None:
            try:
                previous = actions.rule_in(ruleset, int(rule_id)).as_rule()
            except actions.HbaRefused:
                raise NotFound("No such rule.") from None
        body = RuleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        form = HbaRuleForm({k: v for k, v in data.items() if k != "position"}, previous=previous)
        if not form.is_valid():
            raise ValidationError(form.errors)
        position = data.get("position")
        try:
            obj = actions.save_rule(
                ruleset, form.cleaned_data["rule"], rule_id=int(rule_id) if rule_id else None,
                position=position - 1 if position else None, actor=request.user, source=API,
            )  # fmt: skip
        except actions.HbaRefused as e:
            raise _refused(e) from None
        return Response(_rule_json(obj), status=status.HTTP_200_OK if rule_id else 201)

    @extend_schema(request=RuleSerializer, responses={201: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], url_path="rules")
    def add_rule(self, request, pk=None):
        return self._save(request, pk)

    @extend_schema(request=RuleSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["put", "delete"], url_path=r"rules/(?P<rule_id>\d+)")
    def rule(self, request, pk=None, rule_id=None):
        if request.method == "PUT":
            return self._save(request, pk, rule_id)
        cluster = self._cluster(request, pk, perm="change")
        try:
            actions.delete_rule(actions.ruleset_of(cluster), int(rule_id), actor=request.user,
                                source=API)  # fmt: skip
        except actions.HbaRefused:
            raise NotFound("No such rule.") from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=MoveSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        cluster = self._cluster(request, pk, perm="change")
        body = MoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ruleset = actions.ruleset_of(cluster)
        try:
            actions.move_rule(ruleset, body.validated_data["rule"],
                              body.validated_data["position"] - 1, actor=request.user,
                              source=API)  # fmt: skip
        except actions.HbaRefused as e:
            raise NotFound(str(e)) from None
        return Response({"rules": [_rule_json(o) for o in ruleset.rules.all()]})

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        cluster = self._cluster(request, pk)
        drift, _ = live_actions.drift_report(cluster)
        return Response({"nodes": [
            {"node": d.node.name, "role": d.node.role, "path": d.live.path if d.live else "",
             "text": hba.mask_secrets(d.expected), "diff": d.diff,
             "read": d.live is not None and not d.live.error}
            for d in drift
        ]})  # fmt: skip

    def _job(self, job, **extra) -> Response:
        return Response({"job": job.pk, **extra}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ConfirmSerializer, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        cluster = self._cluster(request, pk, perm="apply")
        body = ConfirmSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            job = apply_actions.start_apply(cluster, confirm=body.validated_data["confirm"],
                                            actor=request.user, source=API)  # fmt: skip
        except actions.HbaRefused as e:
            raise _refused(e) from None
        return self._job(job, version=job.params["version"])

    @extend_schema(request=RollbackSerializer, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        cluster = self._cluster(request, pk, perm="apply")
        body = RollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            job = apply_actions.start_rollback(
                cluster, body.validated_data["version"], confirm=body.validated_data["confirm"],
                actor=request.user, source=API,
            )  # fmt: skip
        except actions.HbaRefused as e:
            raise _refused(e) from None
        return self._job(job, version=job.params["version"])

    @extend_schema(request=ReadSerializer, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        body = ReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        adopt = body.validated_data["adopt"]
        cluster = self._cluster(request, pk, perm="change")
        try:
            job = live_actions.start_read(cluster, adopt=adopt, actor=request.user, source=API)
        except actions.HbaRefused as e:
            raise _refused(e) from None
        return self._job(job)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>\d+)")
    def version(self, request, pk=None, number=None):
        cluster = self._cluster(request, pk)
        version = actions.ruleset_of(cluster).versions.filter(number=int(number)).first()
        if version is None:
            raise NotFound("No such version.")
        return Response(_version_json(version, files=True))


router.register("hba", HbaViewSet, basename="hba")
