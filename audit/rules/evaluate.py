"""Evaluate a rule list on the evidence: a rule that raises becomes one ``error`` finding; one that asked the
evidence for what this audit does not have (``NotApplicable``) a ``not_applicable`` finding with the reason."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..errors import AuditError
from ..products import Finding
from .base import Rule
from .evidence import Evidence, NotApplicable

log = logging.getLogger(__name__)


def check_one(rule: Rule, evidence: Evidence) -> tuple[Finding, ...]:
    """The rule's findings; a crash or an empty answer is one ``error`` finding (never a pass), a rule that asked the
    evidence for what this audit lacks (``NotApplicable``) one ``not_applicable`` finding with the reason."""
    try:
        out = rule.check(evidence)
        if not out:
            out = [rule.error("rule produced no result")]
    except NotApplicable as e:
        out = [rule.not_applicable(str(e))]
    except (AuditError, Exception) as e:
        log.debug("rule %s crashed", rule.params.id, exc_info=True)
        out = [rule.error(f"rule could not be evaluated: {type(e).__name__}: {e}")]
    return tuple(out)


def evaluate_each(rules: Sequence[Rule], evidence: Evidence) -> tuple[tuple[Rule, tuple[Finding, ...]], ...]:
    """Each rule with its findings, in pack order (what the ``evidence_complete`` rule reads)."""
    return tuple((rule, check_one(rule, evidence)) for rule in rules)


def evaluate(rules: Sequence[Rule], evidence: Evidence) -> tuple[Finding, ...]:
    return tuple(f for _, found in evaluate_each(rules, evidence) for f in found)


def verdict(findings: Sequence[Finding]) -> str:
    """'fail' when any error-severity rule failed or could not be evaluated, else 'pass'."""
    return "fail" if any(f.blocking for f in findings) else "pass"
