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


def evaluate(rules: Sequence[Rule], evidence: Evidence) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    for rule in rules:
        try:
            out = rule.check(evidence)
            if not out:
                out = [rule.error("rule produced no result")]
        except NotApplicable as e:
            out = [rule.not_applicable(str(e))]
        except (AuditError, Exception) as e:
            log.debug("rule %s crashed", rule.params.id, exc_info=True)
            out = [rule.error(f"rule could not be evaluated: {type(e).__name__}: {e}")]
        findings.extend(out)
    return tuple(findings)


def verdict(findings: Sequence[Finding]) -> str:
    """'fail' when any error-severity rule failed or could not be evaluated, else 'pass'."""
    return "fail" if any(f.blocking for f in findings) else "pass"
