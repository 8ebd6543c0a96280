"""baseline_new_failures: no rule that passed for the baseline may fail for the candidate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...products import Finding
from ..base import Criterion, RuleParams
from ..evidence import Evidence
from .base import BaselineRule


class BaselineNewFailures(BaselineRule[RuleParams]):
    kind = "baseline_new_failures"
    title = "Newly failing rules"
    criterion = Criterion("rules newly failing", "count", "above")

    def compare(self, comp: Mapping[str, Any], evidence: Evidence) -> list[Finding]:
        new = comp["rules"]["newly_failing"]
        msg = ("newly failing: " + ", ".join(new)) if new else "no rule fails that passed for the baseline"
        return [self.finding(bool(new), msg, len(new), 0, details={"newly_failing": new,
                                                                  "newly_passing": comp["rules"]["newly_passing"]})]
