"""Metrics of a semantic segmentation against per-pixel truth, with bootstrap intervals over images.

Per class: IoU = TP / (TP + FP + FN) and Dice = 2 TP / (2 TP + FP + FN), summed over the held-out pixels (the
dataset-level definition: one confusion matrix of all pixels); mean IoU over the classes that occur in the truth
or the predictions; pixel accuracy; the pixel confusion matrix; the boundary F1 score per class at a tolerance of
``tolerance`` pixels (Csurka et al. 2013: a boundary pixel counts when the other boundary lies within the
tolerance); each image's Dice (the mean over the classes in its truth or prediction). Pixels marked -1 in the
truth (ignored, letterbox borders) are left out everywhere. Intervals: percentile bootstrap over images (the
per-image confusion matrices are resampled), so an image's pixels move together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt

from .ranking import bootstrap, percentile_interval

BOUNDARY_TOLERANCE = 2


@dataclass(frozen=True)
class SegmentationMetrics:
    n: int
    classes: tuple[str, ...]
    confusion: np.ndarray  # (C, C) pixel counts, rows = true class
    iou: np.ndarray  # (C,) NaN for a class in neither truth nor prediction
    iou_ci: tuple[tuple[float, float], ...]
    dice: np.ndarray
    dice_ci: tuple[tuple[float, float], ...]
    mean_iou: float
    mean_iou_ci: tuple[float, float]
    pixel_accuracy: float
    pixel_accuracy_ci: tuple[float, float]
    boundary_f1: np.ndarray  # (C,)
    tolerance_px: int
    image_dice: np.ndarray  # (N,) each image's mean Dice

    @property
    def confusion_normalized(self) -> np.ndarray:
        rows = self.confusion.sum(axis=1, keepdims=True)
        return np.divide(self.confusion, rows, out=np.zeros_like(self.confusion, dtype=float), where=rows > 0)

    def _class(self, name: str) -> int:
        if name not in self.classes:
            raise KeyError(f"no class {name!r}; classes: {', '.join(self.classes)}")
        return self.classes.index(name)

    def scalar(self, name: str) -> float:
        per = {"iou": self.iou, "dice": self.dice, "boundary_f1": self.boundary_f1}
        if ":" in name:
            metric, cls = name.split(":", 1)
            return float(per[metric][self._class(cls)])
        if name.startswith("min_") and name[4:] in per:
            v = per[name[4:]]
            return float(np.nanmin(v)) if np.isfinite(v).any() else float("nan")
        direct = {"mean_iou": self.mean_iou, "pixel_accuracy": self.pixel_accuracy,
                  "mean_dice": float(np.nanmean(self.dice)) if np.isfinite(self.dice).any() else float("nan"),
                  "mean_boundary_f1": float(np.nanmean(self.boundary_f1))
                  if np.isfinite(self.boundary_f1).any() else float("nan"),
                  "median_image_dice": float(np.nanmedian(self.image_dice)) if len(self.image_dice) else float("nan")}
        if name not in direct:
            raise KeyError(f"unknown metric {name!r}; known: {', '.join(direct)}, iou:<class>, dice:<class>, "
                           "boundary_f1:<class>, min_iou, min_dice, min_boundary_f1")
        return float(direct[name])

    def interval(self, name: str) -> tuple[float, float] | None:
        if name == "mean_iou":
            return self.mean_iou_ci
        if name == "pixel_accuracy":
            return self.pixel_accuracy_ci
        if ":" in name:
            metric, cls = name.split(":", 1)
            table = {"iou": self.iou_ci, "dice": self.dice_ci}.get(metric)
            return table[self._class(cls)] if table is not None else None
        return None


def image_confusions(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, C, C) per-image pixel confusion matrices (rows = truth), ignored pixels left out."""
    out = np.zeros((len(truth), n_classes * n_classes), dtype=np.int64)
    for i, (t, p) in enumerate(zip(truth, pred, strict=True)):
        ok = t >= 0
        out[i] = np.bincount(t[ok].astype(np.int64) * n_classes + p[ok].astype(np.int64),
                             minlength=n_classes * n_classes)
    return out.reshape(len(truth), n_classes, n_classes)


def class_ratios(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU and Dice per class of confusion matrices (..., C, C)."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    fn = cm.sum(axis=-1) - tp
    fp = cm.sum(axis=-2) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
        dice = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return iou, dice


def _boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~binary_erosion(mask, border_value=0)


def boundary_f1(truth: np.ndarray, pred: np.ndarray, n_classes: int, tolerance: int) -> np.ndarray:
    """(C,) boundary F1 per class over all images (matched boundary pixels summed before the ratio)."""
    matched_p = np.zeros(n_classes)
    total_p = np.zeros(n_classes)
    matched_t = np.zeros(n_classes)
    total_t = np.zeros(n_classes)
    for t, p in zip(truth, pred, strict=True):
        valid = t >= 0
        for c in range(n_classes):
            bt, bp = _boundary((t == c) & valid), _boundary((p == c) & valid)
            if not bt.any() and not bp.any():
                continue
            total_p[c] += bp.sum()
            total_t[c] += bt.sum()
            if bt.any():
                matched_p[c] += (distance_transform_edt(~bt)[bp] <= tolerance).sum()
            if bp.any():
                matched_t[c] += (distance_transform_edt(~bp)[bt] <= tolerance).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(total_p > 0, matched_p / np.maximum(total_p, 1), 0.0)  # none predicted: 0
        recall = np.where(total_t > 0, matched_t / np.maximum(total_t, 1), 0.0)  # none true: 0
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    return np.where((total_p == 0) & (total_t == 0), np.nan, f1)  # a class in neither: undefined


def segmentation_metrics(classes: Sequence[str], truth: np.ndarray, pred: np.ndarray, seed: int,
                         tolerance: int = BOUNDARY_TOLERANCE) -> SegmentationMetrics:
    """``truth`` and ``pred`` (N, H, W) class indices (truth -1 = ignored)."""
    C = len(classes)
    per_image = image_confusions(truth, pred, C)
    total = per_image.sum(axis=0)
    iou, dice = class_ratios(total)
    flat = per_image.reshape(len(per_image), -1).astype(float)

    def resampled(w: np.ndarray) -> np.ndarray:
        return (w @ flat).reshape(len(w), C, C)

    boot = bootstrap(lambda w: resampled(w).reshape(len(w), -1), len(per_image), seed).reshape(-1, C, C)
    b_iou, b_dice = class_ratios(boot)
    with np.errstate(invalid="ignore"):
        b_mean = np.nanmean(np.where(np.isfinite(b_iou), b_iou, np.nan), axis=1)
    b_acc = np.trace(boot, axis1=1, axis2=2) / np.maximum(boot.sum(axis=(1, 2)), 1)
    _, img_dice = class_ratios(per_image)
    return SegmentationMetrics(
        n=len(truth), classes=tuple(classes), confusion=total, iou=iou,
        iou_ci=tuple(percentile_interval(b_iou[:, c]) for c in range(C)), dice=dice,
        dice_ci=tuple(percentile_interval(b_dice[:, c]) for c in range(C)),
        mean_iou=float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        mean_iou_ci=percentile_interval(b_mean),
        pixel_accuracy=float(np.trace(total) / max(total.sum(), 1)), pixel_accuracy_ci=percentile_interval(b_acc),
        boundary_f1=boundary_f1(truth, pred, C, tolerance), tolerance_px=tolerance,
        image_dice=np.array([np.nanmean(d) if np.isfinite(d).any() else np.nan for d in img_dice]),
    )
