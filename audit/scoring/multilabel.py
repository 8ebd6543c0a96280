"""Metrics of a multi-label model (independent sigmoids): every label on its own (binary figures at its
threshold), macro and micro averages with paired bootstrap intervals, exact-match and Hamming figures, the labels'
co-occurrence. Named scalars for rules: ``auroc`` (macro), ``auroc:<label>``, ``min_auroc`` (worst label),
``micro_auroc``, ``subset_accuracy``, ``hamming_loss``; likewise auprc, sensitivity, specificity, ppv, npv, f1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .labels import LabelMetrics, label_metrics
from .ranking import bootstrap, percentile_interval, weighted_auroc, weighted_average_precision

AVERAGED = ("auroc", "auprc", "sensitivity", "specificity", "ppv", "npv", "f1", "brier", "ece")
NAN2 = (float("nan"), float("nan"))


@dataclass(frozen=True)
class MultilabelMetrics:
    n: int
    labels: tuple[LabelMetrics, ...]
    macro_ci: dict[str, tuple[float, float]]  # auroc, auprc
    micro_auroc: float
    micro_auroc_ci: tuple[float, float]
    micro_auprc: float
    micro_auprc_ci: tuple[float, float]
    subset_accuracy: float
    hamming_loss: float
    cooccurrence: np.ndarray  # (K, K) samples truly positive for both labels (diagonal: for the label)

    def _label(self, name: str) -> LabelMetrics:
        for m in self.labels:
            if m.name == name:
                return m
        raise KeyError(f"no label {name!r}; labels: {', '.join(m.name for m in self.labels)}")

    def scalar(self, name: str) -> float:
        if ":" in name:
            metric, label = name.split(":", 1)
            return self._label(label).scalar(metric)
        if name.startswith("min_") and name[4:] in AVERAGED:
            values = [m.scalar(name[4:]) for m in self.labels]
            finite = [v for v in values if np.isfinite(v)]
            return float(min(finite)) if finite else float("nan")
        if name in AVERAGED:
            values = [m.scalar(name) for m in self.labels]
            finite = [v for v in values if np.isfinite(v)]
            return float(np.mean(finite)) if finite else float("nan")
        direct = {"micro_auroc": self.micro_auroc, "micro_auprc": self.micro_auprc,
                  "subset_accuracy": self.subset_accuracy, "hamming_loss": self.hamming_loss}
        if name not in direct:
            raise KeyError(f"unknown metric {name!r}; known: {', '.join(AVERAGED)} (macro over labels), "
                           f"<metric>:<label>, min_<metric>, {', '.join(direct)}")
        return float(direct[name])

    def interval(self, name: str) -> tuple[float, float] | None:
        if ":" in name:
            metric, label = name.split(":", 1)
            return self._label(label).interval(metric)
        if name in self.macro_ci:
            return self.macro_ci[name]
        return {"micro_auroc": self.micro_auroc_ci, "micro_auprc": self.micro_auprc_ci}.get(name)


def _macro(stat, y: np.ndarray, s: np.ndarray, ok: np.ndarray):
    """A bootstrap statistic: the mean over the usable labels of ``stat`` per label."""
    def run(w: np.ndarray) -> np.ndarray:
        return np.nanmean(np.stack([stat(y[:, k], s[:, k], w) for k in np.flatnonzero(ok)]), axis=0)
    return run


def multilabel_metrics(names: Sequence[str], y: np.ndarray, s: np.ndarray, thresholds: Sequence[float],
                       sources: Sequence[str], seed: int) -> MultilabelMetrics:
    """``y`` (N, K) 0/1, ``s`` (N, K) probabilities; one threshold and its source per label."""
    n, k = y.shape
    labels = tuple(label_metrics(names[j], y[:, j], s[:, j], thresholds[j], sources[j], seed) for j in range(k))
    pos = y.sum(axis=0)
    ok = (pos > 0) & (pos < n)
    macro_ci = {}
    if ok.any():
        macro_ci["auroc"] = percentile_interval(bootstrap(_macro(weighted_auroc, y, s, ok), n, seed))
        macro_ci["auprc"] = percentile_interval(bootstrap(_macro(weighted_average_precision, y, s, ok), n, seed))
    flat_y, flat_s = y.reshape(-1), s.reshape(-1)
    ones = np.ones((1, n * k))

    def micro(stat):
        return lambda w: stat(flat_y, flat_s, np.repeat(w, k, axis=1))

    have_both = 0 < flat_y.sum() < flat_y.size
    decided = s >= np.asarray(thresholds)[None, :]
    return MultilabelMetrics(
        n=n, labels=labels, macro_ci=macro_ci,
        micro_auroc=float(weighted_auroc(flat_y, flat_s, ones)[0]) if have_both else float("nan"),
        micro_auroc_ci=percentile_interval(bootstrap(micro(weighted_auroc), n, seed)) if have_both else NAN2,
        micro_auprc=float(weighted_average_precision(flat_y, flat_s, ones)[0]) if flat_y.any() else float("nan"),
        micro_auprc_ci=percentile_interval(bootstrap(micro(weighted_average_precision), n, seed))
        if flat_y.any() else NAN2,
        subset_accuracy=float((decided == (y == 1)).all(axis=1).mean()),
        hamming_loss=float((decided != (y == 1)).mean()),
        cooccurrence=(y.T @ y).astype(np.int64),
    )
