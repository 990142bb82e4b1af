"""The MariaDB provisioning page: the form, the recent provisioning jobs, re-running one."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from clusters import access
from clusters.forms.provision_mariadb import MariadbProvisionForm
from clusters.provision.mariadb import (
    KIND,
    ProvisionRefused,
    request_mariadb_provision,
    rerun_mariadb_provision,
)
from console.errors import ExpectedFailure
from console.models import Job

PERMISSION = "clusters.add_cluster"  # the DBA's: provisioning registers a cluster
RECENT = 10


def _hosts(user):
    return access.unassigned_nodes_for_user(user).filter(service="none").order_by("name")


def _page(request, form):
    recent = Job.objects.filter(kind=KIND).order_by("-created")[:RECENT]
    return render(request, "clusters/provision_mariadb.html", {"form": form, "jobs": recent})


@require_http_methods(["GET", "POST"])
@login_required
def provision_mariadb(request):
    access.require_perm(request.user, PERMISSION)
    form = MariadbProvisionForm(request.POST or None, hosts=_hosts(request.user))
    if request.method == "POST" and form.is_valid():
        host, fields, password = form.split()
        try:
            job = request_mariadb_provision(host, fields, password, actor=request.user)
        except ProvisionRefused as e:
            field, sep, message = str(e).partition(": ")
            if sep and field in form.fields:
                form.add_error(field, f"{message} Nothing was started.")
            else:
                form.add_error(None, f"Nothing was started: {e}")
        else:
            return redirect("job_detail", pk=job.pk)
    return _page(request, form)


@require_POST
@login_required
def provision_mariadb_rerun(request, pk: int):
    access.require_perm(request.user, PERMISSION)
    job = get_object_or_404(Job, pk=pk, kind=KIND)
    try:
        new = rerun_mariadb_provision(job, actor=request.user)
    except ExpectedFailure as e:
        messages.error(request, str(e))
        return redirect("job_detail", pk=job.pk)
    messages.success(request, f"Job #{new.pk} re-runs job #{job.pk}: finished steps are skipped.")
    return redirect("job_detail", pk=new.pk)
