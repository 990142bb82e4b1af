"""Celery entry points of PostgreSQL provisioning (imported by clusters/tasks.py): thin, they
read the job's params and call clusters.provision.pg / .standby."""

from clusters.models import Cluster, Node
from console.jobs import JobContext, job_task

from .pg import PROVISION_KIND, provision_primary, spec_from_params
from .standby import STANDBY_KIND, StandbySpec, add_standby


@job_task(PROVISION_KIND)
def provision_pg(ctx: JobContext) -> dict:
    params = ctx.job.params
    host = Node.objects.select_related("ssh_credential").get(pk=params["host"])
    return provision_primary(ctx, host, spec_from_params(params))


@job_task(STANDBY_KIND)
def add_pg_standby(ctx: JobContext) -> dict:
    params = ctx.job.params
    cluster = Cluster.objects.select_related("environment").get(pk=params["cluster"])
    host = Node.objects.select_related("ssh_credential").get(pk=params["host"])
    return add_standby(ctx, cluster, host, StandbySpec(**params["spec"]))
