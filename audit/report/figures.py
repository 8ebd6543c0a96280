"""Figures as PNG data URIs, drawn once and shared by the HTML and PDF reports.

Overlays are composed with numpy and a matplotlib colour map (no figure per cell), so hundreds of
cells cost milliseconds; matplotlib figures are used only for charts and colour bars.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from functools import lru_cache

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize, TwoSlopeNorm
from PIL import Image

from ..scoring.classification import Calibration

CELL_PX = 96  # pixels of a sample cell: 1:1 with the HTML grid, ~140 dpi at its printed 17 mm
ROI_COLOR = np.array([0.0, 1.0, 1.0])  # cyan outline


def png_uri(arr: np.ndarray) -> str:
    """(H, W, 3) float [0,1] or uint8 -> data URI."""
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def fig_uri(fig: plt.Figure, dpi: int = 150) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass(frozen=True)
class Scale:
    """A shared display scale for one explainer's maps."""

    signed: bool
    vmax: float

    def norm(self) -> Normalize:
        v = self.vmax if self.vmax > 0 else 1.0
        return TwoSlopeNorm(vcenter=0.0, vmin=-v, vmax=v) if self.signed else Normalize(0.0, v)

    @property
    def cmap(self) -> str:
        return "coolwarm" if self.signed else "jet"


def shared_scale(maps: np.ndarray, signed: bool) -> Scale:
    """99th percentile of |map| (or of the map when unsigned) over all maps of one explainer."""
    finite = maps[np.isfinite(maps)]
    if finite.size == 0:
        return Scale(signed, 1.0)
    v = float(np.percentile(np.abs(finite) if signed else np.clip(finite, 0, None), 99))
    if v <= 0:
        v = float(np.abs(finite).max()) or 1.0
    return Scale(signed, v)


def cell_px(image: np.ndarray) -> int:
    """Grid cells are drawn at the input's own resolution up to CELL_PX (upsampling adds no information: the page
    scales them, pixelated); larger inputs are downsampled to CELL_PX."""
    return max(16, min(CELL_PX, max(image.shape[:2])))


def _resize(arr: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    h, w = arr.shape[:2]
    scale = size / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if arr.dtype == bool:
        return np.asarray(Image.fromarray(arr.astype(np.uint8) * 255).resize(new, Image.NEAREST)) > 127
    img = Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8))
    return np.asarray(img.resize(new, Image.NEAREST if nearest else Image.BILINEAR)).astype(np.float32) / 255.0


def _resize4(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of an (H, W, 4) float array in [0, 1] through one 8-bit RGBA image."""
    img = Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8))  # (H, W, 4) uint8 -> RGBA
    if img.size != (width, height):
        img = img.resize((width, height), Image.BILINEAR)
    return np.asarray(img).astype(np.float32) / 255.0


def _outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    edge = mask & ~inner
    thick = edge.copy()
    thick[1:, :] |= edge[:-1, :]
    thick[:, 1:] |= edge[:, :-1]
    return thick


def image_cell(image: np.ndarray, roi: np.ndarray | None = None, size: int = CELL_PX) -> str:
    img = _resize(image, size, nearest=True)
    if roi is not None:
        m = _outline(_resize(roi, size))
        img = img.copy()
        img[m] = ROI_COLOR
    return png_uri(img)


@lru_cache(maxsize=8)
def _lut(cmap: str) -> np.ndarray:
    """The colour map's own 256-entry table (matplotlib indexes it the same way), (256, 3) float32."""
    cm = colormaps[cmap]
    return cm(np.arange(cm.N))[:, :3].astype(np.float32)


def overlay_cell(image: np.ndarray, amap: np.ndarray, scale: Scale, roi: np.ndarray | None = None,
                 size: int = CELL_PX, alpha: float = 0.55) -> str:
    """The map in the explainer's colour scale blended over a grey copy of the input, ROI outlined.

    Colour = ``scale.norm()`` then the colour map (looked up in its table), opacity = |map| / vmax; both are
    computed at the map's resolution and resized together (bilinear), the input with nearest neighbours."""
    base = _resize(image, size, nearest=True)
    grey = base.mean(axis=2, keepdims=True)
    m = np.nan_to_num(amap.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    v = scale.vmax or 1.0
    if scale.signed:
        t = np.clip(m / v, -1.0, 1.0)
        pos, weight = (t + 1.0) / 2.0, np.abs(t)  # TwoSlopeNorm(vcenter=0, vmin=-v, vmax=v)
    else:
        weight = np.clip(m / v, 0.0, 1.0)
        pos = weight  # Normalize(0, v), out-of-range clamped like the colour map's under/over
    lut = _lut(scale.cmap)
    idx = np.clip((pos * len(lut)).astype(np.int64), 0, len(lut) - 1)
    rgbw = np.concatenate([lut[idx], weight[..., None]], axis=2)
    rgbw = _resize4(rgbw, base.shape[1], base.shape[0])
    col, w = rgbw[..., :3], rgbw[..., 3:] * alpha
    out = grey * (1 - w) + col * w
    if roi is not None:
        edge = _outline(_resize(roi, size))
        out[edge] = ROI_COLOR
    return png_uri(out)


def colorbar(scale: Scale, label: str) -> str:
    fig, ax = plt.subplots(figsize=(2.6, 0.42))
    fig.colorbar(plt.cm.ScalarMappable(norm=scale.norm(), cmap=scale.cmap), cax=ax, orientation="horizontal")
    ax.tick_params(labelsize=6)
    ax.set_title(label, fontsize=7)
    return fig_uri(fig, dpi=130)


def confusion_figure(cm: np.ndarray, cm_norm: np.ndarray, classes: tuple[str, ...]) -> str:
    C = len(classes)
    side = min(7.0, 1.6 + 0.45 * C)
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    ax.imshow(cm_norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(C), labels=list(classes), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(C), labels=list(classes), fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if C <= 20:
        for i in range(C):
            for j in range(C):
                v = cm_norm[i, j]
                ax.text(j, i, f"{cm[i, j]}\n{v:.0%}", ha="center", va="center", fontsize=6 if C > 10 else 7,
                        color="white" if v > 0.5 else "black")
    ax.set_title("Confusion matrix (counts and row share)", fontsize=9)
    return fig_uri(fig)


def reliability_figure(cal: Calibration) -> str:
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(4.6, 4.6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    edges = np.array(cal.bin_edges)
    centers = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    acc = np.array([np.nan if a is None else a for a in cal.bin_accuracy])
    conf = np.array([np.nan if c is None else c for c in cal.bin_confidence])
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    ax.bar(centers, np.nan_to_num(acc), width=width * 0.9, color="#4477aa", alpha=0.8, label="accuracy")
    ax.scatter(centers, conf, color="#cc6677", s=12, zorder=3, label="mean confidence")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"Reliability diagram (ECE {cal.ece:.3f}, MCE {cal.mce:.3f})", fontsize=9)
    axh.bar(centers, cal.bin_counts, width=width * 0.9, color="#999999")
    axh.set_xlabel("confidence of the top-1 prediction")
    axh.set_ylabel("samples", fontsize=8)
    axh.set_xlim(0, 1)
    return fig_uri(fig)


def embedding_figure(coords: np.ndarray, labels: np.ndarray, correct: np.ndarray, classes: tuple[str, ...],
                     title: str) -> str:
    """Scatter of a 2-D embedding coloured by true class; misclassified samples drawn as black-edged crosses."""
    fig, ax = plt.subplots(figsize=(4.8, 4.0))
    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for ci, name in enumerate(classes):
        m = labels == ci
        if not m.any():
            continue
        color = cmap(ci % cmap.N)
        ax.scatter(coords[m & correct, 0], coords[m & correct, 1], s=7, color=color, alpha=0.7, label=name,
                   linewidths=0)
        ax.scatter(coords[m & ~correct, 0], coords[m & ~correct, 1], s=28, color=color, marker="X",
                   edgecolors="black", linewidths=0.6)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title + " (× = misclassified)", fontsize=9)
    if len(classes) <= 20:
        ax.legend(fontsize=6, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig_uri(fig)


def probe_figure(acc: dict[str, float], chance: float) -> str:
    fig, ax = plt.subplots(figsize=(4.8, 2.6))
    names = list(acc)
    ax.plot(range(len(names)), [acc[n] for n in names], "o-", color="#4477aa")
    ax.axhline(chance, ls="--", color="grey", lw=1, label="chance")
    ax.set_xticks(range(len(names)), labels=names, rotation=30, ha="right", fontsize=7)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("CV accuracy", fontsize=8)
    ax.set_title("Linear probe accuracy per layer", fontsize=9)
    ax.legend(fontsize=7)
    return fig_uri(fig)
