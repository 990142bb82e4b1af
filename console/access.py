"""Personas and the access gates of the console app.

Personas are Django groups (dba, helpdesk, manager, auditor), filled by hand or from LDAP groups.
Their permissions are defined here and synced after every migration. Views and API endpoints ask
these gates; they never filter protected models themselves.
"""

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404

from console.models import AuditEntry, Job

# Permissions per persona, "app_label.codename". Later issues extend these lists.
PERSONAS: dict[str, list[str]] = {
    "dba": [
        "console.view_auditentry",
        "console.export_auditentry",
        "console.verify_auditentry",
        "console.view_job",
        "console.view_all_jobs",
        "console.add_job",
        "clusters.view_cluster",
        "clusters.add_cluster",
        "clusters.view_node",
        "clusters.view_alert",
        "clusters.view_alertrule",
        "clusters.change_alertrule",
        "clusters.view_maintenancewindow",
        "clusters.add_maintenancewindow",
        "clusters.change_maintenancewindow",
        "clusters.view_settingchange",
        "clusters.add_settingchange",
    ],
    "helpdesk": ["console.view_job", "console.add_job"],
    "manager": [
        "console.view_job",
        "clusters.view_cluster",
        "clusters.view_node",
        "clusters.view_alert",
        "clusters.view_alertrule",
        "clusters.view_maintenancewindow",
        "clusters.view_settingchange",
    ],
    "auditor": [
        "console.view_auditentry",
        "console.export_auditentry",
        "console.verify_auditentry",
        "console.view_job",
        "console.view_all_jobs",
    ],
}


# People and database accounts (users, issue 6): helpdesk and managers look, DBAs also act.
_PEOPLE_VIEW = ["users.view_person", "users.view_databaseaccount", "users.view_directorysync"]
PERSONAS["dba"] += [*_PEOPLE_VIEW, "users.change_databaseaccount", "users.sync_directory",
                    "users.import_accounts", "users.view_accountimport"]  # fmt: skip
PERSONAS["helpdesk"] += _PEOPLE_VIEW
PERSONAS["manager"] += _PEOPLE_VIEW

# Offboarding (users, issue 6 part 4): the helpdesk and DBAs offboard people (and undo) and
# download the evidence; auditors read people and their accounts and download the evidence.
_OFFBOARDING = ["users.view_offboardingrun", "users.view_offboarding_evidence"]
PERSONAS["dba"] += [*_OFFBOARDING, "users.offboard_person"]
PERSONAS["helpdesk"] += [*_OFFBOARDING, "users.offboard_person"]
PERSONAS["auditor"] += [*_OFFBOARDING, "users.view_person", "users.view_databaseaccount"]
# Account lifecycle (issue 6 part 3): DBAs do all; the helpdesk may lock and unlock personal
# accounts only (users.access.get_account_to_lock), the first step of offboarding and its undo.
PERSONAS["dba"] += ["users.manage_account", "users.lock_account"]
PERSONAS["helpdesk"] += ["users.lock_account"]


# The security baseline (clusters.baseline): DBAs check and fix; managers and auditors read the
# report and its CSV (compliance evidence), and change nothing.
PERSONAS["dba"] += ["clusters.view_baselineresult", "clusters.add_baselinerun",
                    "clusters.fix_baseline"]  # fmt: skip
PERSONAS["manager"] += ["clusters.view_baselineresult"]
PERSONAS["auditor"] += ["clusters.view_baselineresult"]


# pg_hba.conf (clusters.hba): DBAs edit, apply and roll back; managers read the rules, their lint
# and the drift (who may connect from where is theirs to sign off) and change nothing. Others
# see nothing: the rules name users and networks.
PERSONAS["dba"] += ["clusters.view_hbaruleset", "clusters.change_hbaruleset",
                    "clusters.apply_hbaruleset"]  # fmt: skip
PERSONAS["manager"] += ["clusters.view_hbaruleset"]


# Backups (issue 7): DBAs manage catalogs, policies, runs and restores; managers read runs,
# restores and reports; auditors read them as evidence. Neither changes anything.
_BACKUPS_VIEW = ["backups.view_backupcatalog", "backups.view_backuppolicy",
                 "backups.view_backuprun", "backups.view_restorerun"]  # fmt: skip
PERSONAS["dba"] += _BACKUPS_VIEW + [
    f"backups.{verb}_{model}"
    for model in ("backupcatalog", "backuppolicy", "backuprun", "restorerun")
    for verb in ("add", "change")
]
PERSONAS["manager"] += _BACKUPS_VIEW
PERSONAS["auditor"] += _BACKUPS_VIEW
# Backup policies (backups.schedule): DBAs also delete them (a typed confirmation; runs stay).
PERSONAS["dba"] += ["backups.delete_backuppolicy"]
# Backup catalogs (backups.catalog_admin): DBAs delete one no policy, run or restore uses.
PERSONAS["dba"] += ["backups.delete_backupcatalog"]
# Backup assurance (issue 7 part 5): DBAs schedule and start test restores and archive
# checks; managers and auditors read them (the restores are RestoreRuns, read above).
_ASSURANCE_VIEW = ["backups.view_testrestorepolicy", "backups.view_archivecheck"]
PERSONAS["dba"] += _ASSURANCE_VIEW + ["backups.add_testrestorepolicy",
                                      "backups.change_testrestorepolicy",
                                      "backups.delete_testrestorepolicy",
                                      "backups.add_archivecheck"]  # fmt: skip
PERSONAS["manager"] += _ASSURANCE_VIEW
PERSONAS["auditor"] += _ASSURANCE_VIEW


# High availability (clusters.ha): DBAs deploy pgpool-II, switch over, fail over, rebuild and
# use PCP; nobody else sees those pages.
PERSONAS["dba"] += ["clusters.failover_cluster"]


def sync_personas(**_kwargs) -> list[str]:
    """Create the persona groups and set their permissions exactly; audit what changed."""
    from console import audit

    changes = []
    with transaction.atomic():
        for name, perms in PERSONAS.items():
            group, _ = Group.objects.get_or_create(name=name)
            wanted = set()
            for perm in perms:
                app_label, codename = perm.split(".")
                wanted.update(
                    Permission.objects.filter(
                        content_type__app_label=app_label, codename=codename
                    ).values_list("pk", flat=True)
                )
            current = set(group.permissions.values_list("pk", flat=True))
            if wanted != current:
                group.permissions.set(wanted)
                changes.append(name)
                audit.append(
                    audit.AUTH_PERMISSIONS_CHANGED,
                    source=AuditEntry.Source.SYSTEM,
                    target=f"group:{name}",
                    output=", ".join(sorted(perms)),
                )
    return changes


def personas_of(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    names = {g.name for g in user.groups.all()}
    if user.is_superuser:
        names |= set(PERSONAS)
    return names & set(PERSONAS)


def personas_context(request) -> dict:
    user = getattr(request, "user", None)
    return {"personas": personas_of(user) if user is not None else set()}


def require_perm(user, perm: str) -> None:
    if not user.has_perm(perm):
        raise PermissionDenied


def can_view_audit(user) -> bool:
    return user.has_perm("console.view_auditentry")


def audit_entries_for_user(user):
    """The audit entries `user` may read (all of them for auditors and DBAs; none otherwise)."""
    require_perm(user, "console.view_auditentry")
    return AuditEntry.objects.all()


def jobs_for_user(user):
    """Jobs `user` may see: every job with view_all_jobs, else only their own."""
    require_perm(user, "console.view_job")
    jobs = Job.objects.all()
    if not user.has_perm("console.view_all_jobs"):
        jobs = jobs.filter(user=user)
    return jobs


def get_job_for_user(user, pk: int) -> Job:
    try:
        return jobs_for_user(user).get(pk=pk)
    except Job.DoesNotExist:
        raise Http404("No such job") from None
