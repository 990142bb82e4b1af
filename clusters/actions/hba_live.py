"""The nodes' own pg_hba.conf: reading each node's file over SSH (the path from the server's
hba_file setting) into HbaLiveFile, importing the files as the console's rules, the drift
report comparing them with the console's rendering, and queuing the job that reads them
(clusters.hba_read).

Separate from clusters.actions.hba (editing the console's rules) and clusters.actions.hba_apply
(writing the nodes' files) because nothing here changes a node. The executor arguments of every
pg_hba call (_call, _sudo) are here too; applying uses them."""

from dataclasses import dataclass, field

from django.utils import timezone

from clusters import hba, hba_diff
from clusters.actions.hba import (
    HbaRefused,
    active_job,
    hba_nodes,
    render_for,
    replace_rules,
    role_of,
    ruleset_of,
    sha256,
)
from clusters.models import Cluster, HbaLiveFile, HbaRuleSet, Node
from console import audit, jobs
from console.executor import ExecutorError, run_command, run_sql
from console.models import AuditEntry, Job

LABEL = "pg_hba"
TIMEOUT = 15  # seconds, for each command and statement


# --- Reading the nodes' files -------------------------------------------------------------------


def _sudo(node: Node) -> str | None:
    return None if node.ssh_user in ("root", "postgres") else "postgres"


def _call(node: Node, job, actor) -> dict:
    return {"actor": actor, "job": job, "label": LABEL, "timeout": TIMEOUT}


def hba_path(node: Node, *, actor=None, job=None) -> str:
    result = run_sql(node, "clusters:hba-file", **_call(node, job, actor))
    return result.rows[0][0]


def read_file(node: Node, path: str, *, actor=None, job=None) -> str:
    """The file's text over SSH; not kept in the audit entry (ldapbindpasswd may be in it)."""
    result = run_command(node, ["cat", "--", path], sudo_user=_sudo(node), keep_output=False,
                         **_call(node, job, actor))  # fmt: skip
    return result.stdout


def read_live_files(cluster: Cluster, *, actor=None, job=None, log=None) -> list[HbaLiveFile]:
    """Read every PostgreSQL node's pg_hba.conf into HbaLiveFile (the error, if unreadable)."""
    files = []
    for node in hba_nodes(cluster):
        path, text, error = "", "", ""
        try:
            path = hba_path(node, actor=actor, job=job)
            text = read_file(node, path, actor=actor, job=job)
        except ExecutorError as e:
            error = str(e)
        live, _ = HbaLiveFile.objects.update_or_create(node=node, defaults={
            "path": path, "text": text, "sha256": sha256(text) if not error else "",
            "read_at": timezone.now(), "error": error,
        })  # fmt: skip
        if log:
            log(f"{node.name}: {error or f'read {path} ({len(text)} bytes)'}")
        files.append(live)
    return files


def import_live(cluster: Cluster, *, actor=None, job=None, log=None) -> HbaRuleSet:
    """Read the nodes' files and make them the console's rules: rules the primary and the
    (first) standby have in common target both, the others the node they were found on;
    comments come from the primary's file. Refused when a file cannot be read or parsed."""
    read = read_live_files(cluster, actor=actor, job=job, log=log)
    files: dict[str, HbaLiveFile] = {}
    for live in read:  # the primary, then the first standby by name
        files.setdefault(live.node.role, live)
    for live in files.values():
        if live.error:
            raise HbaRefused(f"{live.node.name}: {live.error}; nothing imported")
    primary = files.get(Node.Role.PRIMARY)
    if primary is None:
        raise HbaRefused("the cluster has no PostgreSQL primary to import from")
    parsed = {}
    for role, live in files.items():
        parsed[role] = hba.parse(live.text)
        if parsed[role].errors:
            lines = "; ".join(f"line {e.line}: {e.message}" for e in parsed[role].errors)
            raise HbaRefused(f"{live.node.name}: {live.path} has lines the console cannot read "
                             f"({lines}); nothing imported")  # fmt: skip
    standby = parsed.get(Node.Role.STANDBY)
    rules = hba_diff.merge_nodes(
        parsed[Node.Role.PRIMARY].rules, standby.rules if standby else None
    )
    ruleset = ruleset_of(cluster)
    names = ", ".join(f.node.name for f in read)
    changed = replace_rules(
        ruleset, rules, parsed[Node.Role.PRIMARY].header, parsed[Node.Role.PRIMARY].footer,
        actor=actor, source=AuditEntry.Source.JOB if job else AuditEntry.Source.UI,
        action=audit.HBA_IMPORTED, note=f"imported from {names}",
    )  # fmt: skip
    if log:
        log(f"imported {len(rules)} rules from {names}" if changed else "nothing new to import")
    return ruleset


# --- Drift --------------------------------------------------------------------------------------


@dataclass
class NodeDrift:
    node: Node
    live: HbaLiveFile | None
    expected: str  # the file the console would write
    changes: list[str] = field(default_factory=list)  # rule differences, in words
    diff: str = ""  # unified diff, live -> console, secrets masked
    errors: list[str] = field(default_factory=list)  # lines of the live file not understood

    @property
    def in_sync(self) -> bool:
        return self.live is not None and not self.live.error and not self.changes

    @property
    def layout_only(self) -> bool:
        return self.in_sync and bool(self.diff)


def drift_report(cluster: Cluster) -> tuple[list[NodeDrift], list[str]]:
    """Each node's last read file against the console's rendering for it, and the nodes
    against each other (with what the rule targets make expected)."""
    ruleset = ruleset_of(cluster)
    rules = ruleset.rules_list()
    report, parsed = [], {}
    for node in hba_nodes(cluster):
        expected, _, _ = render_for(rules, ruleset.header, ruleset.footer, node)
        live = HbaLiveFile.objects.filter(node=node).first()
        drift = NodeDrift(node=node, live=live, expected=expected)
        if live is not None and not live.error:
            found = hba.parse(live.text)
            parsed[node] = found.rules
            drift.errors = [f"line {e.line}: {e.message}" for e in found.errors]
            drift.changes = hba_diff.rule_changes(found.rules, hba.for_role(rules, role_of(node)))
            drift.changes += [f"not understood: {e}" for e in drift.errors]
            drift.diff = hba_diff.unified_diff(live.text, expected, f"{node.name} (on the node)",
                                               f"{node.name} (console)")  # fmt: skip
        report.append(drift)
    between = []
    nodes = list(parsed)
    for other in nodes[1:]:
        first = nodes[0]
        found = hba_diff.rule_changes(parsed[first], parsed[other])
        if not found:
            between.append(f"{first.name} and {other.name} have the same rules.")
            continue
        intended = hba_diff.rule_changes(hba.for_role(rules, role_of(first)),
                                         hba.for_role(rules, role_of(other)))  # fmt: skip
        why = ("as the console's targets intend" if found == intended
               else "NOT as the console's targets intend")  # fmt: skip
        between.append(f"{first.name} and {other.name} differ ({why}): "
                       + "; ".join(c.replace("the node", other.name) for c in found))  # fmt: skip
    return report, between


# --- Queuing a read -----------------------------------------------------------------------------


def start_read(cluster: Cluster, *, adopt: bool, actor, source=AuditEntry.Source.UI) -> Job:
    """Queue a read of the nodes' files (drift); with `adopt`, also import them as the rules."""
    if active_job(cluster):
        raise HbaRefused("A pg_hba job of this cluster is already queued or running.")
    what = "Import" if adopt else "Read"
    return jobs.enqueue("clusters.hba_read", f"{what} pg_hba.conf of {cluster.name}",
                        user=actor, source=source, params={"cluster": cluster.pk, "adopt": adopt},
                        target=cluster)  # fmt: skip
