"""baseline_metric_drop: a headline metric may not drop by more than an absolute or relative margin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from ...products import Finding
from ..base import Criterion, RuleParams
from ..evidence import Evidence
from .base import BaselineRule


class MetricDropParams(RuleParams):
    metric: str = "accuracy"
    max_drop: float = Field(ge=0.0)
    mode: Literal["absolute", "relative"] = "absolute"
    higher_is_better: bool = True


class BaselineMetricDrop(BaselineRule[MetricDropParams]):
    kind = "baseline_metric_drop"
    title = "Metric drop since baseline"
    criterion = Criterion("drop since the baseline", "metric units", "above")
    needs = frozenset({"single_label"})  # paired intervals over samples that each have one class
    examples = ({"metric": "{metric}", "max_drop": 0.05},)

    def compare(self, comp: Mapping[str, Any], evidence: Evidence) -> list[Finding]:
        p = self.params
        d = comp["metrics"].get(p.metric)
        if d is None:
            return [self.error(f"metric {p.metric!r} is not in both results")]
        drop = (d["baseline"] - d["candidate"]) if p.higher_is_better else (d["candidate"] - d["baseline"])
        if p.mode == "relative":
            drop = drop / abs(d["baseline"]) if d["baseline"] else float("inf") if drop > 0 else 0.0
        ci = d.get("delta_ci95")
        ci_txt = f" (paired 95 % CI of the change {ci[0]:+.4f} to {ci[1]:+.4f})" if ci else ""
        unit = "" if p.mode == "absolute" else " (relative)"
        msg = (f"{p.metric} {d['baseline']:.4f} → {d['candidate']:.4f}{ci_txt}; drop {drop:.4f}{unit}, "
               f"allowed {p.max_drop:.4f}")
        crit = Criterion(f"{p.metric} drop since the baseline", "metric units" if p.mode == "absolute" else
                         "share of the baseline's value", "above")
        return [self.finding(drop > p.max_drop, msg, drop, p.max_drop, details=dict(d), criterion=crit)]
