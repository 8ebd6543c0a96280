"""metric_min / metric_max: a headline metric compared with a floor or a ceiling. A metric of one class or label
(``sensitivity:nodule``) or of the worst one (``min_sensitivity``) names it in the result (``details.subject``),
with its counts at the operating point for a rate."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..products import Finding
from ..scoring.classification import SCALAR_METRICS
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence

#: a rate's numerator and the other count of its denominator, as the operating point's confusion counts name them
RATE_COUNTS = {"sensitivity": ("tp", "fn"), "recall": ("tp", "fn"), "specificity": ("tn", "fp"),
               "ppv": ("tp", "fp"), "precision": ("tp", "fp"), "npv": ("tn", "fn")}


class MetricParams(RuleParams):
    metric: str = Field(description=f"one of {', '.join(SCALAR_METRICS)} or top_<k>_accuracy")
    threshold: float
    bound: Literal["lower", "upper"] = "lower"


def _counts(evidence: Evidence, base: str, group: int) -> dict[str, int]:
    """The confusion counts behind a rate of one label (multi-label, binary decisions); empty when the task keeps
    no yes/no answer per sample for that group."""
    pr = evidence.predictions
    if base not in RATE_COUNTS or pr.decisions is None:
        return {}
    if pr.labels.ndim == 2 and pr.decisions.ndim == 2:
        y, d = pr.labels[:, group] == 1, pr.decisions[:, group] == 1
    elif pr.labels.ndim == 1 and len(evidence.classes) == 2:  # binary: the positive class's rate
        y, d = pr.labels == group, pr.decisions == group
    else:
        return {}
    table = {"tp": int(np.sum(y & d)), "fp": int(np.sum(~y & d)), "tn": int(np.sum(~y & ~d)), "fn": int(np.sum(y & ~d))}
    return {k: table[k] for k in RATE_COUNTS[base]}


def subject(evidence: Evidence, metric: str) -> dict[str, Any] | None:
    """The class or label a metric is about: named in it (``dice:cat``), the worst one (``min_<metric>``: the
    first in class order among those at the minimum) or a binary model's positive class (its rates); None for a
    metric of the whole set."""
    if ":" in metric:
        base, name = metric.split(":", 1)
    elif metric.startswith("min_"):
        base, values = metric[4:], []
        for g in evidence.classes:
            try:
                v = float(evidence.metrics.scalar(f"{base}:{g}"))
            except (KeyError, ValueError):
                return None
            if math.isfinite(v):
                values.append((v, g))
        if not values:
            return None
        low = min(v for v, _ in values)
        name = next(g for v, g in values if v == low)
    elif metric in RATE_COUNTS and evidence.predictions.labels.ndim == 1 and len(evidence.classes) == 2 \
            and evidence.predictions.decisions is not None:  # a binary model's rate: of its positive class
        base, name = metric, evidence.classes[1]
    else:
        return None
    if name not in evidence.classes:
        return None
    kind = "label" if evidence.predictions.labels.ndim == 2 and evidence.predictions.decisions is not None else "class"
    return {"kind": kind, "name": name, "counts": _counts(evidence, base, evidence.classes.index(name))}


def subject_words(s: dict[str, Any]) -> str:
    """"label 'nodule' (tp 0, fn 137)"."""
    counts = ", ".join(f"{k} {v}" for k, v in s["counts"].items())
    return f"{s['kind']} '{s['name']}'" + (f" ({counts})" if counts else "")


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
        details: dict[str, Any] = {}
        about = subject(evidence, p.metric)
        if about is not None:
            details["subject"] = about
            msg += f"; {'lowest: ' if p.metric.startswith('min_') else ''}{subject_words(about)}"
        crit = Criterion(p.metric, "metric value", "below" if self._bound == "lower" else "above")
        return [self.finding(failed, msg, value, p.threshold, details=details, criterion=crit)]


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
