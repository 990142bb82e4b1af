"""Pages of the console app. (Being written.)"""

from django.http import HttpResponse


def _todo(request, *args, **kwargs):
    return HttpResponse("not yet", status=501)


home = healthz = audit_list = audit_export = audit_verify = _todo
job_list = job_detail = job_live = _todo
