"""Metrics of a classifier's predictions, computed with scikit-learn."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from ..products import Predictions

ECE_BINS = 15
BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class ClassMetrics:
    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Calibration:
    """Equal-width confidence bins of the top-1 prediction."""

    ece: float
    mce: float
    bin_edges: tuple[float, ...]
    bin_counts: tuple[int, ...]
    bin_confidence: tuple[float | None, ...]
    bin_accuracy: tuple[float | None, ...]


@dataclass(frozen=True)
class GroupMetrics:
    column: str
    value: str
    n: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    balanced_accuracy: float
    macro_f1: float


@dataclass(frozen=True)
class Metrics:
    n: int
    accuracy: float
    accuracy_ci: tuple[float, float]  # 95 % percentile bootstrap
    balanced_accuracy: float
    macro_f1: float
    weighted_f1: float
    nll: float
    brier: float
    top_k: dict[int, float]
    per_class: tuple[ClassMetrics, ...]
    confusion: np.ndarray  # (C, C) counts, rows = true class
    confusion_normalized: np.ndarray  # rows sum to 1 (0 for an empty row)
    calibration: Calibration
    subgroups: tuple[GroupMetrics, ...] = field(default=())

    def scalar(self, name: str) -> float:
        """A headline metric by name: accuracy, balanced_accuracy, macro_f1, weighted_f1, ece, mce, nll,
        brier, top_<k>_accuracy."""
        direct = {
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "macro_f1": self.macro_f1,
            "weighted_f1": self.weighted_f1,
            "ece": self.calibration.ece,
            "mce": self.calibration.mce,
            "nll": self.nll,
            "brier": self.brier,
        }
        if name in direct:
            return float(direct[name])
        if name.startswith("top_") and name.endswith("_accuracy"):
            k = int(name[4:-9])
            if k in self.top_k:
                return self.top_k[k]
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(SCALAR_METRICS)}, top_<k>_accuracy")

    def interval(self, name: str) -> tuple[float, float] | None:
        """The 95 % bootstrap interval of a headline metric, where one is computed."""
        return self.accuracy_ci if name == "accuracy" else None


SCALAR_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "ece", "mce", "nll", "brier")


def bootstrap_accuracy_ci(
    correct: np.ndarray, rng: np.random.Generator, resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a 0/1 vector (vectorised, chunked for memory)."""
    n = len(correct)
    if n == 0:
        return (float("nan"), float("nan"))
    c = correct.astype(np.float64)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = c[idx].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def calibration(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> Calibration:
    """Expected and maximum calibration error over equal-width bins of top-1 confidence."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin i holds (edges[i], edges[i+1]]; confidence 0 goes to the first bin
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    sum_conf = np.bincount(which, weights=conf, minlength=bins)
    sum_acc = np.bincount(which, weights=correct.astype(float), minlength=bins)
    n = len(labels)
    ece, mce = 0.0, 0.0
    bconf: list[float | None] = []
    bacc: list[float | None] = []
    for i in range(bins):
        if counts[i] == 0:
            bconf.append(None)
            bacc.append(None)
            continue
        mc, ma = sum_conf[i] / counts[i], sum_acc[i] / counts[i]
        bconf.append(float(mc))
        bacc.append(float(ma))
        gap = abs(mc - ma)
        ece += counts[i] / n * gap
        mce = max(mce, gap)
    return Calibration(
        ece=float(ece),
        mce=float(mce),
        bin_edges=tuple(float(e) for e in edges),
        bin_counts=tuple(int(c) for c in counts),
        bin_confidence=tuple(bconf),
        bin_accuracy=tuple(bacc),
    )


def _group_metrics(column: str, value: Any, labels: np.ndarray, preds: np.ndarray, C: int,
                   rng: np.random.Generator) -> GroupMetrics:
    return GroupMetrics(
        column=column,
        value=str(value),
        n=len(labels),
        accuracy=float(accuracy_score(labels, preds)),
        accuracy_ci=bootstrap_accuracy_ci(labels == preds, rng),
        balanced_accuracy=_balanced_accuracy(labels, preds),
        macro_f1=float(f1_score(labels, preds, average="macro", zero_division=0)),
    )


def _balanced_accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    """scikit-learn's balanced accuracy (mean recall over classes present in y_true), without its warning
    for predicted classes absent from y_true."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(labels, preds))


def score(preds: Predictions, classes: tuple[str, ...], rng: np.random.Generator,
          subgroups: tuple[str, ...] = ()) -> Metrics:
    """All metrics of the audit for one prediction table."""
    C = len(classes)
    y, p, probs = preds.labels, preds.preds, preds.probs
    all_labels = np.arange(C)
    prec, rec, f1, sup = precision_recall_fscore_support(y, p, labels=all_labels, zero_division=0)
    cm = confusion_matrix(y, p, labels=all_labels)
    rows = cm.sum(axis=1, keepdims=True)
    cm_norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    top_k: dict[int, float] = {}
    for k in (2, 3, 5):
        if k < C:
            top_k[k] = float(top_k_accuracy_score(y, probs, k=k, labels=all_labels))
    onehot = np.eye(C)[y]
    clipped = np.clip(probs, 1e-15, 1.0)
    nll = float(log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=all_labels))
    groups: list[GroupMetrics] = []
    for col in subgroups:
        values = preds.metadata[col].astype(str)
        for v in sorted(set(values.tolist())):
            m = (values == v).to_numpy()  # pandas compares the Python strings; numpy would strip a trailing NUL
            groups.append(_group_metrics(col, v, y[m], p[m], C, rng))
    return Metrics(
        n=preds.n,
        accuracy=float(accuracy_score(y, p)),
        accuracy_ci=bootstrap_accuracy_ci(y == p, rng),
        balanced_accuracy=_balanced_accuracy(y, p),
        macro_f1=float(f1_score(y, p, average="macro", zero_division=0)),
        weighted_f1=float(f1_score(y, p, labels=all_labels, average="weighted", zero_division=0)),
        nll=nll,
        brier=float(np.mean(np.sum((probs - onehot) ** 2, axis=1))),
        top_k=top_k,
        per_class=tuple(
            ClassMetrics(classes[i], float(prec[i]), float(rec[i]), float(f1[i]), int(sup[i])) for i in range(C)
        ),
        confusion=cm,
        confusion_normalized=cm_norm,
        calibration=calibration(probs, y),
        subgroups=tuple(groups),
    )
