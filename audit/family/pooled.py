"""Per-member figures and what is pooled or judged across members: metric values with their intervals, the pooled
out-of-fold predictions (confusion matrix and metrics), and the released member against the others."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..products import Predictions
from ..tasks.base import Task, TaskMetrics
from .members import concat, subset
from .result import MemberRun, Pooled, ReleasedCheck
from .stats import prediction_interval


def metric_values(metrics: TaskMetrics, names: Sequence[str]) -> tuple[dict[str, float], dict[str, tuple[float, float] | None]]:
    """The named scalars (NaN for one the task does not compute) and their intervals where the task has one."""
    values: dict[str, float] = {}
    intervals: dict[str, tuple[float, float] | None] = {}
    for name in names:
        try:
            values[name] = float(metrics.scalar(name))
            intervals[name] = metrics.interval(name)
        except (KeyError, ValueError):
            values[name], intervals[name] = math.nan, None
    return values, intervals


def confusion(p: Predictions, k: int) -> np.ndarray | None:
    """(K, K) counts, rows = true class, columns = answer; None when a sample has several labels."""
    if p.labels.ndim != 1:
        return None
    out = np.zeros((k, k), dtype=np.int64)
    np.add.at(out, (p.labels.astype(np.int64), np.asarray(p.preds, dtype=np.int64)), 1)
    return out


def pool(members: Sequence[MemberRun], all_predictions: dict[str, Predictions], folds: dict[str, np.ndarray | None],
         task: Task, names: Sequence[str], seed: int, subgroups: Sequence[str]) -> Pooled | None:
    """Each declared fold's rows with the answers of the member that did not train on them (two folds or more)."""
    declared = [m.name for m in members if m.trained and folds.get(m.name) is not None]
    if len(declared) < 2:
        return None
    parts = [subset(all_predictions[name], folds[name]) for name in declared]  # type: ignore[arg-type]
    preds = concat(parts)
    metrics = task.metrics(preds, np.random.default_rng(seed), subgroups)
    values, intervals = metric_values(metrics, names)
    return Pooled(tuple(declared), preds, metrics, values, intervals, confusion(preds, len(task.classes)))


def released_check(members: Sequence[MemberRun], metric: str, level: float) -> ReleasedCheck | None:
    """Is the released member's ``metric`` outside the prediction interval the other trained members give?"""
    released = next((m for m in members if m.role == "released"), None)
    if released is None:
        return None
    value = released.values.get(metric, math.nan)
    others = np.array([m.values.get(metric, math.nan) for m in members if m.role == "member"])
    others = others[np.isfinite(others)]
    interval = prediction_interval(others, level)
    outlier = None if interval is None or not math.isfinite(value) else not interval[0] <= value <= interval[1]
    return ReleasedCheck(released.name, metric, value, interval, outlier, len(others))
