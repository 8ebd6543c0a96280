"""corruption_metric_min: the task's own metric (accuracy, macro AUROC, mean IoU, image AUROC) under common
corruptions reaches a floor, in each measured (corruption, severity) cell or on their mean, optionally per class
and as a share of the clean value."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from ..products import Finding
from ..robustness.corruptions import registry as corruption_registry
from ..robustness.plugins import corruption_names
from ..robustness.result import CorruptionRun
from ._robustness import Missing, fmt_ci, part
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence


class CorruptionFloorParams(RuleParams):
    threshold: float
    corruptions: list[str] = Field(default_factory=list, description="corruptions, sets or families as in "
                                   "robustness.corruptions.names; default: every one measured")
    severities: list[int] = Field(default_factory=list, description="default: every severity measured")
    aggregate: Literal["each", "mean"] = Field(default="each", description="each cell must reach the floor, or their "
                                               "mean")
    relative: bool = Field(default=False, description="the floor as a share of the clean value on the same samples")
    per_group: bool = Field(default=False, description="each class (label) too, where the task states per-group "
                            "values: the worst one counts")


class CorruptionMetricMin(Rule[CorruptionFloorParams]):
    kind = "corruption_metric_min"
    title = "Metric floor under corruption"
    criterion = Criterion("the task's metric under corruption", "metric value", "below")
    examples = ({"threshold": 0.3}, {"threshold": 0.5, "aggregate": "mean", "relative": True, "per_group": True})

    def _cells(self, run: CorruptionRun) -> list[tuple[str, int]]:
        p = self.params
        names = corruption_names(p.corruptions, corruption_registry()) if p.corruptions else list(run.names)
        missing = [n for n in names if n not in run.names]
        sev = p.severities or list(run.severities)
        missing += [f"severity {s}" for s in sev if s not in run.severities]
        if missing:
            raise Missing(f"not measured: {', '.join(missing)}; add them to robustness.corruptions")
        return [(n, s) for n in names for s in sev]

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        try:
            run: CorruptionRun = part(evidence, "corruptions")
            wanted = self._cells(run)
        except Missing as e:
            return [self.error(str(e))]
        metric = run.metric
        values: list[tuple[str, float, tuple[float, float] | None, float]] = []  # (where, value, ci, clean)
        for c, s in wanted:
            cell = run.cell(c, s)
            assert cell is not None
            values.append((f"{c} severity {s}", cell.overall.value, cell.overall.ci, run.clean.value))
            if p.per_group:
                clean = dict(run.clean_groups)
                for g, v in cell.groups:
                    values.append((f"{c} severity {s}, {g!r}", v.value, v.ci, clean[g].value if g in clean
                                   else math.nan))
        if p.relative:
            values = [(w, v / cl if cl else math.nan, None, cl) for w, v, _, cl in values]
        what = f"{metric} under corruption" + (" / clean" if p.relative else "")
        crit = Criterion(what, "share of the clean value" if p.relative else "metric value", "below")
        finite = [x for x in values if math.isfinite(x[1])]
        if not finite:
            return [self.error(f"no finite {what} among the {len(values)} values asked for")]
        details = {"metric": metric, "cells": [{"where": w, "value": v} for w, v, _, _ in values],
                   "clean": run.clean.value, "n": run.n}
        if p.aggregate == "mean":
            mean = sum(v for _, v, _, _ in finite) / len(finite)
            msg = (f"mean {what} over {len(finite)} value(s) = {mean:.4f} (clean {run.clean.value:.4f} on "
                   f"{run.n} samples); floor {p.threshold:.4f}")
            return [self.finding(mean < p.threshold, msg, mean, p.threshold, details=details, criterion=crit)]
        where, worst, ci, _ = min(finite, key=lambda x: x[1])
        below = sum(1 for _, v, _, _ in finite if v < p.threshold)
        msg = (f"{what} {worst:.4f}{fmt_ci(ci)} at {where}, the lowest of {len(finite)}; {below} below the floor "
               f"{p.threshold:.4f} (clean {run.clean.value:.4f} on {run.n} samples)")
        return [self.finding(worst < p.threshold, msg, worst, p.threshold, details={**details, "worst": where},
                             criterion=crit)]
