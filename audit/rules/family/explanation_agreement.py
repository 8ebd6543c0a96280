"""family_explanation_agreement_min: a floor on how much the members agree on *why*: for one explainer, the rank
correlation (Spearman, of attribution magnitudes) or the top-k overlap of their maps of the same output on shared
picks, the weakest pair's mean over picks (or the mean over pairs). Members with the same answers can point at
different evidence (D'Amour et al. 2020)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from ...family.result import FamilyRun
from ...products import Finding
from ..base import Criterion, RuleParams
from ..evidence import Evidence, NotApplicable
from .base import FamilyRule

WORDS = {"rank_correlation": "rank correlation of maps", "top_overlap": "top-k overlap of maps"}


class ExplanationAgreementParams(RuleParams):
    explainer: str = Field(default="gradcam", description="an explainer of the registry")
    statistic: Literal["rank_correlation", "top_overlap"] = "rank_correlation"
    threshold: float = Field(ge=-1.0, le=1.0)
    over: Literal["min", "mean"] = Field(default="min", description="the weakest pair, or the mean over pairs")


class FamilyExplanationAgreementMin(FamilyRule[ExplanationAgreementParams]):
    kind = "family_explanation_agreement_min"
    title = "Explanation agreement across the family"
    criterion = Criterion("agreement of members' maps on shared picks", "correlation or share of pixels", "below")
    needs = frozenset({"maps"})
    examples = ({"explainer": "saliency", "threshold": 0.2},
                {"explainer": "saliency", "statistic": "top_overlap", "threshold": 0.3, "over": "mean"})

    def judge(self, family: FamilyRun, evidence: Evidence) -> list[Finding]:
        p = self.params
        if not family.map_ids:
            raise NotApplicable("no shared picks: no sample lies outside every member's training data")
        why = family.explainers.get(p.explainer)
        if why is None:
            return [self.error(f"explainer {p.explainer!r}: its maps were not compared")]
        if why:
            return [self.error(f"explainer {p.explainer!r} could not be compared: {why}")]
        pairs = [x for x in family.maps if x.explainer == p.explainer and math.isfinite(getattr(x, p.statistic))]
        if not pairs:
            return [self.error(f"explainer {p.explainer!r}: every shared pick has a constant map in some member")]
        worst = min(pairs, key=lambda x: getattr(x, p.statistic))
        value = getattr(worst, p.statistic) if p.over == "min" else \
            sum(getattr(x, p.statistic) for x in pairs) / len(pairs)
        crit = Criterion(f"{p.explainer} {WORDS[p.statistic]} between members "
                         f"({'weakest pair' if p.over == 'min' else 'mean of pairs'})",
                         "rank correlation" if p.statistic == "rank_correlation" else "share of top pixels", "below")
        msg = (f"{crit.lead(value, p.threshold, digits=3)} on {len(family.map_ids)} shared picks; weakest pair "
               f"'{worst.a}' and '{worst.b}': rank correlation {worst.rank_correlation:.3f}, top-"
               f"{family.top_fraction:.0%} overlap {worst.top_overlap:.3f}")
        details = {"explainer": p.explainer, "statistic": p.statistic, "weakest": [worst.a, worst.b],
                   "pairs": [{"a": x.a, "b": x.b, "n": x.n, "rank_correlation": x.rank_correlation,
                              "top_overlap": x.top_overlap} for x in pairs]}
        return [self.finding(crit.exceeds(value, p.threshold), msg, value, p.threshold,
                             sample_ids=family.map_ids, details=details, criterion=crit)]
