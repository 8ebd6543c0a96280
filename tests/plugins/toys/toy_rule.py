"""A test-only rule kind: this module and one line of entry_points.txt are all it takes."""

from __future__ import annotations

from pydantic import Field

from audit.products import Finding
from audit.rules.base import Criterion, Rule, RuleParams
from audit.rules.evidence import Evidence


class LowConfidenceParams(RuleParams):
    min_confidence: float = Field(default=0.6, gt=0.0, le=1.0, description="an answer below this is unsure")
    max_share: float = Field(default=0.5, ge=0.0, le=1.0, description="largest share of unsure answers allowed")


class LowConfidence(Rule[LowConfidenceParams]):
    kind = "toy_low_confidence"
    title = "toy: share of unsure answers"
    criterion = Criterion("share of answers below the confidence floor", "fraction of samples", "above")

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        unsure = evidence.predictions.confidence < p.min_confidence
        share = float(unsure.mean())
        ids = [str(s) for s in evidence.predictions.ids[unsure][:5]]
        msg = self.criterion.lead(share, p.max_share) + f" (top score below {p.min_confidence:.2f})"
        return [self.finding(share > p.max_share, msg, share, p.max_share, ids)]
