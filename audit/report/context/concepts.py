"""The report's concept-test section: the context ``templates/_concepts.html.j2`` reads (JSON-safe, figures as data
URIs). Only the concept stage's product and the concept_reliance findings are read."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...concepts.result import ConceptInfo, ConceptRun, ConceptTest
from ...drawing.figures import CHART_WIDTH_IN, fig_uri, png_uri  # the figures module selects matplotlib's Agg backend
from ...result import AuditResult

MAX_PANELS = 6  # classes drawn per concept (flagged ones first)
N_TOP_SHOWN = 4
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SCORE = 0.7


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "—"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.2f} ± {sd:.2f}" if math.isfinite(sd) else f"{mean:.2f}"


def _criteria(r: AuditResult) -> tuple[float, float, str]:
    """alpha, min_score and direction of the first concept_reliance rule (the defaults without one)."""
    for f in r.findings:
        if f.kind == "concept_reliance" and isinstance(f.details, Mapping) and "alpha" in f.details:
            return float(f.details["alpha"]), float(f.details["min_score"]), str(f.details.get("direction", ""))
    return DEFAULT_ALPHA, DEFAULT_MIN_SCORE, "increase"


def _verdict(t: ConceptTest, alpha: float, min_score: float, direction: str) -> tuple[str, str]:
    """(text, css class) of one test."""
    if not t.separable:
        return "layer cannot separate the concept", "muted"
    if not t.significant(alpha):
        return "not significant", ""
    score = max(t.mean, 1 - t.mean) if direction == "either" else t.mean
    if score >= min_score:
        return "used", "bad"
    return ("significant, concept lowers the logit" if t.mean < 0.5 else "significant, below the threshold"), ""


def _panel_figure(info: ConceptInfo, tests: list[ConceptTest], layers: tuple[str, ...], min_score: float) -> str:
    """Per class a panel: per layer the concept's TCAV score (mean ± sd over runs) beside the random CAVs'."""
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(t.group for t in tests))
    n = len(groups)
    cols = min(2, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(CHART_WIDTH_IN, 2.5 * rows + 0.6), squeeze=False, sharey=True)
    x = np.arange(len(layers))
    for k, group in enumerate(groups):
        ax = axes[k // cols][k % cols]
        by_layer = {t.layer: t for t in tests if t.group == group}
        c = [by_layer[lay].mean if lay in by_layer else np.nan for lay in layers]
        cs = [by_layer[lay].sd if lay in by_layer else 0.0 for lay in layers]
        rnd = [by_layer[lay].random_mean if lay in by_layer else np.nan for lay in layers]
        rs = [by_layer[lay].random_sd if lay in by_layer else 0.0 for lay in layers]
        ax.bar(x - 0.19, c, 0.36, yerr=np.nan_to_num(cs), color="#cc6677", capsize=2, label=f"'{info.name}'")
        ax.bar(x + 0.19, rnd, 0.36, yerr=np.nan_to_num(rs), color="#bbbbbb", capsize=2, label="random CAVs")
        for i, lay in enumerate(layers):
            t = by_layer.get(lay)
            if t is not None and not t.separable:
                ax.text(i - 0.19, 0.03, "n/s", ha="center", fontsize=9, rotation=90)
        ax.axhline(0.5, color="grey", lw=0.6, ls=":")
        ax.axhline(min_score, color="#cc6677", lw=0.6, ls="--")
        ax.set_ylim(0, 1.05)
        ax.set_xticks(x, labels=list(layers), rotation=45, ha="right", fontsize=9)
        ax.tick_params(axis="y", labelsize=9)
        ax.set_title(f"class '{group}'", fontsize=9)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].set_ylabel("TCAV score", fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(f"Concept '{info.name}': TCAV score per layer\n(mean ± sd over runs; dashed: rule threshold)",
                 fontsize=9)
    fig.tight_layout()
    fig.legend(handles, labels, fontsize=9, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False)
    return fig_uri(fig)


def _concept_ctx(run: ConceptRun, info: ConceptInfo, alpha: float, min_score: float, direction: str
                 ) -> dict[str, Any]:
    tests = run.tests_of(info.name)
    flagged = [g for g in dict.fromkeys(t.group for t in tests)
               if any(t.significant(alpha) and t.separable for t in tests if t.group == g)]
    order = flagged + [g for g in dict.fromkeys(t.group for t in tests) if g not in flagged]
    shown = set(order[:MAX_PANELS])
    rows = []
    for t in sorted(tests, key=lambda t: (order.index(t.group), run.layers.index(t.layer))):
        text, css = _verdict(t, alpha, min_score, direction)
        rows.append({"group": t.group, "layer": t.layer, "n": t.n_inputs, "tcav": _pm(t.mean, t.sd),
                     "random": _pm(t.random_mean, t.random_sd), "p": _p(t.p), "p_corrected": _p(t.p_corrected),
                     "accuracy": f"{t.cav_accuracy:.2f}", "verdict": text, "css": css,
                     "note": t.note + (f"; {t.n_zero} input(s) with a zero derivative" if t.n_zero else "")})
    top = []
    for g in flagged:
        best = min((t for t in tests if t.group == g and t.separable), key=lambda t: t.p_corrected)
        imgs = [{"uri": png_uri(run.thumbnails[sid]), "caption": f"{sid} (S = {d:.3g})"}
                for sid, d in zip(best.top_ids, best.top_derivatives, strict=False) if sid in run.thumbnails]
        if imgs:
            top.append({"group": g, "layer": best.layer, "images": imgs[:N_TOP_SHOWN]})
    accuracy = []
    for layer in run.layers:
        mine = [a for a in run.cavs if a.layer == layer and a.concept == info.name]
        rnd = [a for a in run.cavs if a.layer == layer and a.concept not in {c.name for c in run.concepts}]
        if mine:
            accuracy.append({"layer": layer, "dim": mine[0].dim, "concept": f"{mine[0].mean_accuracy:.2f}",
                             "random": f"{rnd[0].mean_accuracy:.2f}" if rnd else "—",
                             "separable": mine[0].mean_accuracy >= run.min_cav_accuracy})
    figure_tests = [t for t in tests if t.group in shown]
    return {
        "name": info.name, "description": info.description,
        "role": "forbidden" if info.forbidden else "required" if info.required else "reported only",
        "folder": info.folder, "n_images": info.n_images, "n_found": info.n_found, "classes": list(info.groups),
        "examples": [png_uri(e) for e in info.examples],
        "accuracy": accuracy,
        "figure": _panel_figure(info, figure_tests, run.layers, min_score) if figure_tests else None,
        "n_hidden_panels": len(order) - len(shown),
        "rows": rows, "top": top,
    }


def concepts_context(r: AuditResult) -> dict[str, Any] | None:
    """The section's context, or None when no concept tests were configured."""
    run = r.concepts
    if run is None:
        return None
    alpha, min_score, direction = _criteria(r)
    return {
        "error": run.error,
        "layers": list(run.layers), "runs": run.runs, "set_size": run.set_size, "activations": run.pooling,
        "classifier": {"sgd": "SGD, hinge loss, alpha 0.01", "logistic": "logistic regression"}.get(
            run.classifier, run.classifier),
        "random_source": run.random_source, "random_disjoint": run.random_disjoint, "m": run.m,
        "alpha": alpha, "min_score": min_score, "min_cav_accuracy": run.min_cav_accuracy,
        "seconds": f"{run.seconds:.1f}",
        "concepts": [_concept_ctx(run, c, alpha, min_score, direction) for c in run.concepts],
        "skipped": [{"what": k, "why": v} for k, v in run.skipped.items()],
        "notes": list(run.notes),
    }
