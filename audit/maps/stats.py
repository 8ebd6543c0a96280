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


def spearman_abs(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman correlation of |a| and |b| (flattened); None when ``a`` is constant, 0 when ``b`` is."""
    x, y = np.abs(a).ravel(), np.abs(b).ravel()
    if not np.isfinite(x).all() or np.ptp(x) == 0:
        return None
    if not np.isfinite(y).all() or np.ptp(y) == 0:
        return 0.0
    rx, ry = rankdata(x), rankdata(y)
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
