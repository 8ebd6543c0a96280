"""Does one property alone predict a class? Cross-validated ROC AUC of a small model on that property only,
per class (one-vs-rest), with a DeLong 95 % interval.

The small model is a smoothed lookup table: a numeric property is cut into up to ``bins`` quantile bins (edges
fitted on the training folds; a missing value is its own bin), a categorical one keeps its categories; the
score of a held-out sample is P(class | its bin) estimated on the training folds, shrunk towards the class prior
by ``PSEUDO`` pseudo-counts (which also damps the slight pessimism of out-of-fold estimates of an uninformative
property). About sqrt(n) bins (3 to ``bins``). It captures non-monotone relations (a class at medium brightness) that a plain correlation
misses, and with out-of-fold scores a property that merely has many distinct values earns nothing. AUC 0.5 =
the property says nothing about the class; Zech et al. (2018) found the hospital alone predicted pneumonia
with AUC 0.861.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata
from sklearn.model_selection import KFold, StratifiedKFold

PSEUDO = 10.0


def delong(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """ROC AUC and its DeLong standard error (midranks: ties count one half)."""
    x, y = scores[positive], scores[~positive]
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        return math.nan, math.nan
    tz = rankdata(np.concatenate([x, y]))
    tx, ty = rankdata(x), rankdata(y)
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v01 = (tz[:m] - tx) / n
    v10 = 1.0 - (tz[m:] - ty) / m
    var = (v01.var(ddof=1) / m if m > 1 else 0.0) + (v10.var(ddof=1) / n if n > 1 else 0.0)
    return float(auc), float(math.sqrt(max(var, 0.0)))


def _bin(values: np.ndarray, categorical: bool, train: np.ndarray, bins: int) -> np.ndarray:
    """Bin index of every sample; edges from the training rows; missing values get bin 0."""
    if categorical:
        return values.astype(np.int64) + 1  # codes >= 0; -1 = missing -> 0
    ok = np.isfinite(values)
    tr = values[train & ok]
    if len(tr) == 0:
        return np.zeros(len(values), dtype=np.int64)
    edges = np.unique(np.quantile(tr, np.linspace(0, 1, bins + 1)[1:-1]))
    out = np.zeros(len(values), dtype=np.int64)
    out[ok] = np.searchsorted(edges, values[ok], side="right") + 1
    return out


def oof_scores(values: np.ndarray, targets: np.ndarray, categorical: bool, folds: int, seed: int,
               bins: int = 10) -> np.ndarray:
    """Out-of-fold P(target k | property bin), shape (n, K), for binary targets (n, K)."""
    n, K = targets.shape
    strat = targets.argmax(1) if (targets.sum(1) == 1).all() else None
    counts = np.bincount(strat, minlength=K) if strat is not None else None
    k = folds
    if counts is not None:
        k = int(min(folds, counts[counts > 0].min()))
    k = max(2, min(k, n))
    splitter = (StratifiedKFold(n_splits=k, shuffle=True, random_state=seed) if strat is not None and k <= counts.min()
                else KFold(n_splits=k, shuffle=True, random_state=seed))
    out = np.zeros((n, K))
    for tr_idx, te_idx in splitter.split(np.zeros(n), strat if strat is not None else None):
        tr = np.zeros(n, dtype=bool)
        tr[tr_idx] = True
        b = _bin(values, categorical, tr, int(min(bins, max(3, round(math.sqrt(len(tr_idx)))))))
        B = int(b.max()) + 1
        prior = targets[tr_idx].mean(0)
        cnt = np.bincount(b[tr_idx], minlength=B).astype(float)
        for j in range(K):
            pos = np.bincount(b[tr_idx], weights=targets[tr_idx, j], minlength=B)
            out[te_idx, j] = ((pos + PSEUDO * prior[j]) / (cnt + PSEUDO))[b[te_idx]]
    return out


def property_aucs(values: np.ndarray, targets: np.ndarray, categorical: bool, folds: int = 5, seed: int = 0,
                  min_positive: int = 5) -> list[dict]:
    """Per group k: {"auc", "ci95", "n_positive"} of the property alone (None where too few samples)."""
    scores = oof_scores(values, targets, categorical, folds, seed)
    out = []
    for j in range(targets.shape[1]):
        pos = targets[:, j] > 0
        if pos.sum() < min_positive or (~pos).sum() < min_positive:
            out.append({"auc": None, "ci95": None, "n_positive": int(pos.sum())})
            continue
        auc, se = delong(scores[:, j], pos)
        out.append({"auc": auc, "ci95": [max(0.0, auc - 1.96 * se), min(1.0, auc + 1.96 * se)],
                    "n_positive": int(pos.sum())})
    return out
