"""ROC and precision-recall figures of binary and multi-label audits, with the operating point marked."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import colormaps

from ..scoring.labels import LabelMetrics
from .figures import CHART_WIDTH_IN, fig_uri

FONT = 9  # pt


def roc_pr_figure(labels: Sequence[LabelMetrics]) -> str:
    """ROC (top) and precision-recall (below) of every label, each operating point marked with a dot; one legend
    under the two plots, clear of the curves."""
    fig, (roc, pr) = plt.subplots(2, 1, figsize=(CHART_WIDTH_IN, 7.6))
    colours = colormaps["tab10"]
    for i, m in enumerate(labels):
        c = colours(i % 10)
        if m.roc:
            roc.plot(*zip(*m.roc, strict=True), color=c, lw=1.4, label=f"{m.name} (AUROC {m.auroc:.3f}, AP {m.auprc:.3f})")
            roc.plot([1 - m.op.rate("specificity")], [m.op.rate("sensitivity")], "o", color=c, ms=6,
                     markeredgecolor="black")
        if m.pr:
            pr.plot(*zip(*m.pr, strict=True), color=c, lw=1.4)
            pr.plot([m.op.rate("sensitivity")], [m.op.rate("ppv")], "o", color=c, ms=6, markeredgecolor="black")
            pr.axhline(m.prevalence, color=c, lw=0.8, ls=":")
    roc.plot([0, 1], [0, 1], "--", color="grey", lw=0.8)
    roc.set(xlabel="false-positive rate (1 − specificity)", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01),
            title="ROC (dot = operating point)")
    pr.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", xlim=(0, 1), ylim=(0, 1.01),
           title="Precision-recall (dotted = prevalence)")
    for ax in (roc, pr):
        ax.title.set_fontsize(FONT)
        ax.tick_params(labelsize=FONT)
        ax.xaxis.label.set_fontsize(FONT)
        ax.yaxis.label.set_fontsize(FONT)
    if len(labels) <= 12:
        pr.legend(*roc.get_legend_handles_labels(), fontsize=FONT, loc="upper center", bbox_to_anchor=(0.5, -0.2),
                  ncol=1, frameon=False)
    fig.tight_layout()
    return fig_uri(fig)
