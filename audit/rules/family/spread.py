"""family_spread_max: a ceiling on how far a metric spreads across the members of the recipe (their sample
standard deviation, or their range max − min). A recipe whose folds or seeds land far apart is not reproducible
enough for any one checkpoint's figure to describe it."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from ...family.result import FamilyRun
from ...products import Finding
from ..base import Criterion, RuleParams
from ..evidence import Evidence
from .base import FamilyRule


class SpreadParams(RuleParams):
    metric: str = Field(default="", description="a metric the task computes; default: the task's key metric")
    statistic: Literal["sd", "range"] = Field(default="sd", description="the members' sample standard deviation "
                                              "(ddof 1) or their range (max − min)")
    threshold: float = Field(ge=0.0)


class FamilySpreadMax(FamilyRule[SpreadParams]):
    kind = "family_spread_max"
    title = "Metric spread across the family"
    criterion = Criterion("spread of the metric across members", "metric value", "above")
    examples = ({"threshold": 0.05}, {"metric": "{metric}", "statistic": "range", "threshold": 0.1})

    def judge(self, family: FamilyRun, evidence: Evidence) -> list[Finding]:
        p = self.params
        metric = p.metric or family.key_metric
        s = family.spreads.get(metric)
        if s is None or s.n == 0:
            return [self.error(f"metric {metric!r} is not one the task computes for the members")]
        if s.n < 2:
            return [self.error(f"{metric} is known for {s.n} member only: a spread needs two")]
        value = s.sd if p.statistic == "sd" else s.range
        values = {m.name: m.values.get(metric, math.nan) for m in family.members if m.trained}
        low, high = min(values, key=lambda k: values[k]), max(values, key=lambda k: values[k])
        crit = Criterion(f"{'standard deviation' if p.statistic == 'sd' else 'range'} of {metric} across members",
                         "metric value", "above")
        msg = (f"{crit.lead(value, p.threshold, digits=4)}: mean {s.mean:.4f} over {s.n} members "
               f"({family.level:.0%} t-interval {s.low:.4f}–{s.high:.4f}); lowest {low!r} {values[low]:.4f}, "
               f"highest {high!r} {values[high]:.4f}")
        details = {"metric": metric, "statistic": p.statistic, "members": values, "mean": s.mean, "sd": s.sd,
                   "t_interval": [s.low, s.high]}
        return [self.finding(crit.exceeds(value, p.threshold), msg, value, p.threshold, details=details,
                             criterion=crit)]
