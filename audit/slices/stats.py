"""The statistics of a slice against the rest of the set: its metric with an interval, the gap, a one-sided test
that the slice is worse, and the correction for the number of slices tested.

- A 0/1 metric (correct / wrong): Wilson score interval of the slice's proportion; the gap's interval is
  Newcombe's hybrid score interval for a difference of proportions (Newcombe 1998, method 10); the test is the
  exact one-sided permutation test, which for 0/1 values is the hypergeometric tail (Fisher's exact test).
- Any other metric (Dice, a loss): percentile bootstrap of the slice mean and of the gap (slice and rest resampled
  separately); the test is a Monte-Carlo permutation test of the mean difference, p = (1 + #{perm >= obs}) /
  (1 + B) (Phipson & Smyth 2010), on permutations shared by every slice (the same seed, the same p-values).
- Multiplicity: Holm's step-down (Holm 1979) keeps the family-wise error rate at alpha under any dependence between
  the slices' tests, and with it the false-discovery rate; Benjamini-Hochberg (1995) is offered as an option.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import hypergeom

from ..scoring.ranking import percentile_interval, wilson

Correction = Literal["holm", "bh"]


@dataclass(frozen=True)
class GapTest:
    """One slice against the rest; ``gap`` > 0 means the slice is worse (in the metric's own direction)."""

    n: int
    metric: float
    metric_ci: tuple[float, float]
    rest_metric: float
    gap: float
    gap_ci: tuple[float, float]
    p_value: float
    interval: str  # "wilson" | "bootstrap"
    test: str  # "hypergeometric" | "permutation"


def newcombe(k1: int, n1: int, k2: int, n2: int, level: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval of p1 - p2 from the two Wilson intervals."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, level)
    l2, u2 = wilson(k2, n2, level)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def binary_gap(values: np.ndarray, member: np.ndarray, higher_is_better: bool) -> GapTest:
    """Slice (``member``) against the rest for a 0/1 metric: exact hypergeometric p-value of at least as many bad
    outcomes in the slice as observed, given the totals."""
    bad = (values < 0.5) if higher_is_better else (values > 0.5)
    n, n_all = int(member.sum()), len(values)
    k_bad, k_all = int(bad[member].sum()), int(bad.sum())
    k_good, rest_good = int((~bad[member]).sum()), int((~bad[~member]).sum())
    m = k_good if higher_is_better else k_bad
    rest_m = rest_good if higher_is_better else k_all - k_bad
    p = float(hypergeom.sf(k_bad - 1, n_all, k_all, n)) if n else 1.0
    # the gap is the slice's bad rate minus the rest's (= the rest's accuracy minus the slice's)
    lo, hi = newcombe(k_bad, n, k_all - k_bad, n_all - n)
    return GapTest(n, m / n, wilson(m, n), rest_m / (n_all - n), k_bad / n - (k_all - k_bad) / (n_all - n),
                   (lo, hi), p, "wilson", "hypergeometric")


def continuous_gaps(values: np.ndarray, members: list[np.ndarray], higher_is_better: bool,
                    rng: np.random.Generator, permutations: int = 4999,
                    bootstrap: int = 2000) -> list[GapTest]:
    """Every slice against its rest for a continuous metric; the permutations are drawn once for all slices (in
    chunks of about 2^22 values, so memory stays flat however large the set)."""
    sign = -1.0 if higher_is_better else 1.0  # badness = sign * value
    bad = sign * values
    n_all = len(values)
    if not members:
        return []
    mat = np.stack(members).astype(np.float64)  # (S, N)
    sizes = mat.sum(1)
    total = bad.sum()

    def gaps(slice_sums: np.ndarray) -> np.ndarray:
        return slice_sums / sizes - (total - slice_sums) / (n_all - sizes)

    observed = gaps(mat @ bad)
    exceed = np.zeros(len(members), dtype=np.int64)
    chunk = max(1, (1 << 22) // n_all)
    for start in range(0, permutations, chunk):
        size = min(chunk, permutations - start)
        perm = np.stack([rng.permutation(bad) for _ in range(size)])
        exceed += np.count_nonzero(gaps(perm @ mat.T) >= observed - 1e-12 * np.maximum(1.0, np.abs(observed)), axis=0)
    out = []
    for j, member in enumerate(members):
        idx, rest = np.flatnonzero(member), np.flatnonzero(~member)
        s_means = _boot_means(values[idx], bootstrap, rng)
        r_means = _boot_means(values[rest], bootstrap, rng)
        out.append(GapTest(len(idx), float(values[idx].mean()), percentile_interval(s_means),
                           float(values[rest].mean()), float(observed[j]),
                           percentile_interval(sign * (s_means - r_means)),
                           float((1 + exceed[j]) / (1 + permutations)), "bootstrap", "permutation"))
    return out


def _boot_means(x: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``reps`` bootstrap resamples of ``x``, drawn in chunks of about 2^22 indices."""
    chunk = max(1, (1 << 22) // len(x))
    return np.concatenate([x[rng.integers(0, len(x), (min(chunk, reps - s), len(x)))].mean(1)
                           for s in range(0, reps, chunk)])


def adjust(p_values: np.ndarray, method: Correction = "holm") -> np.ndarray:
    """Multiplicity-adjusted p-values (reject where adjusted <= alpha): Holm's step-down or Benjamini-Hochberg."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="mergesort")
    ranked = p[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked)
    elif method == "bh":
        adj = np.minimum.accumulate((m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
    else:
        raise ValueError(f"unknown correction {method!r}; known: holm, bh")
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out
