"""Pages of PostgreSQL provisioning: a new cluster on a bare host, a standby for a provisioned
cluster, and the re-run of a failed provisioning job (which resumes at its failed step).
DBAs only (clusters.add_cluster). Each view validates, calls one action, redirects to the job."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from clusters import access
from clusters.forms.provision import ProvisionForm, StandbyForm
from clusters.models import PgProvision
from clusters.provision.pg import rerun_provision, start_provision
from clusters.provision.standby import start_add_standby
from console.access import get_job_for_user, require_perm
from console.errors import ExpectedFailure

PERM = "clusters.add_cluster"


@require_http_methods(["GET", "POST"])
@login_required
def provision_start(request):
    require_perm(request.user, PERM)
    form = ProvisionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = start_provision(data["host"], form.spec(), data["admin_password"],
                                  actor=request.user)  # fmt: skip
        except ExpectedFailure as e:
            form.add_error(None, f"Nothing was started: {e}")
        else:
            return redirect("job_detail", pk=job.pk)
    return render(request, "clusters/provision_form.html", {"form": form})


@require_http_methods(["GET", "POST"])
@login_required
def standby_add(request, pk: int):
    require_perm(request.user, PERM)
    cluster = access.get_cluster_for_user(request.user, pk)
    if not PgProvision.objects.filter(cluster=cluster).exists():
        raise Http404("This cluster was not provisioned by the console")
    form = StandbyForm(request.POST or None, cluster=cluster)
    if request.method == "POST" and form.is_valid():
        try:
            job = start_add_standby(cluster, form.cleaned_data["host"], form.spec(),
                                    actor=request.user)  # fmt: skip
        except ExpectedFailure as e:
            form.add_error(None, f"Nothing was started: {e}")
        else:
            return redirect("job_detail", pk=job.pk)
    context = {"form": form, "cluster": cluster, "primary": cluster.nodes.filter(role="primary")}
    return render(request, "clusters/provision_standby.html", context)


@require_POST
@login_required
def provision_rerun(request, pk: int):
    require_perm(request.user, PERM)
    job = get_job_for_user(request.user, pk)
    try:
        new = rerun_provision(job, actor=request.user)
    except ExpectedFailure as e:
        messages.error(request, str(e))
        return redirect("job_detail", pk=job.pk)
    messages.success(request, f"Job #{new.pk} resumes job #{job.pk} at its failed step.")
    return redirect("job_detail", pk=new.pk)
