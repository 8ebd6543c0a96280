"""family_agreement_min: a floor on how much the members agree on their answers, by Cohen's kappa between each
pair on the rows neither was trained on (the smallest pair's, or the mean over pairs). Members that reach the same
accuracy with different answers are not interchangeable: which one ships changes who gets which answer."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from ...family.result import FamilyRun
from ...products import Finding
from ..base import Criterion, RuleParams
from ..evidence import Evidence, NotApplicable
from .base import FamilyRule


class AgreementParams(RuleParams):
    min_kappa: float = Field(ge=-1.0, le=1.0)
    over: Literal["min", "mean"] = Field(default="min", description="the weakest pair, or the mean over pairs")


class FamilyAgreementMin(FamilyRule[AgreementParams]):
    kind = "family_agreement_min"
    title = "Prediction agreement across the family"
    criterion = Criterion("Cohen's kappa between members' answers", "kappa", "below")
    examples = ({"min_kappa": 0.6}, {"min_kappa": 0.8, "over": "mean"})

    def judge(self, family: FamilyRun, evidence: Evidence) -> list[Finding]:
        p = self.params
        trained = set(family.trained)
        pairs = [x for x in family.pairs if x.a in trained and x.b in trained and x.n > 0]
        if not pairs:
            raise NotApplicable("no two members share rows neither was trained on (their out-of-fold rows are "
                                "disjoint and no shared test rows are listed)")
        known = [x for x in pairs if math.isfinite(x.kappa)]
        if not known:
            return [self.error("Cohen's kappa is undefined for every pair (each member gives one and the same "
                               "answer everywhere)")]
        worst = min(known, key=lambda x: x.kappa)
        value = worst.kappa if p.over == "min" else sum(x.kappa for x in known) / len(known)
        what = f"'{worst.a}' and '{worst.b}'"
        changed = f"{worst.flips.changed} of {worst.flips.n} answers differ"
        if worst.flips.a_right_b_wrong is not None:
            changed += (f": {worst.flips.a_right_b_wrong} right only for '{worst.a}', {worst.flips.a_wrong_b_right} "
                        f"right only for '{worst.b}'")
        crit = Criterion(f"Cohen's kappa between members' answers ({'weakest pair' if p.over == 'min' else 'mean of pairs'})",
                         "kappa", "below")
        msg = f"{crit.lead(value, p.min_kappa, digits=3)}; weakest pair {what}: kappa {worst.kappa:.3f}, {changed}"
        details = {"pairs": [{"a": x.a, "b": x.b, "n": x.n, "kappa": x.kappa, "changed": x.flips.changed}
                             for x in pairs], "weakest": [worst.a, worst.b]}
        return [self.finding(crit.exceeds(value, p.min_kappa), msg, value, p.min_kappa, details=details,
                             criterion=crit)]
