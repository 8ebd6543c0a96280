"""Metrics of one label scored by a probability against 0/1 truth — the unit of binary and multi-label audits:
ROC-AUC and average precision with bootstrap intervals, sensitivity / specificity / PPV / NPV / F1 at the operating
threshold with Wilson intervals, ROC and PR curves, reliability of the probability."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from .classification import ECE_BINS, Calibration
from .ranking import (
    AtThreshold,
    at_threshold,
    bootstrap,
    curve,
    percentile_interval,
    weighted_auroc,
    weighted_average_precision,
)

NAN2 = (float("nan"), float("nan"))
RATES = ("sensitivity", "specificity", "ppv", "npv", "accuracy")


@dataclass(frozen=True)
class LabelMetrics:
    name: str
    n_positive: int
    n_negative: int
    auroc: float
    auroc_ci: tuple[float, float]
    auprc: float  # average precision
    auprc_ci: tuple[float, float]
    prevalence: float
    op: AtThreshold  # counts at the operating threshold
    threshold_source: str  # "default 0.5", "model.threshold", "chosen on the held-out set (sensitivity>=0.95)"
    brier: float
    calibration: Calibration
    roc: list[list[float]]  # (false-positive rate, sensitivity) points
    pr: list[list[float]]  # (recall, precision) points

    def scalar(self, name: str) -> float:
        if name in RATES:
            return self.op.rate(name)
        values = {"auroc": self.auroc, "auprc": self.auprc, "f1": self.op.f1, "brier": self.brier,
                  "ece": self.calibration.ece, "threshold": self.op.threshold, "prevalence": self.prevalence}
        if name not in values:
            raise KeyError(name)
        return float(values[name])

    def interval(self, name: str) -> tuple[float, float] | None:
        if name in RATES:
            return self.op.interval(name)
        return {"auroc": self.auroc_ci, "auprc": self.auprc_ci}.get(name)


def probability_calibration(y: np.ndarray, s: np.ndarray, bins: int = ECE_BINS) -> Calibration:
    """Reliability of a probability: equal-width bins of ``s``, mean probability vs fraction positive per bin."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, s, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    mean_p = np.bincount(which, weights=s, minlength=bins)
    frac = np.bincount(which, weights=y.astype(float), minlength=bins)
    conf: list[float | None] = []
    acc: list[float | None] = []
    ece = mce = 0.0
    for i in range(bins):
        if counts[i] == 0:
            conf.append(None)
            acc.append(None)
            continue
        c, a = mean_p[i] / counts[i], frac[i] / counts[i]
        conf.append(float(c))
        acc.append(float(a))
        ece += counts[i] / len(y) * abs(c - a)
        mce = max(mce, abs(c - a))
    return Calibration(ece=float(ece), mce=float(mce), bin_edges=tuple(float(e) for e in edges),
                       bin_counts=tuple(int(c) for c in counts), bin_confidence=tuple(conf), bin_accuracy=tuple(acc))


def label_metrics(name: str, y: np.ndarray, s: np.ndarray, threshold: float, source: str,
                  seed: int) -> LabelMetrics:
    """All figures of one label; ``seed`` draws the bootstrap resamples, the same for every label of an audit (so
    intervals of averages over labels are paired)."""
    y = y.astype(np.int64)
    npos, nneg = int(y.sum()), int(len(y) - y.sum())
    both = npos > 0 and nneg > 0
    ones = np.ones((1, len(y)))
    auroc = float(weighted_auroc(y, s, ones)[0]) if both else float("nan")
    ap = float(weighted_average_precision(y, s, ones)[0]) if npos else float("nan")
    roc = pr = []
    if both:
        fpr, tpr, _ = roc_curve(y, s)
        prec, rec, _ = precision_recall_curve(y, s)
        roc, pr = curve(fpr, tpr), curve(rec[::-1], prec[::-1])
    return LabelMetrics(
        name=name, n_positive=npos, n_negative=nneg, auroc=auroc,
        auroc_ci=percentile_interval(bootstrap(lambda w: weighted_auroc(y, s, w), len(y), seed)) if both else NAN2,
        auprc=ap, auprc_ci=percentile_interval(bootstrap(lambda w: weighted_average_precision(y, s, w), len(y), seed))
        if npos else NAN2,
        prevalence=npos / max(len(y), 1), op=at_threshold(y, s, threshold), threshold_source=source,
        brier=float(np.mean((s - y) ** 2)), calibration=probability_calibration(y, s), roc=roc, pr=pr)

