"""Celery entry points of HA operations: each takes a job id and calls one operation; the beat
task reconciles pgpool-II's failovers and enforces fences. Imported by clusters/tasks.py."""

from celery import shared_task

from clusters.ha import deploy, fence, follow, ops
from clusters.models import HaSetup, Node
from console import jobs
from console.jobs import JobContext


def _args(ctx: JobContext) -> tuple[HaSetup, Node | None]:
    setup = HaSetup.objects.select_related("cluster", "pgpool").get(pk=ctx.job.params["setup"])
    node_id = ctx.job.params.get("node")
    return setup, Node.objects.get(pk=node_id) if node_id else None


@jobs.job_task("clusters.ha_deploy")
def ha_deploy(ctx: JobContext) -> dict:
    setup, _ = _args(ctx)
    return deploy.deploy_pgpool(setup, actor=ctx.user, job=ctx.job, log=ctx.log)


@jobs.job_task("clusters.ha_switchover")
def ha_switchover(ctx: JobContext) -> dict:
    setup, node = _args(ctx)
    return ops.switchover(setup, node, actor=ctx.user, job=ctx.job, log=ctx.log)


@jobs.job_task("clusters.ha_failover")
def ha_failover(ctx: JobContext) -> dict:
    setup, node = _args(ctx)
    return ops.failover(setup, node, actor=ctx.user, job=ctx.job, log=ctx.log)


@jobs.job_task("clusters.ha_rebuild")
def ha_rebuild(ctx: JobContext) -> dict:
    setup, node = _args(ctx)
    return ops.rebuild(setup, node, actor=ctx.user, job=ctx.job, log=ctx.log)


@jobs.job_task("clusters.ha_pcp")
def ha_pcp(ctx: JobContext) -> dict:
    setup, node = _args(ctx)
    text = ops.pcp_operation(setup, ctx.job.params["pcp"], node, actor=ctx.user, job=ctx.job,
                             log=ctx.log)  # fmt: skip
    return {"result": text}


@jobs.job_task(follow.FOLLOW_KIND)
def ha_follow(ctx: JobContext) -> dict:
    """A standby re-pointed at the new primary after a failover (queued by the failover)."""
    setup, node = _args(ctx)
    return follow.follow_primary(setup, node, actor=ctx.user, job=ctx.job, log=ctx.log)


@shared_task(name="clusters.ha_reconcile", ignore_result=True)
def ha_reconcile() -> None:
    """Celery beat (CLUSTERS_HA_RECONCILE_SECONDS): record failovers pgpool-II made by itself,
    keep fenced nodes stopped."""
    fence.reconcile_all()
