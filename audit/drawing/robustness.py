"""Robustness charts: the task's metric against corruption severity (one line per corruption, its 95 % interval
as a band, clean at severity 0), OOD score histograms (held-out against each OOD set), and the magnified
perturbation of an adversarial example. Same reading rules as the other charts (``figures``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .figures import CLASS_COLORS, CLASS_MARKERS, fig_uri, plt

LINES_PER_CHART = 6  # corruptions per severity chart (more lines stop being readable)
WIDTH_IN = 4.4  # the report's chart width (inches)


def severity_figure(metric: str, clean: float, severities: Sequence[int],
                    series: Mapping[str, tuple[Sequence[float], Sequence[tuple[float, float] | None]]],
                    floor: float | None = None) -> str:
    """``series``: corruption -> (value at each severity, its interval or None)."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.9))
    xs = [0, *severities]
    for k, (name, (values, cis)) in enumerate(series.items()):
        colour = CLASS_COLORS[k % len(CLASS_COLORS)]
        ax.plot(xs, [clean, *values], color=colour, marker=CLASS_MARKERS[k % len(CLASS_MARKERS)], markersize=4,
                linewidth=1.2, label=name)
        if all(c is not None for c in cis):
            lo = [clean, *(c[0] for c in cis if c is not None)]
            hi = [clean, *(c[1] for c in cis if c is not None)]
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.12, linewidth=0)
    if floor is not None:
        ax.axhline(floor, color="black", linestyle="--", linewidth=0.8)
    ax.set_xticks(xs, labels=["clean", *(str(s) for s in severities)])
    ax.set_xlabel("severity", fontsize=9)
    ax.set_ylabel(metric.replace("_", " "), fontsize=9)
    ax.set_ylim(-0.02, 1.02)
    ax.tick_params(labelsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig_uri(fig)


def ood_histogram(detector: str, scores: Mapping[str, np.ndarray], auroc: Mapping[str, float]) -> str:
    """Scores of the held-out samples ("in") and of each OOD set on shared bins (higher = more likely OOD)."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.6))
    every = np.concatenate([np.asarray(v, float) for v in scores.values()])
    every = every[np.isfinite(every)]
    lo, hi = (float(every.min()), float(every.max())) if len(every) else (0.0, 1.0)
    bins = np.linspace(lo, hi + 1e-12 + (hi - lo) * 1e-9, 31)
    for k, (name, v) in enumerate(scores.items()):
        label = "held-out (in)" if name == "in" else f"{name} (AUROC {auroc.get(name, float('nan')):.3f})"
        ax.hist(np.asarray(v, float), bins=bins, density=True, histtype="stepfilled" if name == "in" else "step",
                alpha=0.35 if name == "in" else 1.0, linewidth=1.3, color=CLASS_COLORS[k % len(CLASS_COLORS)],
                label=label)
    ax.set_xlabel(f"{detector} score (higher = more likely OOD)", fontsize=9)
    ax.set_ylabel("density", fontsize=9)
    ax.tick_params(labelsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig_uri(fig)


def magnified(clean: np.ndarray, adversarial: np.ndarray) -> tuple[np.ndarray, float]:
    """The perturbation as an image: 0.5 + delta / (2 max |delta|) (grey = unchanged), and the factor applied."""
    delta = np.asarray(adversarial, float) - np.asarray(clean, float)
    top = float(np.abs(delta).max())
    if top == 0:
        return np.full_like(delta, 0.5), 0.0
    return np.clip(0.5 + delta / (2 * top), 0, 1), 1.0 / (2 * top)
