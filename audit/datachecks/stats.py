"""Property-alone AUCs from streamed sufficient statistics (nothing per image is kept).

Each numeric value is quantised (``quantise``: 8 significant bits, so it moves by at most 2^-8 = 0.4 % of itself;
magnitudes below ``TINY`` become 0; NaN and infinities are missing); a categorical value is kept as it is. Each
sample falls in one of ``FOLDS`` folds by a seeded hash of its id (``folds_of``: no shuffle, so it does not
depend on the listing's order). The statistic of a property (``Cells``) is a table: (fold, quantised value) ->
number of samples and number of positives per group, accumulated batch by batch and merged by addition. Its
size is the number of distinct quantised values x FOLDS x (groups + 1) counters, whatever the number of images.

From the table (``property_aucs``) comes exactly what a per-image computation gives on the quantised values:
the small model of ``predictive.py`` (a lookup table over quantile bins fitted on the other folds, smoothed
towards the prior) scores every cell out of fold, and the ROC AUC of those scores per group with its DeLong
standard error follows from the scores' ranks (the samples of one cell share a score; ties count one half).
The quantile edges are order statistics (the inverted empirical CDF, computed in integers), so they are data
values and no interpolation rounds differently. Tested against scikit-learn's ``roc_auc_score`` and the
per-image DeLong of ``predictive.delong`` on the per-image scores.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

FOLDS = 5
BITS = 8  # significant bits kept by ``quantise``
TINY = 2.0 ** -40  # magnitudes below this are 0
PSEUDO = 10.0  # pseudo-counts towards the training prior (as predictive.py)
MISSING: Hashable = None  # the key of a missing value


def quantise(values: np.ndarray) -> np.ndarray:
    """float64 values rounded to ``BITS`` significant bits (round half to even); NaN for missing or infinite."""
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    ok = np.isfinite(v)
    m, e = np.frexp(np.where(np.abs(v) < TINY, 0.0, v[...]))
    q = np.ldexp(np.round(m * 2.0 ** BITS) / 2.0 ** BITS, e)
    out[ok] = q[ok]
    return out


def folds_of(ids: Sequence[str], seed: int, folds: int = FOLDS) -> np.ndarray:
    """(n,) int64 fold of each sample id: the first 8 bytes of BLAKE2b(seed, id), modulo ``folds``."""
    key = str(int(seed)).encode() + b"\0"
    return np.fromiter((int.from_bytes(hashlib.blake2b(key + str(s).encode(), digest_size=8).digest(), "little")
                        % folds for s in ids), dtype=np.int64, count=len(ids))


class Cells:
    """The streamed statistic of one property: per (quantised value, fold) the number of samples and of positives
    per group. ``add`` a batch at a time (values: floats, or strings with "" = missing, when categorical)."""

    def __init__(self, n_groups: int, categorical: bool, folds: int = FOLDS) -> None:
        self.n_groups, self.categorical, self.folds = n_groups, categorical, folds
        self._row: dict[Hashable, int] = {}
        self._n = np.zeros((8, folds), dtype=np.int64)
        self._pos = np.zeros((8, folds, n_groups), dtype=np.int64)

    def _rows_of(self, keys: list[Hashable]) -> np.ndarray:
        out = np.empty(len(keys), dtype=np.int64)
        for i, k in enumerate(keys):
            r = self._row.get(k)
            if r is None:
                r = self._row[k] = len(self._row)
            out[i] = r
        if len(self._row) > len(self._n):
            cap = max(2 * len(self._n), len(self._row))
            self._n = np.concatenate([self._n, np.zeros((cap - len(self._n), self.folds), dtype=np.int64)])
            self._pos = np.concatenate([self._pos, np.zeros((cap - len(self._pos), self.folds, self.n_groups),
                                                            dtype=np.int64)])
        return out

    def add(self, values: np.ndarray, fold: np.ndarray, targets: np.ndarray) -> None:
        """``values`` (n,), ``fold`` (n,) ints, ``targets`` (n, groups) 0/1."""
        if not len(values):
            return
        if self.categorical:
            raw = np.asarray(values).astype(str)
            uniq, inv = np.unique(raw, return_inverse=True)
            keys: list[Hashable] = [MISSING if u == "" else str(u) for u in uniq.tolist()]
        else:
            q = quantise(values)
            miss = np.isnan(q)
            uniq, inv = np.unique(np.where(miss, np.inf, q), return_inverse=True)  # inf: the missing key
            keys = [MISSING if math.isinf(u) else float(u) for u in uniq.tolist()]
        rows = self._rows_of(keys)[inv.ravel()]
        np.add.at(self._n, (rows, fold), 1)
        np.add.at(self._pos, (rows, fold), np.asarray(targets, dtype=np.int64))

    def merge(self, other: Cells) -> None:
        keys = list(other._row)
        if not keys:
            return
        rows = self._rows_of(keys)
        src = np.fromiter((other._row[k] for k in keys), dtype=np.int64, count=len(keys))
        self._n[rows] += other._n[src]
        self._pos[rows] += other._pos[src]

    def table(self) -> tuple[list[Hashable], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(present keys in ascending order, n (M, F), pos (M, F, K), missing n (F,), missing pos (F, K))."""
        present = sorted((k for k in self._row if k is not MISSING), key=lambda k: k)  # type: ignore[arg-type,return-value]
        idx = np.array([self._row[k] for k in present], dtype=np.int64)
        miss = self._row.get(MISSING)
        zeros_n, zeros_p = np.zeros(self.folds, dtype=np.int64), np.zeros((self.folds, self.n_groups), dtype=np.int64)
        return (present, self._n[idx], self._pos[idx], self._n[miss] if miss is not None else zeros_n,
                self._pos[miss] if miss is not None else zeros_p)

    @property
    def n_samples(self) -> int:
        return int(self._n.sum())

    @property
    def n_missing(self) -> int:
        miss = self._row.get(MISSING)
        return int(self._n[miss].sum()) if miss is not None else 0

    @property
    def n_values(self) -> int:
        """Distinct present (quantised) values."""
        return len(self._row) - (MISSING in self._row)


def quantile_edges(counts: np.ndarray, n_bins: int) -> np.ndarray:
    """Indices into the ascending distinct values (with ``counts``) of the bin edges: for i = 1 … n_bins - 1 the
    smallest value whose empirical CDF reaches i / n_bins (the inverted CDF, in integers), without repeats."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(counts) * n_bins
    want = np.arange(1, n_bins, dtype=np.int64) * total
    return np.unique(np.searchsorted(cum, want, side="left"))


def bins_of(n_rows: int, bins: int) -> int:
    """Number of quantile bins for ``n_rows`` training samples: about sqrt(n), 3 to ``bins`` (as predictive.py)."""
    return int(min(bins, max(3, round(math.sqrt(n_rows)))))


def oof_cell_scores(cells: Cells, bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold scores of every cell: (scores (M + 1, F, K), n (M + 1, F), pos (M + 1, F, K)); row 0 is the
    missing value, rows 1 … M the present values in ascending order."""
    keys, n, pos, n_miss, pos_miss = cells.table()
    n_all = np.concatenate([n_miss[None], n])
    pos_all = np.concatenate([pos_miss[None], pos])
    M, F, K = len(keys), cells.folds, cells.n_groups
    scores = np.zeros((M + 1, F, K))
    for f in range(F):
        if not n_all[:, f].any():
            continue
        train_n = n_all.sum(1) - n_all[:, f]  # (M + 1,)
        train_pos = pos_all.sum(1) - pos_all[:, f]  # (M + 1, K)
        n_train = int(train_n.sum())
        if n_train == 0:
            continue  # no other fold has samples: the fold has no out-of-fold model (scores stay 0)
        coarse = np.zeros(M + 1, dtype=np.int64)  # the missing value: bin 0
        if cells.categorical:
            coarse[1:] = np.arange(1, M + 1)
        elif train_n[1:].sum() > 0:
            edges = quantile_edges(train_n[1:], bins_of(n_train, bins))
            # a value's bin: 1 + the number of edges at or below it (searchsorted 'right' on the edge values)
            coarse[1:] = np.searchsorted(edges, np.arange(M), side="right") + 1
        B = int(coarse.max()) + 1
        cnt = np.bincount(coarse, weights=train_n, minlength=B)
        prior = train_pos.sum(0) / n_train
        for k in range(K):
            pk = np.bincount(coarse, weights=train_pos[:, k], minlength=B)
            scores[:, f, k] = ((pk + PSEUDO * prior[k]) / (cnt + PSEUDO))[coarse]
    return scores, n_all, pos_all


def grouped_delong(scores: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray) -> tuple[float, float]:
    """ROC AUC and its DeLong standard error of samples given as groups that share a score: ``n_pos`` positives
    and ``n_neg`` negatives at ``scores`` (midranks: ties count one half)."""
    uniq, inv = np.unique(scores, return_inverse=True)
    P = np.bincount(inv.ravel(), weights=n_pos, minlength=len(uniq))
    Q = np.bincount(inv.ravel(), weights=n_neg, minlength=len(uniq))
    m, n = P.sum(), Q.sum()
    if m == 0 or n == 0:
        return math.nan, math.nan
    v10 = (np.cumsum(Q) - Q + 0.5 * Q) / n  # per positive at a score: negatives below, ties one half
    v01 = (m - np.cumsum(P) + 0.5 * P) / m  # per negative: positives above, ties one half
    auc = float((P * v10).sum() / m)
    s10 = float((P * (v10 - auc) ** 2).sum() / (m - 1)) if m > 1 else 0.0
    s01 = float((Q * (v01 - auc) ** 2).sum() / (n - 1)) if n > 1 else 0.0
    return auc, math.sqrt(max(s10 / m + s01 / n, 0.0))


def property_aucs(cells: Cells, min_positive: int = 5, bins: int = 10) -> list[dict[str, Any]]:
    """Per group k: {"auc", "ci95", "n_positive"} of the property alone (None where too few samples)."""
    scores, n, pos = oof_cell_scores(cells, bins)
    out = []
    for k in range(cells.n_groups):
        p = pos[:, :, k].ravel().astype(np.float64)
        q = n.ravel() - p
        n_p = int(p.sum())
        if n_p < min_positive or q.sum() < min_positive:
            out.append({"auc": None, "ci95": None, "n_positive": n_p})
            continue
        auc, se = grouped_delong(scores[:, :, k].ravel(), p, q)
        out.append({"auc": auc, "ci95": [max(0.0, auc - 1.96 * se), min(1.0, auc + 1.96 * se)], "n_positive": n_p})
    return out
