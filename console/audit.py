"""The audit log's action names, and `append()`, the one way an entry is written.

Every action and the executor write their entries through `append(action, ...)`, naming the
action with one of the constants below. The chain itself lives beside this module: its hash
format and verification in console.audit_chain, how an entry is linked at the head (optimistic
inserts, the group commit of a process's threads) in console.audit_writer.
"""

from console.audit_writer import write_entry
from console.models import AuditEntry

# Action names: "<area>.<verb>". Later issues add theirs here, one place for all.
AUTH_LOGIN = "auth.login"
AUTH_LOGIN_FAILED = "auth.login_failed"
AUTH_LOCKED_OUT = "auth.locked_out"
AUTH_LOGOUT = "auth.logout"
AUTH_GROUPS_CHANGED = "auth.groups_changed"
AUTH_PERMISSIONS_CHANGED = "auth.permissions_changed"
AUTH_USER_CHANGED = "auth.user_changed"
AUTH_TOKEN_CREATED = "auth.token_created"
AUDIT_VERIFY = "audit.verify"
AUDIT_EXPORT = "audit.export"
JOB_REAPED = "job.reaped"
SECRET_CREATED = "secret.created"
SECRET_ROTATED = "secret.rotated"
REMOTE_COMMAND = "remote.command"
REMOTE_SQL = "remote.sql"
CLUSTER_REGISTERED = "cluster.registered"
NODE_REGISTERED = "node.registered"
CLUSTER_DISCOVERED = "cluster.discovered"
CLUSTER_DRIFT = "cluster.drift"
# Alerting (clusters.alerts)
ALERT_RAISED = "alert.raised"
ALERT_CLEARED = "alert.cleared"
ALERT_NOTIFIED = "alert.notified"
ALERT_RULE_CHANGED = "alert.rule_changed"
MAINTENANCE_CREATED = "maintenance.created"
MAINTENANCE_ENDED = "maintenance.ended"
# pg_hba.conf (clusters.hba)
HBA_IMPORTED = "hba.imported"
HBA_CHANGED = "hba.changed"
HBA_APPLIED = "hba.applied"
HBA_APPLY_REFUSED = "hba.apply_refused"
HBA_ROLLED_BACK = "hba.rolled_back"
# Server settings (clusters.settings)
SETTING_CHANGED = "setting.changed"
# Security baseline (clusters.baseline)
BASELINE_CHECKED = "baseline.checked"
BASELINE_FIXED = "baseline.fixed"

# People and database accounts (users)
DIRECTORY_SYNCED = "directory.synced"
DIRECTORY_SYNC_HELD = "directory.sync_held"
DIRECTORY_SYNC_CONFIRMED = "directory.sync_confirmed"
DIRECTORY_SYNC_DISMISSED = "directory.sync_dismissed"
PERSON_SYNCED = "person.synced"
PERSON_LEFT = "person.left"
ACCOUNTS_IMPORTED = "accounts.imported"
ACCOUNT_CLASSIFIED = "account.classified"
ACCOUNT_LINKED = "account.linked"
# Account lifecycle (users.dbops, users.actions.lifecycle)
ACCOUNT_STATE_READ = "account.state_read"
ACCOUNT_CREATED = "account.created"
ACCOUNT_LOCKED = "account.locked"
ACCOUNT_UNLOCKED = "account.unlocked"
ACCOUNT_SESSIONS_TERMINATED = "account.sessions_terminated"
ACCOUNT_GRANTED = "account.granted"
ACCOUNT_REVOKED = "account.revoked"
ACCOUNT_EXPIRY_SET = "account.expiry_set"
ACCOUNT_PASSWORD_ROTATED = "account.password_rotated"
ACCOUNT_PASSWORD_SHOWN = "account.password_shown"
ACCOUNT_OWNED_READ = "account.owned_read"
ACCOUNT_DROPPED = "account.dropped"
# Offboarding (users.actions.offboarding, issue 6 part 4)
OFFBOARDING_REQUESTED = "offboarding.requested"
OFFBOARDING_APPROVED = "offboarding.approved"
OFFBOARDING_ACCOUNT = "offboarding.account"
OFFBOARDING_COMPLETED = "offboarding.completed"
OFFBOARDING_INCOMPLETE = "offboarding.incomplete"
OFFBOARDING_UNDONE = "offboarding.undone"
OFFBOARDING_EVIDENCE_EXPORTED = "offboarding.evidence_exported"
# Backups (backups.actions, issue 7)
BACKUP_COMMAND = "backup.command"
BACKUP_CATALOG_READ = "backup.catalog_read"
# Backup catalogs made and changed by DBAs (backups.catalog_admin, issue 7)
BACKUP_CATALOG_CREATED = "backup.catalog_created"
BACKUP_CATALOG_CHANGED = "backup.catalog_changed"
BACKUP_CATALOG_CHECKED = "backup.catalog_checked"
BACKUP_CATALOG_DELETED = "backup.catalog_deleted"
BACKUP_START = "backup.start"
BACKUP_RESTORE = "backup.restore"
# Backup assurance (backups.assurance, issue 7 part 5): test restores and WAL continuity
BACKUP_TEST_RESTORE_POLICY = "backup.test_restore_policy"
BACKUP_TEST_RESTORE_START = "backup.test_restore_start"
BACKUP_TEST_RESTORE = "backup.test_restore"
BACKUP_ARCHIVE_CHECK = "backup.archive_check"
# Backup policies and their schedules (backups.schedule, issue 7 parts 2, 3, 7)
BACKUP_POLICY_CREATED = "backup.policy_created"
BACKUP_POLICY_CHANGED = "backup.policy_changed"
BACKUP_POLICY_ENABLED = "backup.policy_enabled"
BACKUP_POLICY_DISABLED = "backup.policy_disabled"
BACKUP_POLICY_DELETED = "backup.policy_deleted"
BACKUP_SCHEDULE_SKIPPED = "backup.schedule_skipped"
BACKUP_MISSED = "backup.missed"
BACKUP_FINISHED = "backup.finished"
# The weekly backup report by mail (backups.report_mail, issue 7 part 6)
BACKUP_REPORT_MAILED = "backup.report_mailed"

# High availability (clusters.ha, issue 8 parts 3-4): pgpool-II, switchover, failover, fencing
HA_PGPOOL_DEPLOYED = "ha.pgpool_deployed"
HA_REQUESTED = "ha.requested"
HA_SETUP_SAVED = "ha.setup_saved"  # a DBA created or changed a cluster's HaSetup (the page)
HA_SWITCHOVER = "ha.switchover"
HA_FAILOVER = "ha.failover"
HA_FENCED = "ha.fenced"
HA_REBUILT = "ha.rebuilt"
HA_FOLLOWED = "ha.followed"  # a standby re-pointed at the new primary after a failover
HA_PCP = "ha.pcp"

# MariaDB provisioning on a bare host (clusters.provision.mariadb, issue 8 part 5)
PROVISION_MARIADB_REQUESTED = "provision.mariadb_requested"

# PostgreSQL provisioning on bare hosts (clusters.provision.pg and .standby, issue 8 parts 1-2)
PROVISION_REQUESTED = "provision.requested"
PROVISION_COMMAND = "provision.command"
PROVISION_SQL = "provision.sql"
PROVISION_PG_DONE = "provision.pg_done"
PROVISION_STANDBY_DONE = "provision.standby_done"


def append(
    action: str,
    *,
    actor=None,
    actor_name: str | None = None,
    source: str,
    status: str = AuditEntry.Status.SUCCEEDED,
    target: str = "",
    node: str = "",
    command: str = "",
    exit_code: int | None = None,
    output: str = "",
    error: str = "",
    duration_ms: int | None = None,
    request_id: str = "",
    job_id: int | None = None,
    intent_id: int | None = None,
) -> AuditEntry:
    """Append one entry to the chain and return it.

    Runs in the caller's transaction when there is one (a console change and its entry commit
    together); callers that must survive a rollback, like the executor, call it outside any.
    Secrets must already be redacted from command, output and error.
    """
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if actor_name is None:
        actor_name = actor.get_username() if actor is not None else ""
    entry = AuditEntry(
        actor=actor,
        actor_name=actor_name[:150],
        source=source,
        action=action,
        target=target[:255],
        node=node[:255],
        command=command,
        status=status,
        exit_code=exit_code,
        output=output,
        error=error,
        duration_ms=duration_ms,
        request_id=request_id[:64],
        job_id=job_id,
        intent_id=intent_id,
    )
    write_entry(entry)
    return entry
