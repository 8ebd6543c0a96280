"""skipped_max: at most a share of the listed images may be skipped as unreadable (on_bad_image = "skip")."""

from __future__ import annotations

from pydantic import Field

from ..products import Finding
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence


class SkippedParams(RuleParams):
    threshold: float = Field(default=0.0, ge=0.0, le=1.0, description="max share of listed images skipped")


class SkippedMax(Rule[SkippedParams]):
    kind = "skipped_max"
    title = "Unreadable images"
    criterion = Criterion("share of listed images skipped", "fraction of listed images", "above")

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        listed = max(evidence.n_listed, 1)
        share = len(evidence.skipped) / listed
        msg = f"{len(evidence.skipped)} of {evidence.n_listed} listed images skipped as unreadable ({share:.1%})"
        return [self.finding(share > p.threshold, msg, share, p.threshold,
                             details={"skipped": [s.path for s in evidence.skipped[:50]]})]
