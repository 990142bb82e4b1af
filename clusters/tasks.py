"""Celery entry points of the clusters app: thin, they take a job id and call one action."""

from celery import shared_task

from clusters import alerts, collect_store, registration
from clusters import collect as collector
from clusters import status as cluster_status
from clusters.ha import tasks as ha_tasks  # noqa: F401 (its job tasks and beat task)
from clusters.models import Cluster, Node, PendingRegistration
from clusters.provision import mariadb as provision_mariadb  # noqa: F401 (its job task)
from console import jobs
from console.jobs import JobContext, JobFailed
from console.models import AuditEntry, Job


@jobs.job_task("clusters.discover_registration")
def discover_registration(ctx: JobContext) -> dict:
    pending = PendingRegistration.objects.get(pk=ctx.job.params["registration"])
    found = registration.discover_registration(pending, actor=ctx.user, job=ctx.job)
    for warning in found.warnings:
        ctx.log(warning)
    return {"nodes": [f"{n.name} ({n.role})" for n in found.nodes], "warnings": found.warnings}


@jobs.job_task("clusters.rediscover_cluster")
def rediscover_cluster(ctx: JobContext) -> dict:
    cluster = Cluster.objects.filter(pk=ctx.job.params["cluster"]).first()
    if cluster is None:
        raise JobFailed("the cluster no longer exists")
    drifts = registration.rediscover_cluster(
        cluster, actor=ctx.user, job=ctx.job, source=ctx.job.source
    )
    for drift in drifts:
        ctx.log(f"drift: {drift.detail}")
    return {"drifts": [d.detail for d in drifts]}


@shared_task(name="clusters.rediscover_all", ignore_result=True)
def rediscover_all() -> None:
    """Celery beat: enqueue one rediscovery job per cluster."""
    for cluster in Cluster.objects.all():
        jobs.enqueue(
            "clusters.rediscover_cluster", f"Rediscover cluster {cluster.name}",
            user=None, source=AuditEntry.Source.SCHEDULE, params={"cluster": cluster.pk},
            target=cluster,
        )  # fmt: skip


@shared_task(name="clusters.expire_registrations", ignore_result=True)
def expire_registrations() -> None:
    """Celery beat: wipe the secrets of registrations left unfinished."""
    registration.expire_registrations()


@jobs.job_task("clusters.collect")
def collect(ctx: JobContext) -> dict:
    """One monitoring cycle over every registered database and pgpool-II node, each cluster's
    summary row rewritten from what it saw (clusters.status, what the dashboard reads), then the
    alert rules checked on it (clusters.alerts: raise, clear, mail) and the summaries' alert
    counts with them."""
    nodes = Node.objects.exclude(service=Node.Service.NONE)
    result = collector.collect_cycle(nodes, job=ctx.job)
    for name in result.down:
        ctx.log(f"{name}: {result.results_by_name()[name].error}")
    summary = result.summary()
    cluster_status.refresh_cluster_status()  # after the cycle's rows are stored
    try:
        summary["alerts"] = alerts.evaluate(result, job=ctx.job)
    finally:
        cluster_status.refresh_alert_counts()  # even when evaluating stopped half-way
    return summary


@shared_task(name="clusters.collect_all", ignore_result=True)
def collect_all() -> None:
    """Celery beat: enqueue a collection cycle, unless the previous one has not ended (a slow
    cycle is not piled up on)."""
    active = (Job.Status.PENDING, Job.Status.RUNNING)
    if Job.objects.filter(kind="clusters.collect", status__in=active).exists():
        return
    jobs.enqueue(
        "clusters.collect", "Collect monitoring data", user=None,
        source=AuditEntry.Source.SCHEDULE,
    )  # fmt: skip


@shared_task(name="clusters.rollup_samples", ignore_result=True)
def rollup_samples() -> None:
    """Celery beat: roll old samples up into hours and apply retention."""
    collect_store.rollup_and_prune()


# --- Server settings (clusters.actions.settings) ----------------------------------------------


@jobs.job_task("clusters.change_setting")
def change_setting(ctx: JobContext) -> dict:
    """Change (or reset) one server parameter on a node or on every database node of a cluster.

    params: {"node": id} or {"cluster": id}, "name", "value" (None to reset), "confirmed"."""
    from clusters.actions.settings import change_setting as change

    params = ctx.job.params
    if params.get("cluster"):
        target = Cluster.objects.filter(pk=params["cluster"]).first()
    else:
        target = Node.objects.filter(pk=params.get("node")).first()
    if target is None:
        raise JobFailed("the node or cluster no longer exists")
    rows = change(target, params["name"], params.get("value"), actor=ctx.user, job=ctx.job,
                  confirmed=bool(params.get("confirmed")), source=ctx.job.source)  # fmt: skip
    failed = [f"{r.node_name}: {r.error}" for r in rows if r.status == "failed"]
    if failed:
        raise JobFailed("; ".join(failed))
    return {r.node_name: r.get_status_display() for r in rows}


# --- Security baseline (clusters.actions.baseline) --------------------------------------------


@jobs.job_task("clusters.baseline_check")
def baseline_check(ctx: JobContext) -> dict:
    """Baseline checks of the nodes in params["nodes"] (ids), or of every database node."""
    from clusters.actions.baseline import check_node

    nodes = Node.objects.filter(service__in=("postgresql", "mariadb")).order_by("name")
    if "nodes" in ctx.job.params:
        nodes = nodes.filter(pk__in=ctx.job.params["nodes"])
    nodes = list(nodes)
    counts: dict[str, int] = {}
    for done, node in enumerate(nodes, start=1):
        run = check_node(node, actor=ctx.user, job=ctx.job)
        statuses = [r.status for r in run.results.all()]
        for status in statuses:
            counts[status] = counts.get(status, 0) + 1
        failing = [r.check_key for r in run.results.all() if r.status != "pass"]
        ctx.log(f"{node.name}: {statuses.count('pass')}/{len(statuses)} pass"
                + (f"; not passing: {', '.join(failing)}" if failing else ""))  # fmt: skip
        ctx.progress(100 * done // len(nodes))
    return {"nodes": len(nodes), **counts}


@jobs.job_task("clusters.baseline_fix")
def baseline_fix(ctx: JobContext) -> dict:
    """Fix one baseline check on one node: params {"node": id, "check": key}."""
    from clusters.actions.baseline import FixFailed, FixRefused, fix_check

    node = Node.objects.filter(pk=ctx.job.params["node"]).first()
    if node is None:
        raise JobFailed("the node no longer exists")
    try:
        message = fix_check(node, ctx.job.params["check"], actor=ctx.user, job=ctx.job)
    except (FixRefused, FixFailed) as e:
        raise JobFailed(str(e)) from None
    ctx.log(f"{message}; checked again: pass")
    return {"node": node.name, "check": ctx.job.params["check"], "result": message}


@jobs.job_task("clusters.baseline_fix_all")
def baseline_fix_all(ctx: JobContext) -> dict:
    """Fix every failing fixable check on one node: params {"node": id, "confirm": name}."""
    from clusters.actions.baseline import FixRefused, fix_all

    node = Node.objects.filter(pk=ctx.job.params["node"]).first()
    if node is None:
        raise JobFailed("the node no longer exists")
    try:
        result = fix_all(node, actor=ctx.user, confirm=ctx.job.params.get("confirm", ""),
                         job=ctx.job)  # fmt: skip
    except FixRefused as e:
        raise JobFailed(str(e)) from None
    for line in result.text().splitlines():
        ctx.log(line)
    statuses = [r.status for r in result.run.results.all()]
    ctx.log(f"checked again: {statuses.count('pass')}/{len(statuses)} pass")
    if result.refused:
        raise JobFailed("not fixed: " + "; ".join(f"{k}: {m}" for k, m in result.refused.items()))
    return {"node": node.name, "fixed": sorted(result.fixed), "skipped": sorted(result.skipped),
            "pass": statuses.count("pass"), "checks": len(statuses)}  # fmt: skip


@shared_task(name="clusters.baseline_check_all", ignore_result=True)
def baseline_check_all() -> None:
    """Celery beat (every BASELINE_CHECK_HOURS): one job checking every database node, unless
    one is still pending or running; old runs are pruned first."""
    from clusters.actions.baseline import prune_baseline_runs

    prune_baseline_runs()
    active = (Job.Status.PENDING, Job.Status.RUNNING)
    if Job.objects.filter(kind="clusters.baseline_check", status__in=active).exists():
        return
    jobs.enqueue(
        "clusters.baseline_check", "Security baseline of every server", user=None,
        source=AuditEntry.Source.SCHEDULE,
    )  # fmt: skip


# --- pg_hba.conf (clusters.actions.hba) ---------------------------------------------------------


@jobs.job_task("clusters.hba_apply")
def hba_apply(ctx: JobContext) -> dict:
    """Send one pg_hba version to the cluster's nodes (an apply or a rollback)."""
    from clusters.actions import hba_apply as hba_actions
    from clusters.models import HbaVersion

    version = (
        HbaVersion.objects.select_related("ruleset__cluster")
        .filter(ruleset__cluster_id=ctx.job.params["cluster"], number=ctx.job.params["version"])
        .first()
    )
    if version is None:
        raise JobFailed("the version no longer exists")
    result = hba_actions.apply_version(version, job=ctx.job, log=ctx.log)
    if result["status"] != "applied":
        nodes = ", ".join(f"{name}: {status}" for name, status in result["nodes"].items())
        raise JobFailed(f"version {version.number} was {result['status']} ({nodes})")
    return result


@jobs.job_task("clusters.hba_read")
def hba_read(ctx: JobContext) -> dict:
    """Read the nodes' pg_hba.conf (drift); with params adopt, import them as the rules."""
    from clusters.actions import hba_live as hba_actions

    cluster = Cluster.objects.filter(pk=ctx.job.params["cluster"]).first()
    if cluster is None:
        raise JobFailed("the cluster no longer exists")
    if ctx.job.params.get("adopt"):
        ruleset = hba_actions.import_live(cluster, actor=ctx.user, job=ctx.job, log=ctx.log)
        return {"rules": ruleset.rules.count()}
    files = hba_actions.read_live_files(cluster, actor=ctx.user, job=ctx.job, log=ctx.log)
    return {"read": [f.node.name for f in files if not f.error]}


# PostgreSQL provisioning (clusters.provision, issue 8 parts 1-2): its tasks live beside it.
from clusters.provision.tasks import add_pg_standby, provision_pg  # noqa: E402, F401
