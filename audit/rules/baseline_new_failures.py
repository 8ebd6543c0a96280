"""baseline_new_failures: no rule that passed for the baseline may fail for the candidate."""

from __future__ import annotations

from ..evidence import Evidence
from ..types import Finding
from ._baseline import NoBaseline, comparison
from .base import Rule, RuleParams


class BaselineNewFailures(Rule):
    kind = "baseline_new_failures"
    title = "Newly failing rules"
    Params = RuleParams
    phase = "comparison"

    def check(self, evidence: Evidence) -> list[Finding]:
        try:
            comp = comparison(evidence)
        except NoBaseline as e:
            return [self.error(str(e))]
        new = comp["rules"]["newly_failing"]
        msg = ("newly failing: " + ", ".join(new)) if new else "no rule fails that passed for the baseline"
        return [self.finding(bool(new), msg, len(new), 0, details={"newly_failing": new,
                                                                  "newly_passing": comp["rules"]["newly_passing"]})]
