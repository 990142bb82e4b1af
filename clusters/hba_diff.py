"""Comparing pg_hba rule lists and files: a unified diff of two texts, the rule differences in
words (drift), and one rule list with targets merged from a primary's and a standby's. Pure:
no I/O.

Separate from clusters.hba, the file format, because these work on two parsed files at once
(a node's and the console's, or two nodes'), all with difflib's sequence matching."""

import difflib
from dataclasses import replace

from clusters.hba import Rule, mask_secrets


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    """A unified diff of two file texts with secret option values masked; "" when equal."""
    lines = difflib.unified_diff(
        mask_secrets(old).splitlines(), mask_secrets(new).splitlines(), old_name, new_name,
        lineterm="",
    )  # fmt: skip
    return "\n".join(lines)


def rule_changes(have: list[Rule], want: list[Rule]) -> list[str]:
    """What differs between two rule lists as PostgreSQL sees them (comments ignored), in
    words: rules only in `want`, only in `have`, or in another order."""
    a, b = [r.key() for r in have], [r.key() for r in want]
    changes = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for rule in have[i1:i2]:
            if rule.key() in b:
                changes.append(f"moved: {mask_secrets(rule.line())}")
            else:
                changes.append(f"only on the node: {mask_secrets(rule.line())}")
        for rule in want[j1:j2]:
            if rule.key() not in a:
                changes.append(f"missing on the node: {mask_secrets(rule.line())}")
    return changes


def merge_nodes(primary: list[Rule], standby: list[Rule] | None) -> list[Rule]:
    """One rule list from a primary's and a standby's rules: rules both have in the same order
    target both, the others the node they were found on. Comments come from the primary."""
    if standby is None:
        return [replace(r, target="both") for r in primary]
    merged = []
    matcher = difflib.SequenceMatcher(
        a=[r.key() for r in primary], b=[r.key() for r in standby], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            merged += [replace(r, target="both") for r in primary[i1:i2]]
            continue
        merged += [replace(r, target="primary") for r in primary[i1:i2]]
        merged += [replace(r, target="standbys") for r in standby[j1:j2]]
    return merged
