"""Figures of per-pixel tasks: true and predicted class masks over the input, where they disagree, the spread of
per-image Dice, and anomaly maps. Same conventions as :mod:`audit.drawing.figures` (one cell size, Paul Tol's
colour-blind-safe class colours, the input in reduced-contrast grey underneath)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_rgb
from PIL import Image

from . import figures

MASK_ALPHA = 0.55  # opacity of a class colour over the input
ERROR_RGB = (0.85, 0.1, 0.1)  # pixels whose predicted class is not the true one
IGNORED_RGB = (0.55, 0.55, 0.55)  # pixels the truth leaves out (255 in the mask, letterbox borders)


def _grey(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    img = image if image.ndim == 2 else image[..., :3].mean(axis=2)
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    g = np.asarray(pil.resize((hw[1], hw[0]), Image.NEAREST), dtype=np.float32) / 255.0
    return np.repeat((figures.BASE_LOW + (figures.BASE_HIGH - figures.BASE_LOW) * g)[..., None], 3, axis=2)


def _nearest(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an integer map (class indices, -1 kept)."""
    ys = (np.arange(hw[0]) * a.shape[0] // hw[0]).clip(0, a.shape[0] - 1)
    xs = (np.arange(hw[1]) * a.shape[1] // hw[1]).clip(0, a.shape[1] - 1)
    return a[np.ix_(ys, xs)]


def _paint(base: np.ndarray, where: np.ndarray, rgb: Sequence[float], alpha: float = MASK_ALPHA) -> None:
    base[where] = base[where] * (1 - alpha) + np.asarray(rgb, dtype=np.float32) * alpha


def class_overlay(image: np.ndarray, mask: np.ndarray, n_classes: int) -> str:
    """Each class's pixels in its colour over the grey input; ignored pixels (-1) grey."""
    hw = figures.display_px(image)
    out, m = _grey(image, hw), _nearest(mask, hw)
    for c, colour in enumerate(figures.class_colors(n_classes)):
        _paint(out, m == c, to_rgb(colour))
    _paint(out, m < 0, IGNORED_RGB, 0.8)
    return figures.png_uri(out)


def error_overlay(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> str:
    """Pixels predicted as another class than the true one, in red over the grey input."""
    hw = figures.display_px(image)
    out, t, p = _grey(image, hw), _nearest(truth, hw), _nearest(pred, hw)
    _paint(out, (t >= 0) & (t != p), ERROR_RGB, 0.75)
    _paint(out, t < 0, IGNORED_RGB, 0.8)
    return figures.png_uri(out)


def mask_cells(image: np.ndarray, truth: np.ndarray, pred: np.ndarray, n_classes: int) -> dict[str, Any]:
    """One picked image's cells: input, true mask, predicted mask, disagreement; with its Dice per class."""
    return {"input": figures.image_cell(image), "truth": class_overlay(image, truth, n_classes),
            "pred": class_overlay(image, pred, n_classes), "errors": error_overlay(image, truth, pred),
            "error_share": float(((truth >= 0) & (truth != pred)).sum() / max(int((truth >= 0).sum()), 1))}


def legend(classes: Sequence[str]) -> list[dict[str, str]]:
    return [{"name": c, "color": col} for c, col in zip(classes, figures.class_colors(len(classes)), strict=True)]


def score_histogram(values: np.ndarray, xlabel: str, title: str = "") -> str:
    """Histogram of per-image scores in [0, 1] (NaN left out), with the median marked."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    fig, ax = plt.subplots(figsize=(figures.CHART_WIDTH_IN, 2.4))
    ax.hist(v, bins=np.linspace(0, 1, 21), color=figures.CLASS_COLORS[1], edgecolor="white")
    if len(v):
        med = float(np.median(v))
        ax.axvline(med, color="black", linestyle="--", linewidth=1)
        ax.text(med, 1.01, f"median {med:.3f}", fontsize=9, ha="center", va="bottom",
                transform=ax.get_xaxis_transform())  # above the plot: never over a bar
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("images", fontsize=9)
    if title:
        ax.set_title(title, fontsize=9, pad=16)
    ax.tick_params(labelsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return figures.fig_uri(fig)


def dice_histogram(image_dice: np.ndarray) -> str:
    return score_histogram(image_dice, "Dice per image (mean over its classes)")


def score_classes_histogram(scores: np.ndarray, labels: np.ndarray, classes: Sequence[str], threshold: float) -> str:
    """Anomaly scores of normal and anomalous images (overlaid histograms, shared bins) with the threshold."""
    s = np.asarray(scores, dtype=float)
    fig, ax = plt.subplots(figsize=(figures.CHART_WIDTH_IN, 2.8))
    lo, hi = (float(s.min()), float(s.max())) if len(s) else (0.0, 1.0)
    bins = np.linspace(min(lo, threshold), max(hi, threshold) + 1e-12, 31)
    colours = figures.class_colors(2)
    for k, (name, hatch) in enumerate(zip(classes, ("", "//"), strict=True)):
        ax.hist(s[labels == k], bins=bins, alpha=0.6, color=colours[k], hatch=hatch, edgecolor="white",
                label=f"{name} (n = {int((labels == k).sum())})")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.text(threshold, 1.01, f"threshold {threshold:.4g}", fontsize=9, ha="center", va="bottom",
            transform=ax.get_xaxis_transform())  # above the plot: never over a bar
    ax.set_xlabel("anomaly score", fontsize=9)
    ax.set_ylabel("images", fontsize=9)
    ax.legend(fontsize=9, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2)
    ax.tick_params(labelsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return figures.fig_uri(fig)
