"""The pack's rules on every member: each member's own evidence (its predictions, metrics, picks and model service
on the rows it was not trained on) through the same rules as the released model, so that a family rule can count
how many members fail each one. The [concepts] and [robustness] stages run for the released model only: a rule
that reads them cannot be judged on another member (its result there says so)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ...family.result import FamilyRun, MemberOutcome, MemberRun, RuleOutcome
from ...products import Finding, Status
from ..base import Rule
from ..evaluate import evaluate_each
from ..evidence import Evidence

#: which finding speaks for a member when a rule returns several: a crossed criterion first
WORST: tuple[Status, ...] = ("fail", "warn", "error", "not_applicable", "pass")


def _one(member: str, found: Sequence[Finding]) -> MemberOutcome:
    f = min(found, key=lambda x: WORST.index(x.status) if x.status in WORST else len(WORST))
    return MemberOutcome(member, f.status, f.message, f.value)


def member_evidence(evidence: Evidence, m: MemberRun) -> Evidence:
    """The released model's evidence with the member's own predictions, metrics, picks and model service; the
    model-independent data checks are shared, the released model's concept and robustness runs are not."""
    return replace(evidence, predictions=m.predictions, metrics=m.metrics, picks=m.picks, probe=m.probe,
                   concepts=None, robustness=None, family=None, comparison=None)


def member_outcomes(rules: Sequence[Rule], evidence: Evidence,
                    released: Sequence[tuple[Rule, tuple[Finding, ...]]]) -> FamilyRun:
    """``evidence.family`` with every rule of ``rules`` judged on every member; the released member judged on every
    row keeps the audit's own findings (``released``: the main rules as evaluated for the audit)."""
    family = evidence.family
    assert family is not None
    ids = {r.params.id for r in rules}
    kept = {r.params.id: found for r, found in released if r.params.id in ids}
    per: dict[str, dict[str, MemberOutcome]] = {r.params.id: {} for r in rules}
    for m in family.members:
        if m.role == "released" and len(m.rows) == evidence.predictions.n and len(kept) == len(ids):
            results = [(r, kept[r.params.id]) for r in rules]
        else:
            results = list(evaluate_each(list(rules), member_evidence(evidence, m)))
        for r, found in results:
            per[r.params.id][m.name] = _one(m.name, found)
    outcomes = tuple(RuleOutcome(r.params.id, r.kind, r.params.severity,
                                 tuple(per[r.params.id][m.name] for m in family.members)) for r in rules)
    return replace(family, outcomes=outcomes)
