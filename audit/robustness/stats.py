"""Separating in-distribution from out-of-distribution scores: AUROC with a DeLong interval, FPR at 95 % TPR
with a stratified bootstrap interval.

Scores are OOD scores (higher = more likely out-of-distribution). AUROC = P(score(OOD) > score(ID)) + half the
ties. Its standard error is DeLong et al.'s (1988), computed with Sun & Xu's (2014) midrank algorithm
(``audit.datachecks.predictive.delong``, shared with the data checks); the interval is AUROC +- z SE, clipped to
[0, 1]. FPR at 95 % TPR follows Hendrycks & Gimpel (2017) / Liang et al. (2018) with in-distribution as the
positive class: the threshold accepts (score <= t) the smallest share of ID samples that reaches 95 %, and the
FPR is the share of OOD samples it also accepts (``positive="out"`` gives pytorch-ood's convention instead: OOD
positive, the share of ID flagged when 95 % of OOD are). DeLong's method does not apply to a rate at an
estimated threshold, so that interval is a percentile bootstrap that resamples ID and OOD separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import norm

from audit.datachecks.predictive import delong

Positive = Literal["in", "out"]


def auroc_delong(id_scores: np.ndarray, ood_scores: np.ndarray, level: float = 0.95
                 ) -> tuple[float, tuple[float, float], float]:
    """AUROC (OOD as the positive class), its DeLong interval and standard error."""
    s = np.concatenate([np.asarray(ood_scores, float), np.asarray(id_scores, float)])
    pos = np.zeros(len(s), dtype=bool)
    pos[:len(ood_scores)] = True
    auc, se = delong(s, pos)
    z = float(norm.ppf(0.5 + level / 2))
    if math.isnan(auc):
        return auc, (math.nan, math.nan), se
    return auc, (max(0.0, auc - z * se), min(1.0, auc + z * se)), se


def _fpr_sorted(pos_sorted: np.ndarray, neg: np.ndarray, tpr: float) -> np.ndarray:
    """Rows of ascending positive scores (R, m) (positives accepted when score <= t) and negatives (R, n):
    the share of negatives accepted at the smallest threshold that accepts >= tpr of the positives."""
    m = pos_sorted.shape[1]
    k = max(math.ceil(tpr * m - 1e-12), 1)
    t = pos_sorted[:, k - 1:k]
    return (neg <= t).mean(1)


def fpr_at_tpr(id_scores: np.ndarray, ood_scores: np.ndarray, tpr: float = 0.95, positive: Positive = "in"
               ) -> float:
    """FPR at ``tpr`` true-positive rate (see the module docstring for the two conventions)."""
    i, o = np.asarray(id_scores, float), np.asarray(ood_scores, float)
    if len(i) == 0 or len(o) == 0:
        return math.nan
    if positive == "in":
        return float(_fpr_sorted(np.sort(i)[None], o[None], tpr)[0])
    return float(_fpr_sorted(np.sort(-o)[None], -i[None], tpr)[0])


def fpr_interval(id_scores: np.ndarray, ood_scores: np.ndarray, tpr: float = 0.95, positive: Positive = "in",
                 resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``fpr_at_tpr``, ID and OOD resampled separately."""
    i, o = np.asarray(id_scores, float), np.asarray(ood_scores, float)
    if len(i) == 0 or len(o) == 0:
        return (math.nan, math.nan)
    pos, neg = (i, o) if positive == "in" else (-o, -i)
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // max(len(pos) + len(neg), 1))
    vals = []
    for start in range(0, resamples, chunk):
        r = min(chunk, resamples - start)
        p = np.sort(pos[rng.integers(0, len(pos), (r, len(pos)))], axis=1)
        n = neg[rng.integers(0, len(neg), (r, len(neg)))]
        vals.append(_fpr_sorted(p, n, tpr))
    v = np.concatenate(vals)
    a = (1 - level) / 2
    lo, hi = np.quantile(v, [a, 1 - a])
    return (float(lo), float(hi))


@dataclass(frozen=True)
class Separation:
    """How well OOD scores separate an OOD set from the in-distribution set."""

    n_id: int
    n_ood: int
    auroc: float
    auroc_interval: tuple[float, float]
    fpr95: float
    fpr95_interval: tuple[float, float]
    fpr_convention: Positive = "in"


def separation(id_scores: np.ndarray, ood_scores: np.ndarray, seed: int = 0, positive: Positive = "in"
               ) -> Separation:
    auc, ci, _ = auroc_delong(id_scores, ood_scores)
    return Separation(len(id_scores), len(ood_scores), auc, ci, fpr_at_tpr(id_scores, ood_scores, 0.95, positive),
                      fpr_interval(id_scores, ood_scores, 0.95, positive, seed=seed), positive)
