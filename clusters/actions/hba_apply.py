"""Applying a version of a cluster's pg_hba.conf to its nodes and rolling back to an earlier
one: queuing the job (start_apply, start_rollback) and the job itself, node by node.

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

Separate from clusters.actions.hba (editing the console's rules, no node touched) because
this is the one place that writes the nodes' files.
"""

import posixpath
import time

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from clusters import hba, hba_validate
from clusters.actions.hba import (
    HbaRefused,
    _summary,
    active_job,
    hba_nodes,
    render_for,
    replace_rules,
    ruleset_of,
    sha256,
)
from clusters.actions.hba_live import _call, _sudo, hba_path, read_file
from clusters.models import Cluster, HbaLiveFile, HbaNodeVersion, HbaRuleSet, HbaVersion, Node
from clusters.models.hba import rule_to_json
from console import audit, jobs
from console.executor import ExecutorError, run_command, run_sql
from console.models import AuditEntry, Job

RELOAD_DEADLINE = 10.0  # seconds the server is given to reload


# --- Queuing an apply or a rollback -------------------------------------------------------------


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
        errors = hba_validate.validate(rule)
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


# --- The job, node by node ----------------------------------------------------------------------


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
    try:
        _put_in_place(nv, call, job=job)
    except ExecutorError as e:
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
        nv.errors = _line_errors(errors, rules, lines, positions)
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


def _put_in_place(nv: HbaNodeVersion, call: dict, *, job) -> None:
    """A dated backup copy next to the file, then the new text written to a temporary copy
    (same owner and mode) renamed over the file. Raises ExecutorError, the temporary copy
    removed, when a step fails."""
    node = nv.node
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    nv.backup_path = f"{nv.path}.dbconsole-{stamp}-v{nv.version.number}"
    directory, name = posixpath.split(nv.path)
    temp = posixpath.join(directory, f".{name}.dbconsole-{job.pk if job else stamp}.tmp")
    try:
        run_command(node, ["cp", "-p", "--", nv.path, nv.backup_path], **call)
        run_command(node, ["cp", "-p", "--", nv.path, temp], **call)
        run_command(node, ["dd", f"of={temp}", "status=none"], input=nv.text, **call)
        run_command(node, ["mv", "-f", "-T", "--", temp, nv.path], **call)
    except ExecutorError:
        _discard(node, temp, call)
        raise


def _line_errors(errors, rules, lines, positions) -> list[dict]:
    """PostgreSQL's (line, error) rows, each with the rule the line came from (1-based) and
    its text, secrets masked."""
    by_line = dict(zip(lines, positions, strict=True))
    return [
        {"line": line, "error": error,
         "rule": by_line[line] + 1 if line in by_line else None,
         "rule_text": hba.mask_secrets(rules[by_line[line]].line()) if line in by_line
         else "not a rule line"}
        for line, error in errors
    ]  # fmt: skip


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
