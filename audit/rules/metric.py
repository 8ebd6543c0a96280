"""metric_min / metric_max: a headline metric compared with a floor or a ceiling."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..products import Finding
from ..scoring.classification import SCALAR_METRICS
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence


class MetricParams(RuleParams):
    metric: str = Field(description=f"one of {', '.join(SCALAR_METRICS)} or top_<k>_accuracy")
    threshold: float
    bound: Literal["lower", "upper"] = "lower"


class _MetricRule(Rule[MetricParams]):
    _bound: str

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        value = evidence.metrics.scalar(p.metric)
        if self._bound == "lower":
            failed = value < p.threshold
            rel = "below the floor" if failed else "at or above the floor"
        else:
            failed = value > p.threshold
            rel = "above the ceiling" if failed else "at or below the ceiling"
        extra = ""
        ci = evidence.metrics.interval(p.metric)
        if ci is not None:
            lo, hi = ci
            extra = f" (95 % CI {lo:.3f}–{hi:.3f})"
        msg = f"{p.metric} = {value:.4f}{extra}, {rel} {p.threshold:.4f}"
        crit = Criterion(p.metric, "metric value", "below" if self._bound == "lower" else "above")
        return [self.finding(failed, msg, value, p.threshold, criterion=crit)]


class MetricMin(_MetricRule):
    kind = "metric_min"
    title = "Metric floor"
    criterion = Criterion("the named metric", "metric value", "below")
    examples = ({"metric": "{metric}", "threshold": 0.5},)
    _bound = "lower"


class MetricMax(_MetricRule):
    kind = "metric_max"
    title = "Metric ceiling"
    criterion = Criterion("the named metric", "metric value", "above")
    examples = ({"metric": "{metric}", "threshold": 0.5},)
    _bound = "upper"
