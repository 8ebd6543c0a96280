"""relative_ce_max: corruption error against the baseline report (Hendrycks & Dietterich 2019; ImageNet-C
normalises by AlexNet, an audit by the released model): the candidate may not be less robust than the baseline
beyond a stated margin. mCE = mean over corruptions of sum_s E / sum_s E_baseline; relative mCE the same of the
errors above each model's clean error (1 - the task's metric). Without a baseline (audit run --baseline), or one
whose results.json holds no matching corruption results, the rule is an error, never a pass."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from ..products import Finding
from ..robustness.result import CorruptionRun
from ._robustness import Missing, part
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence

NO_BASELINE = "this rule compares with a released model: run with --baseline RESULTS (a report with corruption results)"


class RelativeCEParams(RuleParams):
    max: float = Field(gt=0, description="ceiling of the ratio (1.1: at most 10 % more corruption error)")
    measure: Literal["relative_mce", "mce"] = "relative_mce"
    aggregate: Literal["mean", "each"] = Field(default="mean", description="the mean over corruptions, or each "
                                               "corruption's own ratio")


class RelativeCEMax(Rule[RelativeCEParams]):
    kind = "relative_ce_max"
    title = "Corruption error against the baseline"
    criterion = Criterion("corruption error relative to the baseline", "ratio of errors", "above")
    examples = ({"max": 1.5}, {"max": 2.0, "measure": "mce", "aggregate": "each"})

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        try:
            run: CorruptionRun = part(evidence, "corruptions")
        except Missing as e:
            return [self.error(str(e))]
        v = run.versus_baseline
        if v is None:
            return [self.error(run.baseline_note or NO_BASELINE)]
        per = v.relative_ce if p.measure == "relative_mce" else v.ce
        label = "relative CE" if p.measure == "relative_mce" else "CE"
        crit = Criterion(f"{label} against the baseline", "ratio of errors", "above")
        details = {"metric": run.metric, "per_corruption": per, "mce": v.mce, "relative_mce": v.relative_mce,
                   "undefined": list(v.undefined)}
        undefined = f"; undefined for {', '.join(v.undefined)} (the baseline's error sum is 0)" if v.undefined else ""
        if p.aggregate == "mean":
            value = v.relative_mce if p.measure == "relative_mce" else v.mce
            msg = (f"{'relative mCE' if p.measure == 'relative_mce' else 'mCE'} {value:.3f} against the baseline over "
                   f"{len(per) - len(v.undefined)} corruption(s) ({run.metric}); ceiling {p.max:.3f}{undefined}")
            return [self.finding(value > p.max, msg, value, p.max, details=details, criterion=crit)]
        finite = {c: r for c, r in per.items() if math.isfinite(r)}
        if not finite:
            return [self.error(f"no corruption has a defined {label}{undefined}")]
        worst = max(finite, key=lambda c: finite[c])
        over = [c for c, r in finite.items() if r > p.max]
        msg = (f"{label} {finite[worst]:.3f} under {worst}, the highest of {len(finite)}; {len(over)} above the "
               f"ceiling {p.max:.3f}{undefined}")
        return [self.finding(bool(over), msg, finite[worst], p.max, details={**details, "worst": worst},
                             criterion=crit)]
