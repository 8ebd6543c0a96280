"""Charts (matplotlib figures as PNG data URIs): the confusion matrix, the reliability diagram, embeddings of
penultimate features and the linear-probe accuracies. Same reading rules as the map figures (``figures``):
class colours from Paul Tol's colour-blind-safe scheme with a marker shape per class."""

from __future__ import annotations

import math

import numpy as np

from ..scoring.classification import Calibration
from .figures import CHART_WIDTH_IN, CLASS_MARKERS, class_colors, fig_uri, plt

FONT = 9  # pt; figures.fig_uri raises anything smaller to figures.MIN_FONT_PT


def confusion_figure(cm: np.ndarray, cm_norm: np.ndarray, classes: tuple[str, ...]) -> str:
    """Share of each true class (colour) with the count in each non-empty cell (up to 12 classes; the table beside
    the figure holds every number)."""
    C = len(classes)
    side = min(CHART_WIDTH_IN, 1.9 + 0.26 * C)
    fig, ax = plt.subplots(figsize=(side, side * 0.92))
    im = ax.imshow(cm_norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(C), labels=list(classes), rotation=45, ha="right", fontsize=FONT)
    ax.set_yticks(range(C), labels=list(classes), fontsize=FONT)
    ax.set_xlabel("predicted class", fontsize=FONT)
    ax.set_ylabel("true class", fontsize=FONT)
    if C <= 12:
        for i in range(C):
            for j in range(C):
                if cm[i, j] == 0:
                    continue  # empty cells stay empty: the eye finds the confusions
                ax.text(j, i, f"{cm[i, j]}", ha="center", va="center", fontsize=FONT,
                        color="white" if cm_norm[i, j] > 0.5 else "black")
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.set_label("share of the true class (row)", fontsize=FONT)
    cb.ax.tick_params(labelsize=FONT)
    ax.set_title("Confusion matrix: counts, colour =\nshare of the true class", fontsize=FONT)
    return fig_uri(fig)


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


MIN_BIN = 10  # bins with fewer samples are drawn hollow: their accuracy is too uncertain to read as a bar


def reliability_figure(cal: Calibration) -> str:
    """Per confidence bin: accuracy as a dot with its 95 % Wilson interval (hollow when the bin holds fewer than
    :data:`MIN_BIN` samples), mean confidence as a tick, the gap shaded (bins of at least :data:`MIN_BIN` samples),
    and the sample count of every bin written on the histogram below. No bar: a bin of one sample never reads as a
    full-height bar. The legend sits under the histogram, clear of the data."""
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(CHART_WIDTH_IN, 4.9), gridspec_kw={"height_ratios": [3, 1.2]},
                                  sharex=True)
    edges = np.array(cal.bin_edges)
    centers = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    counts = np.array(cal.bin_counts, dtype=int)
    acc = np.array([np.nan if a is None else a for a in cal.bin_accuracy], dtype=float)
    conf = np.array([np.nan if c is None else c for c in cal.bin_confidence], dtype=float)
    ax.plot([0, 1], [0, 1], "--", color="#777777", lw=1, label="perfect calibration")
    for x, a, c, n in zip(centers, acc, conf, counts, strict=True):
        if n == 0 or not np.isfinite(a):
            continue
        if n >= MIN_BIN:  # a gap drawn for a handful of samples would read as a finding
            ax.fill_between([x - width * 0.4, x + width * 0.4], [a, a], [c, c], color="#CC6677", alpha=0.25, lw=0)
        lo, hi = _wilson(round(a * n), n)
        ax.plot([x, x], [lo, hi], color="#332288", lw=1)
    ok = counts >= MIN_BIN
    ax.scatter(centers[ok], acc[ok], color="#332288", s=22, zorder=3, label=f"accuracy (≥ {MIN_BIN} samples)")
    few = (counts > 0) & ~ok
    if few.any():
        ax.scatter(centers[few], acc[few], facecolors="white", edgecolors="#332288", s=22, zorder=3,
                   label=f"accuracy (< {MIN_BIN} samples)")
    ax.scatter(centers, conf, marker="_", color="#CC6677", s=90, zorder=4, linewidths=2, label="mean confidence")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("accuracy in the bin", fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    handles, labels = ax.get_legend_handles_labels()
    ax.set_title(f"Reliability: ECE {cal.ece:.3f}, MCE {cal.mce:.3f}\n(whiskers: 95 % Wilson interval)",
                 fontsize=FONT)
    axh.bar(centers, counts, width=width * 0.9, color="#999999")
    top = max(int(counts.max()), 1)
    step = 2 if len(counts) > 12 else 1  # every other count when the bins are narrower than the digits
    for i, (x, n) in enumerate(zip(centers, counts, strict=True)):
        if n and i % step == 0:
            axh.text(x, n + top * 0.04, str(n), ha="center", va="bottom", fontsize=FONT)
    axh.set_ylim(0, top * 1.5)
    axh.set_xlabel("top-1 confidence", fontsize=FONT)
    axh.set_ylabel("samples", fontsize=FONT)
    axh.tick_params(labelsize=FONT)
    axh.set_xlim(0, 1)
    fig.tight_layout()
    # one column under the histogram: two columns of these labels would be wider than the chart
    fig.legend(handles, labels, fontsize=FONT, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=1, frameon=False)
    return fig_uri(fig)


def embedding_figure(coords: np.ndarray, labels: np.ndarray, correct: np.ndarray, classes: tuple[str, ...],
                     title: str) -> str:
    """Scatter of a 2-D embedding, one colour-blind-safe colour and one marker shape per true class;
    misclassified samples larger with a black edge. The legend sits below the plot."""
    fig, ax = plt.subplots(figsize=(CHART_WIDTH_IN, 3.9))
    colors = class_colors(len(classes))
    for ci, name in enumerate(classes):
        m = labels == ci
        if not m.any():
            continue
        mk = CLASS_MARKERS[ci % len(CLASS_MARKERS)]
        ax.scatter(coords[m & correct, 0], coords[m & correct, 1], s=10, color=colors[ci], alpha=0.75, label=name,
                   marker=mk, linewidths=0)
        ax.scatter(coords[m & ~correct, 0], coords[m & ~correct, 1], s=34, color=colors[ci], marker=mk,
                   edgecolors="black", linewidths=0.9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title + "\n(black edge = misclassified)", fontsize=FONT)
    if len(classes) <= 20:
        ax.legend(fontsize=FONT, markerscale=1.6, loc="upper center", bbox_to_anchor=(0.5, -0.02),
                  ncol=min(4, len(classes)), frameon=False, columnspacing=0.8, handletextpad=0.2)
    return fig_uri(fig)


def probe_figure(acc: dict[str, float], chance: float) -> str:
    fig, ax = plt.subplots(figsize=(CHART_WIDTH_IN, 2.9))
    names = list(acc)
    ax.plot(range(len(names)), [acc[n] for n in names], "o-", color="#332288", label="probe accuracy")
    ax.axhline(chance, ls="--", color="#777777", lw=1, label="majority-class rate")
    ax.set_xticks(range(len(names)), labels=names, rotation=30, ha="right", fontsize=FONT)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("cross-validated accuracy", fontsize=FONT)
    ax.tick_params(axis="y", labelsize=FONT)
    ax.set_title("Linear probe accuracy per layer", fontsize=FONT, pad=22)
    ax.legend(fontsize=FONT, frameon=False, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, borderaxespad=0.0)
    return fig_uri(fig)
