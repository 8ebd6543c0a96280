"""Statistics of attribution maps shared by rules and comparisons (NumPy only, no model access)."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from skimage.metrics import structural_similarity


def map_problem(m: np.ndarray) -> str | None:
    """Why a map carries no usable positive attribution, or None when it does."""
    if not np.isfinite(m).all():
        return "non-finite values in the map"
    if not np.any(m):
        return "all-zero map"
    if not np.any(m > 0):
        return "no positive attribution"
    if float(m.max() - m.min()) == 0.0:
        return "constant map"
    return None


def positive_part(maps: np.ndarray) -> np.ndarray:
    """Positive part of maps (n, H, W) as float64 with non-finite values set to 0."""
    m = np.nan_to_num(np.asarray(maps, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(m, 0.0, None)


def share_inside(pos: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Σ inside / Σ total of non-negative maps (n, H, W) for boolean masks (n, H, W) or (H, W); NaN when empty."""
    total = pos.reshape(len(pos), -1).sum(axis=1)
    inside = (pos * masks).reshape(len(pos), -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)


def roi_share(m: np.ndarray, roi: np.ndarray | None) -> float:
    """Share of a map's positive mass inside ``roi`` (the roi_attribution rule's figure); NaN without a ROI or
    without usable positive attribution."""
    if roi is None or map_problem(m) is not None:
        return float("nan")
    return float(share_inside(positive_part(m[None]), roi)[0])


TIE_ULPS = 4  # attributions this many float32 rounding units apart (or closer) are tied


def tie_groups(values: np.ndarray) -> np.ndarray:
    """Each value's tie group, 0 = highest (NaN with -inf, last): a value within ``TIE_ULPS`` float32 units in the
    last place (of the smaller one) of the next higher value joins its group. Maps are float32; values equal in
    exact arithmetic (a bilinear upsampling's equal weights, an occlusion window's blocks) come out one to three
    units apart, in an order that depends on the CPU's vector kernels: grouped, they are ties again on every CPU,
    so an order or a rank statistic of a map does not depend on the machine."""
    v = np.nan_to_num(values.astype(np.float64), nan=-np.inf, posinf=np.inf, neginf=-np.inf)
    order = np.argsort(-v, kind="stable")
    s = v[order]
    with np.errstate(invalid="ignore"):  # inf - inf
        ulp = np.spacing(np.abs(s[1:]).astype(np.float32)).astype(np.float64)
        same = (s[:-1] == s[1:]) | (s[:-1] - s[1:] <= TIE_ULPS * ulp)
    groups = np.empty(len(v), dtype=np.int64)
    groups[order] = np.concatenate([[0], np.cumsum(~same)])
    return groups


def spearman_abs(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman correlation of |a| and |b| (flattened; values within a few float32 rounding units tied, see
    ``tie_groups``); None when ``a`` is constant, 0 when ``b`` is."""
    x, y = np.abs(a).ravel(), np.abs(b).ravel()
    if not np.isfinite(x).all() or np.ptp(x) == 0:
        return None
    if not np.isfinite(y).all() or np.ptp(y) == 0:
        return 0.0
    rx, ry = rankdata(-tie_groups(x)), rankdata(-tie_groups(y))
    rx -= rx.mean()
    ry -= ry.mean()
    return float((rx * ry).sum() / np.sqrt((rx * rx).sum() * (ry * ry).sum()))


def ssim_abs(a: np.ndarray, b: np.ndarray) -> float | None:
    """SSIM (scikit-image) of |a| and |b| each scaled to [0, 1] by its maximum; None when ``a`` is constant or
    the map is too small for a 3-pixel window, 0 when ``b`` is constant."""
    x, y = np.abs(a), np.abs(b)
    if not np.isfinite(x).all() or x.max() == 0 or np.ptp(x) == 0:
        return None
    if not np.isfinite(y).all() or y.max() == 0 or np.ptp(y) == 0:
        return 0.0
    win = min(7, min(x.shape))
    win = win if win % 2 == 1 else win - 1
    if win < 3:
        return None
    return float(structural_similarity(x / x.max(), y / y.max(), data_range=1.0, win_size=win))
