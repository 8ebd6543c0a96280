"""Pixel-level metrics of an anomaly detector's maps against defect masks.

- **Pixel AUROC**: ROC-AUC of every held-out pixel's anomaly value against the defect masks (normal images
  included: all their pixels are negatives), as the MVTec AD benchmark and anomalib report it.
- **AUPRO** (Bergmann et al., "The MVTec Anomaly Detection Dataset", IJCV 2021): each connected defect region
  (8-connectivity, per image) counts equally, however large. At a threshold t, the per-region overlap PRO(t) is
  the mean over regions of the share of the region's pixels with value ≥ t, and the false-positive rate FPR(t) is
  the share of defect-free pixels (of all images) with value ≥ t. AUPRO is the area under PRO(FPR) for FPR in
  [0, ``fpr_limit``] (0.3 as in the paper), trapezoidal, with PRO interpolated at the limit, divided by the limit
  (so a perfect map scores 1). PRO(t) is the true-positive rate when each defect pixel weighs 1 / (R · its region's
  size): the curve is a weighted ROC curve. Pixels are sorted once; a bootstrap resample of images is a weighting of them.

Pixels marked -1 in the masks (letterbox borders) are left out. Intervals: percentile bootstrap over images (on
every k-th pixel per direction when the set is large: the spread comes from the images, not single pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import label as connected_regions

from .ranking import percentile_interval

FPR_LIMIT = 0.3
EIGHT = np.ones((3, 3), dtype=bool)
PIXEL_BOOTSTRAP = 200  # resamples of the pixel metrics (one sort, then a weighted pass per resample)
BOOTSTRAP_PIXELS = 300_000  # the resamples read every k-th pixel per direction to stay under this
MAX_PIXELS = 4_000_000  # pixels per image are strided down to keep one sort of all of them under this


@dataclass(frozen=True)
class PixelMetrics:
    n_images: int  # images with a map and a mask
    n_regions: int  # connected defect regions
    pixel_auroc: float
    pixel_auroc_ci: tuple[float, float]
    aupro: float
    aupro_ci: tuple[float, float]
    fpr_limit: float
    stride: int  # 1 = every pixel; k = every k-th pixel in each direction (large sets)


def region_weights(masks: np.ndarray) -> tuple[np.ndarray, int]:
    """(N, H, W) weight of each defect pixel: 1 / (its region's size), regions found per image; and R."""
    w = np.zeros(masks.shape, dtype=np.float64)
    total = 0
    for i, m in enumerate(masks):
        lab, n = connected_regions(m > 0, structure=EIGHT)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())
        w[i] = np.where(lab > 0, 1.0 / sizes[lab], 0.0)
        total += n
    return w, total


@dataclass(frozen=True)
class _Pixels:
    """Every valid pixel sorted by anomaly value (descending), with the start of each run of tied values."""

    image: np.ndarray  # (P,) the image each pixel comes from
    defect: np.ndarray  # (P,) bool
    region_w: np.ndarray  # (P,) 1 / region size for defect pixels, 0 elsewhere
    starts: np.ndarray  # (T,) first sorted position of each distinct value

    @classmethod
    def of(cls, masks: np.ndarray, maps: np.ndarray) -> _Pixels:
        valid = masks >= 0
        w, _ = region_weights(np.where(valid, masks, 0))
        image = np.broadcast_to(np.arange(len(masks))[:, None, None], masks.shape)[valid]
        values = maps[valid].astype(np.float64)
        order = np.argsort(-values, kind="mergesort")
        v = values[order]
        return cls(image[order], (masks > 0)[valid][order], w[valid][order],
                   np.flatnonzero(np.r_[True, v[1:] != v[:-1]]) if len(v) else np.zeros(0, dtype=np.int64))

    def curves(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fpr, tpr, pro) at each distinct threshold from the highest, starting at (0, 0, 0), for images drawn
        ``counts`` times (a bootstrap resample; all ones for the data as they are)."""
        mult = counts[self.image].astype(np.float64)
        neg = np.where(self.defect, 0.0, mult)
        pos = np.where(self.defect, mult, 0.0)
        pro = pos * self.region_w
        out = []
        for w in (neg, pos, pro):
            c = np.cumsum(np.add.reduceat(w, self.starts)) if len(self.starts) else np.zeros(0)
            total = c[-1] if len(c) else 0.0
            out.append(np.r_[0.0, c / total] if total > 0 else np.full(len(c) + 1, np.nan))
        return out[0], out[1], out[2]


def normalized_area(fpr: np.ndarray, tpr: np.ndarray, limit: float) -> float:
    """Area under tpr(fpr) for fpr in [0, limit] (trapezoids, tpr interpolated at the limit) divided by limit."""
    if not np.isfinite(fpr).all() or not np.isfinite(tpr).all():
        return float("nan")
    keep = fpr <= limit
    x, y = fpr[keep], tpr[keep]
    if x[-1] < limit:
        j = int(np.searchsorted(fpr, limit, side="right"))
        if j < len(fpr):  # interpolate between the last point inside and the first one past the limit
            x0, x1, y0, y1 = fpr[j - 1], fpr[j], tpr[j - 1], tpr[j]
            y_lim = y0 + (y1 - y0) * (limit - x0) / (x1 - x0) if x1 > x0 else y1
            x, y = np.r_[x, limit], np.r_[y, y_lim]
    return float(np.trapezoid(y, x) / limit)


def _figures(px: _Pixels, counts: np.ndarray, fpr_limit: float) -> tuple[float, float]:
    fpr, tpr, pro = px.curves(counts)
    auroc = float(np.trapezoid(tpr, fpr)) if np.isfinite(fpr).all() and np.isfinite(tpr).all() else float("nan")
    return auroc, normalized_area(fpr, pro, fpr_limit)


def aupro(masks: np.ndarray, maps: np.ndarray, fpr_limit: float = FPR_LIMIT) -> float:
    """AUPRO of ``maps`` (N, H, W) against ``masks`` (N, H, W; > 0 defect, 0 normal, -1 left out)."""
    return _figures(_Pixels.of(masks, maps), np.ones(len(masks)), fpr_limit)[1]


def pixel_auroc(masks: np.ndarray, maps: np.ndarray) -> float:
    """ROC-AUC over all valid pixels (ties count one half, as scikit-learn's roc_auc_score)."""
    return _figures(_Pixels.of(masks, maps), np.ones(len(masks)), FPR_LIMIT)[0]


def pixel_metrics(masks: np.ndarray, maps: np.ndarray, seed: int, fpr_limit: float = FPR_LIMIT,
                  resamples: int = PIXEL_BOOTSTRAP) -> PixelMetrics:
    """Pixel AUROC and AUPRO with percentile bootstrap intervals over images (``masks``, ``maps``: (N, H, W))."""
    n, h, wd = masks.shape
    stride = 1
    while n * (h // stride) * (wd // stride) > MAX_PIXELS:
        stride += 1
    masks, maps = masks[:, ::stride, ::stride], maps[:, ::stride, ::stride]
    _, n_regions = region_weights(np.where(masks >= 0, masks, 0))
    px = _Pixels.of(masks, maps)
    auroc, pro = _figures(px, np.ones(n), fpr_limit)
    k = 1
    while n * (masks.shape[1] // k) * (masks.shape[2] // k) > BOOTSTRAP_PIXELS:
        k += 1
    bpx = px if k == 1 else _Pixels.of(masks[:, ::k, ::k], maps[:, ::k, ::k])
    rng = np.random.default_rng(seed)
    boot = np.array([_figures(bpx, np.bincount(rng.integers(0, n, n), minlength=n), fpr_limit)
                     for _ in range(resamples if n > 1 else 0)]).reshape(-1, 2)
    return PixelMetrics(
        n_images=n, n_regions=n_regions, pixel_auroc=auroc,
        pixel_auroc_ci=percentile_interval(boot[:, 0]) if len(boot) else (float("nan"), float("nan")),
        aupro=pro, aupro_ci=percentile_interval(boot[:, 1]) if len(boot) else (float("nan"), float("nan")),
        fpr_limit=fpr_limit, stride=stride)
