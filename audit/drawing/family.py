"""The family's forest plot: each member's metric with its interval on one axis (the released member and the mean
ensemble marked), the trained members' mean as a dashed line and its t-interval as a band. Same reading rules as
the other charts (``figures``)."""

from __future__ import annotations

from collections.abc import Sequence

from .figures import CLASS_COLORS, fig_uri, plt

WIDTH_IN = 4.4  # the report's chart width (inches)
MARKERS = {"released": ("o", 7, CLASS_COLORS[0]), "member": ("o", 5, "black"), "ensemble": ("s", 6, "dimgray")}


def forest_figure(metric: str, rows: Sequence[tuple[str, str, float, tuple[float, float] | None]],
                  mean: float | None, band: tuple[float, float] | None, level: str) -> str:
    """``rows``: (member, role, value, interval or None), drawn top to bottom."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.9 + 0.3 * len(rows)))
    ys = list(range(len(rows)))[::-1]
    if band is not None:
        ax.axvspan(band[0], band[1], color=CLASS_COLORS[1], alpha=0.15, linewidth=0,
                   label=f"members' mean, {level} t-interval")
    if mean is not None:
        ax.axvline(mean, color=CLASS_COLORS[1], linestyle="--", linewidth=1)
    for y, (_, role, value, ci) in zip(ys, rows, strict=True):
        marker, size, colour = MARKERS.get(role, MARKERS["member"])
        if ci is not None:
            ax.plot(ci, [y, y], color=colour, linewidth=1.2)
        ax.plot([value], [y], marker=marker, markersize=size, color=colour, linestyle="none")
    ax.set_yticks(ys, labels=[f"{name} (released)" if role == "released" else name for name, role, _, _ in rows])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(metric, fontsize=9)
    ax.tick_params(labelsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    if band is not None:
        ax.legend(fontsize=9, frameon=False, loc="lower left", bbox_to_anchor=(0.0, 1.0))
    return fig_uri(fig)
