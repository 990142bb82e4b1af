"""pg_hba.conf of a cluster: editing the console's rules, and what the other pg_hba actions
share (the rule set, the nodes and the file each one gets, the one-job-at-a-time check).

Edits (save_rule, delete_rule, move_rule, replace_rules) validate every field first
(clusters.hba_validate.validate: HbaRefused names the fields, nothing saved) and write their
hba.changed entry in the same transaction; an edit that changes nothing writes nothing.

Reading the nodes' files, importing them and their drift are clusters.actions.hba_live;
applying a version to the nodes and rolling back, clusters.actions.hba_apply.
"""

import hashlib

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from clusters import hba, hba_validate
from clusters.models import Cluster, HbaRule, HbaRuleSet, Node
from console import audit
from console.errors import ExpectedFailure
from console.models import AuditEntry, Job

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


def active_job(cluster: Cluster) -> Job | None:
    active = (Job.Status.PENDING, Job.Status.RUNNING)
    return Job.objects.filter(
        kind__in=JOB_KINDS, status__in=active, target_type="clusters.cluster",
        target_id=str(cluster.pk),
    ).first()  # fmt: skip


# --- Editing the console's rules ----------------------------------------------------------------


def _changed(ruleset: HbaRuleSet, output: str, *, actor, source: str, action=audit.HBA_CHANGED):
    ruleset.updated = timezone.now()
    ruleset.updated_by_name = actor.get_username() if actor is not None else ""
    ruleset.save(update_fields=["updated", "updated_by_name"])
    audit.append(action, actor=actor, source=source, target=f"cluster:{ruleset.cluster.name}",
                 output=hba.mask_secrets(output))  # fmt: skip


def _check(rule: hba.Rule) -> hba.Rule:
    errors = hba_validate.validate(rule)
    if errors:
        raise HbaRefused("The rule was not saved: " + _summary(errors), errors)
    return hba_validate.normalise(rule)


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
