"""pg_hba.conf of a cluster: editing the console's rules, importing the nodes' files, applying
a version to the nodes and rolling back to an earlier one.

Edits (save_rule, delete_rule, move_rule, replace_rules) validate every field first
(clusters.hba.validate: HbaRefused names the fields, nothing saved) and write their hba.changed
entry in the same transaction; an edit that changes nothing writes nothing.

Applying a version (`apply_version`, run by the clusters.hba_apply job) goes node by node,
standbys first so the primary is the last to change: read the node's file (the path from the
server's own hba_file setting); if it already is the version's text, nothing is written and the
server is not reloaded (a retry is a no-op). Else: a dated backup copy next to the file, the new
text written to a temporary copy (same owner and mode: `cp -p`) renamed over the file, then
PostgreSQL itself is asked (pg_hba_file_rules reads the file on disk) whether it loads every
line. Only with no error is the server reloaded, and the reload is confirmed by a new session
seeing a later pg_conf_load_time(). With any error the backup is renamed back (and its checksum
checked), the server is not reloaded, and each error is kept with its line and the rule it came
from; the remaining nodes are skipped. Every step is one executor call (audited); each node's
outcome is an hba.applied or hba.apply_refused entry.
"""

import hashlib
import posixpath
import time
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from clusters import hba
from clusters.models import (
    Cluster,
    HbaLiveFile,
    HbaNodeVersion,
    HbaRule,
    HbaRuleSet,
    HbaVersion,
    Node,
)
from clusters.models.hba import rule_to_json
from console import audit, jobs
from console.errors import ExpectedFailure
from console.executor import ExecutorError, run_command, run_sql
from console.models import AuditEntry, Job

LABEL = "pg_hba"
TIMEOUT = 15  # seconds, for each command and statement
RELOAD_DEADLINE = 10.0  # seconds the server is given to reload
JOB_KINDS = ("clusters.hba_apply", "clusters.hba_read")


class HbaRefused(ExpectedFailure):
    """A change was refused before anything was saved or sent; `errors` names the fields."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.errors = errors or {}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ruleset_of(cluster: Cluster) -> HbaRuleSet:
    ruleset, _ = HbaRuleSet.objects.get_or_create(cluster=cluster)
    return ruleset


def hba_nodes(cluster: Cluster) -> list[Node]:
    """The PostgreSQL servers of the cluster, primary first."""
    nodes = cluster.nodes.filter(
        service=Node.Service.POSTGRESQL, role__in=(Node.Role.PRIMARY, Node.Role.STANDBY)
    )
    return sorted(nodes, key=lambda n: (n.role != Node.Role.PRIMARY, n.name))


def role_of(node: Node) -> str:
    return "primary" if node.role == Node.Role.PRIMARY else "standby"


def render_for(rules: list[hba.Rule], header: str, footer: str, node: Node):
    """(text, line numbers, positions in `rules`) of the file `node` gets."""
    wanted = {id(r) for r in hba.for_role(rules, role_of(node))}
    positions = [i for i, r in enumerate(rules) if id(r) in wanted]
    text, lines = hba.render([rules[i] for i in positions], header, footer)
    return text, lines, positions


# --- Editing the console's rules ----------------------------------------------------------------


def _changed(ruleset: HbaRuleSet, output: str, *, actor, source: str, action=audit.HBA_CHANGED):
    ruleset.updated = timezone.now()
    ruleset.updated_by_name = actor.get_username() if actor is not None else ""
    ruleset.save(update_fields=["updated", "updated_by_name"])
    audit.append(action, actor=actor, source=source, target=f"cluster:{ruleset.cluster.name}",
                 output=hba.mask_secrets(output))  # fmt: skip


def _check(rule: hba.Rule) -> hba.Rule:
    errors = hba.validate(rule)
    if errors:
        raise HbaRefused("The rule was not saved: " + _summary(errors), errors)
    return hba.normalise(rule)


def _summary(errors: dict[str, list[str]]) -> str:
    return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())


def _store(rule: hba.Rule, obj: HbaRule) -> None:
    obj.target, obj.conn_type, obj.database, obj.user = (
        rule.target, rule.conn_type, rule.database, rule.user
    )  # fmt: skip
    obj.address, obj.netmask, obj.method = rule.address, rule.netmask, rule.method
    obj.options = [list(o) for o in rule.options]
    obj.comment = rule.comment


def save_rule(
    ruleset: HbaRuleSet, rule: hba.Rule, *, rule_id: int | None = None,
    position: int | None = None, actor, source: str = AuditEntry.Source.UI,
) -> HbaRule:  # fmt: skip
    """Add a rule (at `position`, 0-based, else last) or change rule `rule_id`; validated,
    audited; changing a rule to what it already is does nothing."""
    rule = _check(rule)
    with transaction.atomic():
        HbaRuleSet.objects.select_for_update().get(pk=ruleset.pk)
        if rule_id is not None:
            obj = rule_in(ruleset, rule_id)
            before = obj.as_rule()
            if before == rule:
                return obj
            _store(rule, obj)
            obj.save()
            _changed(ruleset, f"rule {obj.position + 1} changed\n- {before.line()} "
                     f"[{before.target}]\n+ {rule.line()} [{rule.target}]",
                     actor=actor, source=source)  # fmt: skip
            return obj
        count = ruleset.rules.count()
        position = count if position is None else max(0, min(position, count))
        ruleset.rules.filter(position__gte=position).update(position=F("position") + 1)
        obj = HbaRule(ruleset=ruleset, position=position)
        _store(rule, obj)
        obj.save()
        _changed(ruleset, f"rule {position + 1} added: {rule.line()} [{rule.target}]",
                 actor=actor, source=source)  # fmt: skip
        return obj


def rule_in(ruleset: HbaRuleSet, rule_id: int) -> HbaRule:
    try:
        return ruleset.rules.get(pk=rule_id)
    except HbaRule.DoesNotExist:
        raise HbaRefused("No such rule in this cluster's pg_hba.conf.") from None


def delete_rule(ruleset: HbaRuleSet, rule_id: int, *, actor, source=AuditEntry.Source.UI):
    """Remove a rule; the rules after it move up. Audited."""
    with transaction.atomic():
        HbaRuleSet.objects.select_for_update().get(pk=ruleset.pk)
        obj = rule_in(ruleset, rule_id)
        line = obj.as_rule().line()
        position = obj.position
        obj.delete()
        ruleset.rules.filter(position__gt=position).update(position=F("position") - 1)
        _changed(ruleset, f"rule {position + 1} deleted: {line}", actor=actor, source=source)


def move_rule(
    ruleset: HbaRuleSet, rule_id: int, position: int, *, actor, source=AuditEntry.Source.UI
) -> None:
    """Move a rule to `position` (0-based, clamped); the order is what PostgreSQL's first match
    sees. Moving a rule where it already is does nothing."""
    with transaction.atomic():
        HbaRuleSet.objects.select_for_update().get(pk=ruleset.pk)
        obj = rule_in(ruleset, rule_id)
        rules = list(ruleset.rules.order_by("position"))
        position = max(0, min(position, len(rules) - 1))
        if position == obj.position:
            return
        rules.remove(next(r for r in rules if r.pk == obj.pk))
        rules.insert(position, obj)
        for i, r in enumerate(rules):
            if r.position != i:
                HbaRule.objects.filter(pk=r.pk).update(position=i)
        _changed(ruleset, f"rule {obj.position + 1} moved to {position + 1}: "
                 f"{obj.as_rule().line()}", actor=actor, source=source)  # fmt: skip


def replace_rules(
    ruleset: HbaRuleSet, rules: list[hba.Rule], header: str, footer: str, *, actor,
    source: str, action: str = audit.HBA_CHANGED, note: str = "",
) -> bool:  # fmt: skip
    """Set all the rules at once (import, rollback); returns False when nothing changed.
    Rules come from a node's file or an earlier version: they are stored as they are."""
    with transaction.atomic():
        HbaRuleSet.objects.select_for_update().get(pk=ruleset.pk)
        if (ruleset.rules_list(), ruleset.header, ruleset.footer) == (rules, header, footer):
            return False
        ruleset.rules.all().delete()
        for i, rule in enumerate(rules):
            obj = HbaRule(ruleset=ruleset, position=i)
            _store(rule, obj)
            obj.save()
        ruleset.header, ruleset.footer = header, footer
        ruleset.save(update_fields=["header", "footer"])
        text = "\n".join(f"{r.line()} [{r.target}]" for r in rules)
        _changed(ruleset, f"{note}\n{text}".strip(), actor=actor, source=source, action=action)
    return True


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
    rules = hba.merge_nodes(parsed[Node.Role.PRIMARY].rules, standby.rules if standby else None)
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
            drift.changes = hba.rule_changes(found.rules, hba.for_role(rules, role_of(node)))
            drift.changes += [f"not understood: {e}" for e in drift.errors]
            drift.diff = hba.unified_diff(live.text, expected, f"{node.name} (on the node)",
                                          f"{node.name} (console)")  # fmt: skip
        report.append(drift)
    between = []
    nodes = list(parsed)
    for other in nodes[1:]:
        first = nodes[0]
        found = hba.rule_changes(parsed[first], parsed[other])
        if not found:
            between.append(f"{first.name} and {other.name} have the same rules.")
            continue
        intended = hba.rule_changes(hba.for_role(rules, role_of(first)),
                                    hba.for_role(rules, role_of(other)))  # fmt: skip
        why = ("as the console's targets intend" if found == intended
               else "NOT as the console's targets intend")  # fmt: skip
        between.append(f"{first.name} and {other.name} differ ({why}): "
                       + "; ".join(c.replace("the node", other.name) for c in found))  # fmt: skip
    return report, between


# --- Applying -----------------------------------------------------------------------------------


def active_job(cluster: Cluster) -> Job | None:
    active = (Job.Status.PENDING, Job.Status.RUNNING)
    return Job.objects.filter(
        kind__in=JOB_KINDS, status__in=active, target_type="clusters.cluster",
        target_id=str(cluster.pk),
    ).first()  # fmt: skip


def _check_confirm(cluster: Cluster, confirm: str) -> None:
    if confirm != cluster.name:
        raise HbaRefused(
            f"Type the cluster's name ({cluster.name}) to confirm.",
            {"confirm": ["Does not match."]},
        )


def _new_version(ruleset, rules, header, footer, *, actor, kind, rolled_back_to=None):
    """The version to send: the latest one again when it holds the same rules (a retry), else
    a new one. Call inside a transaction holding the rule set's lock."""
    snapshot = [rule_to_json(r) for r in rules]
    latest = ruleset.versions.order_by("-number").first()
    if latest is not None and (latest.rules, latest.header, latest.footer, latest.kind) == (
        snapshot,
        header,
        footer,
        kind,
    ):
        return latest
    number = (ruleset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    return HbaVersion.objects.create(
        ruleset=ruleset, number=number, kind=kind, rolled_back_to=rolled_back_to,
        rules=snapshot, header=header, footer=footer, actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
    )  # fmt: skip


def _enqueue(cluster: Cluster, version: HbaVersion, title: str, *, actor, source) -> Job:
    job = jobs.enqueue("clusters.hba_apply", title, user=actor, source=source,
                       params={"cluster": cluster.pk, "version": version.number},
                       target=cluster)  # fmt: skip
    HbaVersion.objects.filter(pk=version.pk).update(job=job, status=HbaVersion.Status.PENDING)
    return job


def start_apply(cluster: Cluster, *, confirm: str, actor, source=AuditEntry.Source.UI) -> Job:
    """Queue the console's current rules for the nodes (clusters.hba_apply). Refused when the
    confirmation is not the cluster's name, a rule is invalid, or a pg_hba job of this cluster
    is already queued or running."""
    _check_confirm(cluster, confirm)
    ruleset = ruleset_of(cluster)
    rules = ruleset.rules_list()
    if not rules:
        raise HbaRefused("There are no rules: applying would lock every client out.")
    for i, rule in enumerate(rules):
        errors = hba.validate(rule)
        if errors:
            raise HbaRefused(f"Rule {i + 1} is not valid: {_summary(errors)}", errors)
    with transaction.atomic():
        HbaRuleSet.objects.select_for_update().get(pk=ruleset.pk)
        if active_job(cluster):
            raise HbaRefused("A pg_hba job of this cluster is already queued or running.")
        version = _new_version(ruleset, rules, ruleset.header, ruleset.footer, actor=actor,
                               kind=HbaVersion.Kind.APPLY)  # fmt: skip
        return _enqueue(cluster, version, f"Apply pg_hba.conf version {version.number} to "
                        f"{cluster.name}", actor=actor, source=source)  # fmt: skip


def start_rollback(
    cluster: Cluster, number: int, *, confirm: str, actor, source=AuditEntry.Source.UI
) -> Job:
    """Queue an earlier version's rules for the nodes, the same way as an apply; once every
    node has them, they become the console's rules again (hba.rolled_back)."""
    _check_confirm(cluster, confirm)
    ruleset = ruleset_of(cluster)
    earlier = ruleset.versions.filter(number=number).first()
    if earlier is None:
        raise HbaRefused(f"There is no version {number}.")
    with transaction.atomic():
        HbaRuleSet.objects.select_for_update().get(pk=ruleset.pk)
        if active_job(cluster):
            raise HbaRefused("A pg_hba job of this cluster is already queued or running.")
        version = _new_version(ruleset, earlier.rules_list(), earlier.header, earlier.footer,
                               actor=actor, kind=HbaVersion.Kind.ROLLBACK,
                               rolled_back_to=number)  # fmt: skip
        return _enqueue(cluster, version, f"Roll {cluster.name}'s pg_hba.conf back to version "
                        f"{number}", actor=actor, source=source)  # fmt: skip


def start_read(cluster: Cluster, *, adopt: bool, actor, source=AuditEntry.Source.UI) -> Job:
    """Queue a read of the nodes' files (drift); with `adopt`, also import them as the rules."""
    if active_job(cluster):
        raise HbaRefused("A pg_hba job of this cluster is already queued or running.")
    what = "Import" if adopt else "Read"
    return jobs.enqueue("clusters.hba_read", f"{what} pg_hba.conf of {cluster.name}",
                        user=actor, source=source, params={"cluster": cluster.pk, "adopt": adopt},
                        target=cluster)  # fmt: skip


class _Refused(Exception):
    """PostgreSQL refused the new file on this node."""


def apply_version(version: HbaVersion, *, job=None, log=print) -> dict:
    """Send `version` to the cluster's nodes, standbys first; see the module docstring."""
    ruleset = version.ruleset
    cluster = ruleset.cluster
    rules = version.rules_list()
    actor = job.user if job is not None else version.actor
    nodes = sorted(hba_nodes(cluster), key=lambda n: (n.role == Node.Role.PRIMARY, n.name))
    if not nodes:
        raise HbaRefused(f"{cluster.name} has no PostgreSQL node to apply to")
    outcomes: dict[str, str] = {}
    stop = False
    for node in nodes:
        text, lines, positions = render_for(rules, version.header, version.footer, node)
        nv, _ = HbaNodeVersion.objects.update_or_create(version=version, node=node, defaults={
            "text": text, "sha256": sha256(text), "status": HbaNodeVersion.Status.PENDING,
            "errors": [], "detail": "", "finished": None,
        })  # fmt: skip
        if stop:
            _finish(nv, HbaNodeVersion.Status.SKIPPED, "not tried: an earlier node did not "
                    "take the file")  # fmt: skip
        else:
            _apply_node(nv, rules, lines, positions, actor=actor, job=job)
            stop = nv.status in (HbaNodeVersion.Status.REFUSED, HbaNodeVersion.Status.FAILED)
        _audit_node(nv, actor=actor, job=job)
        log(f"{node.name}: {nv.status}: {nv.detail}")
        for error in nv.errors:
            log(f"{node.name}: line {error['line']}: {error['error']} ({error['rule_text']})")
        outcomes[node.name] = nv.status
    return _finish_version(version, outcomes, actor=actor, job=job)


def _finish(nv: HbaNodeVersion, status: str, detail: str) -> None:
    nv.status, nv.detail, nv.finished = status, detail, timezone.now()
    nv.save()


def _audit_node(nv: HbaNodeVersion, *, actor, job) -> None:
    if nv.status == HbaNodeVersion.Status.SKIPPED:
        return
    ok = nv.status in (HbaNodeVersion.Status.APPLIED, HbaNodeVersion.Status.UNCHANGED)
    errors = "\n".join(f"line {e['line']} (rule {e['rule'] or '?'}): {e['error']}"
                       for e in nv.errors)  # fmt: skip
    audit.append(
        audit.HBA_APPLIED if ok else audit.HBA_APPLY_REFUSED, actor=actor,
        actor_name=None if actor else (job.user_name if job else ""),
        source=AuditEntry.Source.JOB if job else AuditEntry.Source.UI,
        target=f"cluster:{nv.version.ruleset.cluster.name}", node=nv.node.name,
        status=AuditEntry.Status.SUCCEEDED if ok else AuditEntry.Status.FAILED,
        output=f"version {nv.version.number}: {nv.status}; {nv.path} sha256 {nv.sha256[:12]}"
        + (f"; backup {nv.backup_path}" if nv.backup_path else ""),
        error=hba.mask_secrets(f"{nv.detail}\n{errors}".strip()) if not ok else "",
        job_id=job.pk if job else None,
    )  # fmt: skip


def _apply_node(nv, rules, lines, positions, *, actor, job) -> None:
    node = nv.node
    call = {**_call(node, job, actor), "sudo_user": _sudo(node),
            "secrets": hba.secrets_of(rules)}  # fmt: skip
    try:
        nv.path = hba_path(node, actor=actor, job=job)
        current = read_file(node, nv.path, actor=actor, job=job)
    except ExecutorError as e:
        return _finish(nv, HbaNodeVersion.Status.FAILED, f"could not read the file: {e}")
    if sha256(current) == nv.sha256:
        _remember(node, nv.path, current)
        return _finish(nv, HbaNodeVersion.Status.UNCHANGED, (
            f"{nv.path} already is version {nv.version.number} (sha256 {nv.sha256[:12]}): "
            "nothing written, no reload"
        ))  # fmt: skip
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    nv.backup_path = f"{nv.path}.dbconsole-{stamp}-v{nv.version.number}"
    directory, name = posixpath.split(nv.path)
    temp = posixpath.join(directory, f".{name}.dbconsole-{job.pk if job else stamp}.tmp")
    try:
        run_command(node, ["cp", "-p", "--", nv.path, nv.backup_path], **call)
        run_command(node, ["cp", "-p", "--", nv.path, temp], **call)
        run_command(node, ["dd", f"of={temp}", "status=none"], input=nv.text, **call)
        run_command(node, ["mv", "-f", "-T", "--", temp, nv.path], **call)
    except ExecutorError as e:
        _discard(node, temp, call)
        return _finish(
            nv,
            HbaNodeVersion.Status.FAILED,
            f"the new file could not be put in place ({e}); {nv.path} is unchanged",
        )
    try:
        errors = run_sql(node, "clusters:hba-errors", **_call(node, job, actor)).rows
    except ExecutorError as e:
        detail = _restore(nv, current, call)
        return _finish(
            nv,
            HbaNodeVersion.Status.FAILED,
            f"could not ask PostgreSQL to check the file ({e}); {detail}",
        )
    if errors:
        by_line = dict(zip(lines, positions, strict=True))
        nv.errors = [
            {"line": line, "error": error,
             "rule": by_line[line] + 1 if line in by_line else None,
             "rule_text": hba.mask_secrets(rules[by_line[line]].line()) if line in by_line
             else "not a rule line"}
            for line, error in errors
        ]  # fmt: skip
        detail = _restore(nv, current, call)
        return _finish(
            nv,
            HbaNodeVersion.Status.REFUSED,
            f"PostgreSQL refused {len(errors)} line(s); {detail}; not reloaded",
        )
    try:
        _reload(node, actor=actor, job=job)
    except ExecutorError as e:
        _remember(node, nv.path, nv.text)
        return _finish(nv, HbaNodeVersion.Status.FAILED, (
            f"{nv.path} was written and PostgreSQL accepts it, but the reload could not be "
            f"confirmed: {e}"
        ))  # fmt: skip
    _remember(node, nv.path, nv.text)
    _finish(
        nv,
        HbaNodeVersion.Status.APPLIED,
        f"written to {nv.path}, accepted by PostgreSQL, reloaded; backup {nv.backup_path}",
    )


def _discard(node, temp, call) -> None:
    try:
        run_command(node, ["rm", "-f", "--", temp], **call)
    except ExecutorError:
        pass


def _restore(nv: HbaNodeVersion, current: str, call: dict) -> str:
    """Put the backup back in place (renamed over the file, so the server never reads half a
    file) and check it is the old text again; says what happened."""
    node = nv.node
    directory, name = posixpath.split(nv.path)
    temp = posixpath.join(directory, f".{name}.dbconsole-restore.tmp")
    try:
        run_command(node, ["cp", "-p", "--", nv.backup_path, temp], **call)
        run_command(node, ["mv", "-f", "-T", "--", temp, nv.path], **call)
        check = run_command(node, ["sha256sum", "--", nv.path], **call)
    except ExecutorError as e:
        return f"PUTTING THE OLD FILE BACK FAILED ({e}): copy {nv.backup_path} over {nv.path}"
    if check.stdout.split()[:1] != [sha256(current)]:
        return f"THE FILE IS NOT THE OLD ONE AFTER RESTORING: compare it with {nv.backup_path}"
    _remember(node, nv.path, current)
    return f"the old file was put back from {nv.backup_path}"


def _reload(node: Node, *, actor, job) -> None:
    """pg_reload_conf(), then wait until a new session sees a later load time."""
    before = run_sql(node, "clusters:hba-reload", **_call(node, job, actor)).rows[0][0]
    deadline = time.monotonic() + RELOAD_DEADLINE
    while True:
        loaded = run_sql(node, "clusters:hba-loadtime", **_call(node, job, actor)).rows[0][0]
        if loaded > before:
            return
        if time.monotonic() > deadline:
            raise ExecutorError(f"the server did not reload within {RELOAD_DEADLINE:g} s")
        time.sleep(0.2)


def _remember(node: Node, path: str, text: str) -> None:
    HbaLiveFile.objects.update_or_create(node=node, defaults={
        "path": path, "text": text, "sha256": sha256(text), "read_at": timezone.now(),
        "error": "",
    })  # fmt: skip


def _finish_version(version: HbaVersion, outcomes: dict[str, str], *, actor, job) -> dict:
    statuses = set(outcomes.values())
    if HbaNodeVersion.Status.REFUSED in statuses:
        status = HbaVersion.Status.REFUSED
    elif statuses - {HbaNodeVersion.Status.APPLIED, HbaNodeVersion.Status.UNCHANGED}:
        status = HbaVersion.Status.FAILED
    else:
        status = HbaVersion.Status.APPLIED
    HbaVersion.objects.filter(pk=version.pk).update(status=status)
    version.status = status
    if status == HbaVersion.Status.APPLIED and version.kind == HbaVersion.Kind.ROLLBACK:
        source = AuditEntry.Source.JOB if job else AuditEntry.Source.UI
        note = f"rolled back to version {version.rolled_back_to} (as version {version.number})"
        if not replace_rules(
            version.ruleset, version.rules_list(), version.header, version.footer, actor=actor,
            source=source, action=audit.HBA_ROLLED_BACK, note=note,
        ):  # fmt: skip
            audit.append(audit.HBA_ROLLED_BACK, actor=actor, source=source,
                         target=f"cluster:{version.ruleset.cluster.name}",
                         output=f"{note}; the console already had these rules")  # fmt: skip
    return {"version": version.number, "status": status, "nodes": outcomes}
