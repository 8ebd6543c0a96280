"""Ranking and threshold metrics of one score against 0/1 truth: ROC-AUC and average precision (scikit-learn's
definitions, computed for many bootstrap weightings at once), confusion counts at a threshold, Wilson intervals,
ROC / PR curves and a threshold chosen at a stated target.

Bootstrap resamples are weight matrices (R, n) of how often each sample is drawn; with all weights 1 the figures
equal ``sklearn.metrics.roc_auc_score`` and ``average_precision_score`` (tests check both).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

BOOTSTRAP_RESAMPLES = 1000
MAX_CURVE_POINTS = 200


def _groups(scores: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sort order and the start of each run of tied scores in that order."""
    order = np.argsort(-scores if descending else scores, kind="mergesort")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    return order, starts


def weighted_auroc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC-AUC (ties count one half) for weightings ``w`` (R, n) of samples with truth ``y`` (n,) and scores ``s``;
    NaN where a weighting has no positive or no negative."""
    order, starts = _groups(s, descending=False)
    wp = (w * y)[:, order]
    wn = (w * (1 - y))[:, order]
    pos_g = np.add.reduceat(wp, starts, axis=1)
    neg_g = np.add.reduceat(wn, starts, axis=1)
    neg_before = np.cumsum(neg_g, axis=1) - neg_g
    num = (pos_g * (neg_before + 0.5 * neg_g)).sum(axis=1)
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def weighted_average_precision(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average precision (scikit-learn's step-wise sum of precision x recall increments over distinct thresholds)
    for weightings ``w`` (R, n); NaN where a weighting has no positive."""
    order, starts = _groups(s, descending=True)
    wp = (w * y)[:, order]
    wa = w[:, order]
    tp = np.cumsum(np.add.reduceat(wp, starts, axis=1), axis=1)
    allw = np.cumsum(np.add.reduceat(wa, starts, axis=1), axis=1)
    pos_g = np.diff(np.concatenate([np.zeros((len(w), 1)), tp], axis=1), axis=1)
    total = tp[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(allw > 0, tp / np.where(allw > 0, allw, 1.0), 0.0)
        return np.where(total > 0, (pos_g * precision).sum(axis=1) / np.where(total > 0, total, 1.0), np.nan)


def bootstrap(stat: Callable[[np.ndarray], np.ndarray], n: int, seed: int,
              resamples: int = BOOTSTRAP_RESAMPLES) -> np.ndarray:
    """``stat`` of ``resamples`` bootstrap weightings (R, n) of n samples, drawn in memory-bounded chunks from
    ``seed``: the same seed gives the same resamples, so figures bootstrapped with one seed are paired."""
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // max(n, 1))
    out = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        out.append(stat(rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)))
    return np.concatenate(out)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if len(v) < 0.5 * len(values) or len(v) == 0:  # most resamples lost a class: no honest interval
        return (float("nan"), float("nan"))
    a = (1 - level) / 2
    lo, hi = np.quantile(v, [a, 1 - a])
    return (float(lo), float(hi))


def wilson(k: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n (NaN for n = 0)."""
    if n <= 0:
        return (float("nan"), float("nan"))
    z = float(norm.ppf(0.5 + level / 2))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


@dataclass(frozen=True)
class AtThreshold:
    """Confusion counts and the rates a reviewer asks for at one operating threshold (score >= threshold is
    positive), each rate with its Wilson 95 % interval."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    def rate(self, name: str) -> float:
        k, n = self._fraction(name)
        return float(k / n) if n else float("nan")

    def interval(self, name: str) -> tuple[float, float]:
        return wilson(*self._fraction(name))

    def _fraction(self, name: str) -> tuple[int, int]:
        tp, fp, tn, fn = self.tp, self.fp, self.tn, self.fn
        return {"sensitivity": (tp, tp + fn), "specificity": (tn, tn + fp), "ppv": (tp, tp + fp),
                "npv": (tn, tn + fn), "accuracy": (tp + tn, tp + tn + fp + fn)}[name]

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return float(2 * self.tp / d) if d else float("nan")


def at_threshold(y: np.ndarray, s: np.ndarray, threshold: float) -> AtThreshold:
    p = s >= threshold
    t = y.astype(bool)
    return AtThreshold(float(threshold), int((p & t).sum()), int((p & ~t).sum()), int((~p & ~t).sum()),
                       int((~p & t).sum()))


TARGET = re.compile(r"^(sensitivity|specificity|precision)>=(.+)$")


def choose_threshold(y: np.ndarray, s: np.ndarray, rule: str) -> float:
    """The operating threshold a target asks for, chosen on these scores: 'sensitivity>=x' — the highest threshold
    still reaching sensitivity x (the most specific such point); 'specificity>=x' — the lowest threshold reaching
    specificity x; 'precision>=x' — the lowest threshold reaching precision x (the most sensitive); 'youden' —
    the threshold maximising sensitivity + specificity − 1; 'f1' — the threshold maximising F1 (the highest such
    threshold on ties). NaN when no threshold reaches the target."""
    y = y.astype(bool)
    order = np.argsort(-s, kind="mergesort")
    ss, yy = s[order], y[order]
    last = np.r_[np.flatnonzero(ss[1:] != ss[:-1]), len(ss) - 1]  # last row of each distinct score, descending
    cands = ss[last]
    tp = np.cumsum(yy)[last]
    fp = np.cumsum(~yy)[last]
    pos, neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    sens, spec = tp / pos, 1 - fp / neg
    if rule == "youden":
        return float(cands[int(np.argmax(sens + spec - 1))])
    if rule == "f1":
        return float(cands[int(np.argmax(2 * tp / np.maximum(tp + fp + pos, 1)))])  # 2TP / (2TP + FP + FN)
    m = TARGET.match(rule)
    if m is None:
        raise ValueError(f"unknown operating point {rule!r}")
    what, target = m.group(1), float(m.group(2))
    value = {"sensitivity": sens, "specificity": spec, "precision": tp / np.maximum(tp + fp, 1)}[what]
    ok = np.flatnonzero(value >= target - 1e-12)
    if len(ok) == 0:
        return float("nan")
    return float(cands[ok.min() if what == "sensitivity" else ok.max()])  # cands run from high to low


def curve(xs: np.ndarray, ys: np.ndarray) -> list[list[float]]:
    """At most MAX_CURVE_POINTS (x, y) points of a curve, first and last kept (for results.json and plots)."""
    if len(xs) > MAX_CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(xs) - 1, MAX_CURVE_POINTS).round().astype(int))
        xs, ys = xs[keep], ys[keep]
    return [[float(a), float(b)] for a, b in zip(xs, ys, strict=True)]
