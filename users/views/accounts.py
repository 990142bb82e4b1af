"""Pages of the users app: accounts (see users/views/__init__.py).

The account inventory of every server (list, import) and one account's page with its
classification: link to a person, mark functional, send back to review. The lifecycle pages
(users/views/lifecycle.py) extend the account page's context.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from clusters.models import Cluster
from console import jobs
from console.access import require_perm
from users import access, actions
from users.forms import AccountFilterForm, FunctionalAccountForm, LinkAccountForm
from users.models import AccountImport, DatabaseAccount
from users.views.people import LIST_LIMIT, _hold


@require_GET
@login_required
def account_list(request):
    accounts = access.accounts_for_user(request.user)
    form = AccountFilterForm(request.GET or None)
    cluster = None
    if form.is_valid():
        data = form.cleaned_data
        if q := data["q"].strip():
            accounts = accounts.filter(
                Q(name__icontains=q) | Q(person__uid__icontains=q) | Q(owner_team__icontains=q)
            )
        if cluster := data["cluster"]:
            accounts = accounts.filter(cluster=cluster)
        if data["kind"]:
            accounts = accounts.filter(kind=data["kind"])
        if not data["gone"]:
            accounts = accounts.filter(gone_at__isnull=True)
    else:
        accounts = accounts.filter(gone_at__isnull=True)
    rows = list(accounts.order_by("cluster__name", "name", "host")[: LIST_LIMIT + 1])
    clusters = [cluster] if cluster else Cluster.objects.all()
    imports = [AccountImport.objects.filter(cluster=c).first() for c in clusters]
    context = {
        "form": form,
        "accounts": rows[:LIST_LIMIT],
        "more": len(rows) > LIST_LIMIT,
        "limit": LIST_LIMIT,
        "cluster": cluster,
        "imports": [i for i in imports if i is not None],
        "orphans": access.accounts_for_user(request.user)
        .filter(kind=DatabaseAccount.Kind.UNCLASSIFIED, gone_at__isnull=True)
        .count(),
        "can_import": access.can_import(request.user),
        "hold": _hold(request.user),
    }
    return render(request, "users/databaseaccount_list.html", context)


@require_POST
@login_required
def accounts_import(request):
    require_perm(request.user, "users.import_accounts")
    job = jobs.enqueue("users.import_accounts", "Import database accounts", user=request.user)
    messages.success(request, "The account import is running.")
    return redirect("job_detail", pk=job.pk)


def _account_context(request, account, **forms):
    context = {
        "account": account,
        "can_classify": access.can_classify(request.user),
        "link_form": forms.get("link_form")
        or LinkAccountForm(initial={"person": account.person.uid if account.person else ""}),
        "functional_form": forms.get("functional_form")
        or FunctionalAccountForm(
            initial={
                "owner_person": account.owner_person.uid if account.owner_person else "",
                "owner_team": account.owner_team,
                "purpose": account.purpose,
            }
        ),
    }
    return context


@require_GET
@login_required
def account_detail(request, pk: int):
    account = access.get_account_for_user(request.user, pk)
    return render(request, "users/databaseaccount_detail.html", _account_context(request, account))


@require_POST
@login_required
def account_link(request, pk: int):
    account = access.get_account_to_classify(request.user, pk)
    form = LinkAccountForm(request.POST)
    if not form.is_valid():
        context = _account_context(request, account, link_form=form)
        return render(request, "users/databaseaccount_detail.html", context, status=400)
    person = form.cleaned_data["person"]
    if actions.link_account(account, person, actor=request.user):
        messages.success(request, f"{account.login} is now a personal account of {person.uid}.")
    return redirect("users:account_detail", pk=account.pk)


@require_POST
@login_required
def account_functional(request, pk: int):
    account = access.get_account_to_classify(request.user, pk)
    form = FunctionalAccountForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            changed = actions.mark_account_functional(
                account, owner_person=data["owner_person"], owner_team=data["owner_team"],
                purpose=data["purpose"], actor=request.user,
            )  # fmt: skip
        except actions.ClassificationRefused as e:
            form.add_error(e.field, str(e))
        else:
            if changed:
                messages.success(request, f"{account.login} is now a functional account.")
            return redirect("users:account_detail", pk=account.pk)
    context = _account_context(request, account, functional_form=form)
    return render(request, "users/databaseaccount_detail.html", context, status=400)


@require_POST
@login_required
def account_unclassify(request, pk: int):
    account = access.get_account_to_classify(request.user, pk)
    if actions.unclassify_account(account, actor=request.user):
        messages.success(request, f"{account.login} is back among the accounts to review.")
    return redirect("users:account_detail", pk=account.pk)
