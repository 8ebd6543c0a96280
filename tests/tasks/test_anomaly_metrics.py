"""Pixel AUROC against scikit-learn and AUPRO against a brute-force implementation of its definition
(Bergmann et al. 2021, MVTec AD's reference code): for each threshold, the mean over all connected defect regions
(8-connectivity, across images) of the share of the region's pixels above it, against the false-positive rate on
defect-free pixels; the curve up to FPR 0.3, integrated by trapezoids and divided by 0.3."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, label
from sklearn.metrics import roc_auc_score

from audit.scoring.anomaly import aupro, pixel_auroc, pixel_metrics


def _data(seed: int = 0, n: int = 6, size: int = 24):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), np.int16)
    maps = gaussian_filter(rng.random((n, size, size)), (0, 1, 1))
    for i in range(n):
        for _ in range(int(rng.integers(0, 3))):
            y, x, h, w = rng.integers(0, size - 6, 2).tolist() + rng.integers(2, 7, 2).tolist()
            masks[i, y:y + h, x:x + w] = 1
            maps[i, y:y + h, x:x + w] += rng.uniform(0, 0.4)
    return masks, np.round(maps, 2)  # rounded: many ties


def _aupro_brute(masks: np.ndarray, maps: np.ndarray, limit: float = 0.3) -> float:
    regions = []
    for i in range(len(masks)):
        lab, k = label(masks[i] > 0, structure=np.ones((3, 3)))
        regions += [(i, lab == j) for j in range(1, k + 1)]
    normal = masks == 0
    pts = [(0.0, 0.0)]
    for t in np.unique(maps)[::-1]:
        above = maps >= t
        fpr = (above & normal).sum() / normal.sum()
        pro = np.mean([(above[i] & r).sum() / r.sum() for i, r in regions])
        pts.append((fpr, pro))
    f, p = np.array(pts).T
    inside = f <= limit
    x, y = f[inside], p[inside]
    j = int(np.argmax(f > limit))
    if f[j] > limit:  # interpolate to the limit
        x = np.r_[x, limit]
        y = np.r_[y, p[j - 1] + (p[j] - p[j - 1]) * (limit - f[j - 1]) / (f[j] - f[j - 1])]
    return float(np.trapezoid(y, x) / limit)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pixel_auroc_matches_sklearn(seed):
    masks, maps = _data(seed)
    assert pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(masks.ravel() > 0, maps.ravel()), abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aupro_matches_the_definition(seed):
    masks, maps = _data(seed)
    assert aupro(masks, maps) == pytest.approx(_aupro_brute(masks, maps), abs=1e-9)


def test_ignored_pixels_are_left_out():
    masks, maps = _data(4)
    masks[:, :3] = -1
    keep = masks >= 0
    assert pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(masks[keep] > 0, maps[keep]), abs=1e-9)


def test_perfect_and_inverted_maps():
    masks, _ = _data(5)
    perfect = masks.astype(float)
    assert aupro(masks, perfect) == pytest.approx(1.0) and pixel_auroc(masks, perfect) == pytest.approx(1.0)
    assert aupro(masks, -perfect) == pytest.approx(0.0) and pixel_auroc(masks, -perfect) == pytest.approx(0.0)


def test_intervals_hold_the_estimate_and_repeat():
    masks, maps = _data(6, n=10)
    a = pixel_metrics(masks, maps, seed=1, resamples=50)
    b = pixel_metrics(masks, maps, seed=1, resamples=50)
    assert a == b
    assert a.aupro_ci[0] <= a.aupro <= a.aupro_ci[1] and a.pixel_auroc_ci[0] <= a.pixel_auroc <= a.pixel_auroc_ci[1]
    assert a.n_regions == sum(label(m > 0, structure=np.ones((3, 3)))[1] for m in masks)
