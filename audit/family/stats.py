"""The family's statistics, each a small function of plain arrays: the spread of a metric across members (mean,
standard deviation, a t-interval of the mean), the leave-one-out prediction interval the released member is judged
against, Cohen's kappa and flip counts between two members' answers, and the rank correlation and top-k overlap of
two explanation maps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Spread:
    """A metric across n members: mean, sample standard deviation (ddof 1), the Student-t interval of the mean at
    ``level`` (mean ± t(level, n − 1) · sd / √n), min and max. With one member the sd and interval are NaN."""

    n: int
    mean: float
    sd: float
    low: float
    high: float
    minimum: float
    maximum: float
    level: float

    @property
    def range(self) -> float:
        return self.maximum - self.minimum


def spread(values: np.ndarray, level: float = 0.95) -> Spread:
    """The spread of finite ``values`` (NaN values are left out; none left: every field NaN)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return Spread(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, level)
    mean = float(v.mean())
    if n < 2:
        return Spread(1, mean, math.nan, math.nan, math.nan, mean, mean, level)
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)
    return Spread(n, mean, sd, mean - half, mean + half, float(v.min()), float(v.max()), level)


def prediction_interval(others: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """Where one more member of the recipe is expected to land, from the other members' values x₁…xₙ:
    mean ± t(level, n − 1) · sd · √(1 + 1/n) (a normal model of the members' metric); None with fewer than 2
    finite values."""
    v = np.asarray(others, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    if n < 2:
        return None
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * float(v.std(ddof=1)) * math.sqrt(1 + 1 / n)
    return float(v.mean()) - half, float(v.mean()) + half


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two raters' answers (any integer codes; arrays of the same shape, flattened):
    (p_o − p_e) / (1 − p_e) with p_o the share of equal answers and p_e = Σ_c p_a(c) p_b(c). NaN when
    p_e = 1 (both give one and the same answer everywhere: agreement by chance cannot be told from agreement)."""
    x, y = np.asarray(a).ravel(), np.asarray(b).ravel()
    if x.shape != y.shape:
        raise ValueError(f"answers of different lengths: {x.shape} and {y.shape}")
    if len(x) == 0:
        return math.nan
    codes, inverse = np.unique(np.concatenate([x, y]), return_inverse=True)
    xi, yi = inverse[:len(x)], inverse[len(x):]
    p_o = float(np.mean(xi == yi))
    p_e = float(np.dot(np.bincount(xi, minlength=len(codes)), np.bincount(yi, minlength=len(codes)))) / len(x) ** 2
    if p_e >= 1.0:
        return math.nan
    return (p_o - p_e) / (1.0 - p_e)


@dataclass(frozen=True)
class Flips:
    """Where two members' answers differ: ``n`` rows compared, ``changed`` answers that differ, and (when the task
    tells right from wrong) ``a_right_b_wrong`` and ``a_wrong_b_right``."""

    n: int
    changed: int
    a_right_b_wrong: int | None = None
    a_wrong_b_right: int | None = None


def flips(a: np.ndarray, b: np.ndarray, right_a: np.ndarray | None = None,
          right_b: np.ndarray | None = None) -> Flips:
    """Answers per row (a 2-D answer, e.g. a multi-label row, differs when any entry differs)."""
    x, y = np.asarray(a), np.asarray(b)
    differ = (x != y).reshape(len(x), -1).any(axis=1) if len(x) else np.zeros(0, dtype=bool)
    if right_a is None or right_b is None:
        return Flips(len(x), int(differ.sum()))
    ra, rb = np.asarray(right_a, dtype=bool), np.asarray(right_b, dtype=bool)
    return Flips(len(x), int(differ.sum()), int((ra & ~rb).sum()), int((~ra & rb).sum()))


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of two maps' attribution magnitudes |x|, |y| (pixels flattened; ties get their
    average rank). NaN when either map is constant."""
    a, b = np.abs(np.asarray(x, dtype=np.float64)).ravel(), np.abs(np.asarray(y, dtype=np.float64)).ravel()
    if a.shape != b.shape:
        raise ValueError(f"maps of different sizes: {x.shape} and {y.shape}")
    ra, rb = stats.rankdata(a), stats.rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float(np.dot(ra, ra)) * float(np.dot(rb, rb)))
    return float(np.dot(ra, rb)) / den if den > 0 else math.nan


def top_indices(x: np.ndarray, k: int) -> np.ndarray:
    """The k pixels of largest magnitude |x| (flattened; ties go to the earlier pixel in row-major order)."""
    a = np.abs(np.asarray(x, dtype=np.float64)).ravel()
    return np.argsort(-a, kind="stable")[:k]


def top_k(n_pixels: int, fraction: float) -> int:
    """k of the top-k overlap: ⌈fraction · pixels⌉, at least 1."""
    return max(1, math.ceil(fraction * n_pixels - 1e-9))


def top_overlap(x: np.ndarray, y: np.ndarray, fraction: float) -> float:
    """The share of the top-k pixels of |x| that are also among the top-k of |y| (k = ⌈fraction · pixels⌉)."""
    if np.shape(x) != np.shape(y):
        raise ValueError(f"maps of different sizes: {np.shape(x)} and {np.shape(y)}")
    k = top_k(int(np.size(x)), fraction)
    return len(np.intersect1d(top_indices(x, k), top_indices(y, k))) / k
