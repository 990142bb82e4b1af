"""What the HA pages (and the API) call: prechecks, and starting an operation as a job.

An operation is confirmed by typing the cluster's name; `start_operation` refuses anything else
(HaRefused names the field, nothing queued) and otherwise queues one job and writes its
ha.requested entry in the same transaction. The job runs the operation's precheck again before
it changes anything (a precheck that fails changes nothing), so a page left open cannot act on
a topology that has moved since.
"""

from django.db import transaction
from django.http import Http404

from clusters import access
from clusters.ha import prechecks
from clusters.models import HaSetup, Node
from console import audit, jobs
from console.access import require_perm
from console.errors import ExpectedFailure
from console.models import AuditEntry, Job

OPERATIONS = {
    "switchover": ("clusters.ha_switchover", "Switchover of {cluster} to {node}"),
    "failover": ("clusters.ha_failover", "Failover of {cluster}"),
    "rebuild": ("clusters.ha_rebuild", "Rebuild {node} as a standby in {cluster}"),
    "pcp": ("clusters.ha_pcp", "pgpool-II: {pcp} {node} in {cluster}"),
    "deploy": ("clusters.ha_deploy", "Deploy pgpool-II for {cluster}"),
}
JOB_KINDS = tuple(kind for kind, _ in OPERATIONS.values())


class HaRefused(ExpectedFailure):
    """A request refused before anything was queued; `errors` names the fields."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.errors = errors or {}


def get_setup_for_user(user, pk: int) -> HaSetup:
    """The HA setup of PostgreSQL cluster `pk` for a user with clusters.failover_cluster; 404
    when the cluster has none (the access gate of the HA pages)."""
    require_perm(user, "clusters.failover_cluster")
    cluster = access.get_cluster_for_user(user, pk)
    try:
        return HaSetup.objects.select_related("cluster", "pgpool").get(cluster=cluster)
    except HaSetup.DoesNotExist:
        raise Http404("pgpool-II is not deployed by the console for this cluster") from None


def precheck(setup: HaSetup, operation: str, node: Node | None = None, pcp: str = "", *,
             actor) -> prechecks.Precheck:  # fmt: skip
    """Run the operation's precheck (reads only, each audited by the executor)."""
    if operation == "switchover":
        return prechecks.switchover_precheck(setup, node, actor=actor)
    if operation == "failover":
        return prechecks.failover_precheck(setup, node, actor=actor)
    if operation == "rebuild":
        return prechecks.rebuild_precheck(setup, node, actor=actor)
    if operation == "pcp":
        return prechecks.pcp_precheck(setup, pcp, node, actor=actor)
    if operation == "deploy":
        return deploy_precheck(setup)
    raise HaRefused(f"unknown operation {operation!r}", {"operation": ["Unknown operation."]})


def deploy_precheck(setup: HaSetup) -> prechecks.Precheck:
    check = prechecks.Precheck("deploy")
    check.add("backends recorded", bool(setup.backends), "none")
    stored = bool(setup.pcp_credential_id and setup.replication_credential_id)
    check.add("PCP and replication credentials stored", stored, "missing")
    check.plan = [
        f"write pgpool.conf, pool_hba.conf, pool_passwd (AES), pcp.conf and the failover "
        f"scripts in {setup.directory} on {setup.pgpool.name}",
        "restart pgpool-II there; verify that writes reach the primary and reads a standby",
    ]
    return check


def start_operation(
    setup: HaSetup, operation: str, *, node: Node | None = None, pcp: str = "",
    confirm: str, actor, source: str = AuditEntry.Source.UI,
) -> Job:  # fmt: skip
    """Queue the operation as a job once the cluster's name was typed; audited (ha.requested)."""
    if operation not in OPERATIONS:
        raise HaRefused(f"unknown operation {operation!r}", {"operation": ["Unknown operation."]})
    cluster = setup.cluster
    if (confirm or "").strip() != cluster.name:
        raise HaRefused(
            "Nothing was started: type the cluster's name to confirm.",
            {"confirm": [f"Type the cluster's name, {cluster.name}, to confirm."]},
        )
    if node is not None and setup.backend_of(node) is None:
        raise HaRefused(
            f"{node.name} is not a backend of this cluster", {"node": ["Not a backend."]}
        )
    if operation == "pcp" and pcp not in prechecks.PCP_OPERATIONS:
        raise HaRefused("unknown PCP operation", {"pcp": ["Choose detach, attach or promote."]})
    kind, title = OPERATIONS[operation]
    title = title.format(cluster=cluster.name, node=node.name if node else "", pcp=pcp)
    params = {"setup": setup.pk, "node": node.pk if node else None, "pcp": pcp}
    with transaction.atomic():
        job = jobs.enqueue(kind, title, user=actor, source=source, params=params, target=cluster)
        output = f"{title} (job {job.pk})"
        audit.append(audit.HA_REQUESTED, actor=actor, source=source, output=output,
                     target=f"cluster:{cluster.name}")  # fmt: skip
    return job
