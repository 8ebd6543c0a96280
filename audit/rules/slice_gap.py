"""slice_gap_max: no discovered slice of at least ``min_size`` samples lies below the overall metric by more than
``max_gap`` (issue 30). The slices are the [slices] stage's: components of Domino's error-aware mixture on the
model's own features, tested on samples the mixture was not fitted on, with a one-sided gap test corrected over
the slices tried. By default only slices whose corrected test says they are worse than the rest count, so a clean
model fails at most at the stated error rate; a warning by default (a discovered slice is a lead to name, not a
defined subgroup)."""

from __future__ import annotations

from pydantic import Field

from ..products import Finding, Severity
from ..slices.result import SlicesRun
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence

NO_SLICES = "no slice results: the config has no [slices] table (an empty one runs slice discovery's defaults)"


class SliceGapParams(RuleParams):
    severity: Severity = "warning"
    max_gap: float = Field(ge=0.0, description="how far below the overall metric a slice may lie (0.1: 10 points)")
    min_size: int = Field(default=10, ge=1, description="confirmation samples a slice needs to count (slices.min_size "
                          "is the smallest the stage tests)")
    significant_only: bool = Field(default=True, description="count only slices whose corrected gap test is "
                                   "significant at slices.alpha")


class SliceGapMax(Rule[SliceGapParams]):
    kind = "slice_gap_max"
    title = "Discovered failure slices"
    needs = frozenset()  # every task: the [slices] stage says not_applicable, with the reason, where it cannot slice
    criterion = Criterion("a discovered slice's metric below the overall metric", "metric difference", "above",
                          "and the slice's corrected gap test significant")
    examples = ({"max_gap": 0.1}, {"max_gap": 0.2, "min_size": 20, "significant_only": False})

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        run: SlicesRun | None = evidence.slices
        if run is None:
            return [self.error(NO_SLICES)]
        if run.status == "not_applicable":
            return [self.not_applicable(run.reason)]
        counted = [s for s in run.slices if s.n >= p.min_size and (s.significant or not p.significant_only)]
        crit = self.criterion if p.significant_only else Criterion(self.criterion.name, self.criterion.unit, "above")
        what = f"{run.metric}" + (f" of label {run.label}" if run.label else "")
        if not counted:
            return [self.finding(False, f"no slice of at least {p.min_size} confirmation samples"
                                 + (" is significantly worse than the rest" if p.significant_only else " was tried")
                                 + f" ({len(run.slices)} tried; overall {what} {run.overall:.4f})", 0.0, p.max_gap,
                                 criterion=crit)]
        worst = max(counted, key=lambda s: s.below_overall)
        over = [s for s in counted if s.below_overall > p.max_gap]
        msg = (f"{worst.name}: {what} {worst.metric:.4f} (95 % CI {worst.ci95[0]:.3f}–{worst.ci95[1]:.3f}) on "
               f"{worst.n} confirmation samples ({len(worst.member_ids)} in all), {worst.below_overall:.4f} below the "
               f"overall {run.overall:.4f}; corrected p {worst.p_adjusted:.3g}; {len(over)} of {len(counted)} "
               f"counted slice(s) more than {p.max_gap:.4f} below")
        details = {"slices": {s.name: s.below_overall for s in counted}, "worst": worst.name,
                   "over": [s.name for s in over]}
        return [self.finding(bool(over), msg, worst.below_overall, p.max_gap, sample_ids=worst.typical_ids,
                             details=details, criterion=crit)]
