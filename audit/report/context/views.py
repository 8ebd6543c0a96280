"""Report sections drawn from the model views: embeddings, linear probes, layer activations and inversions; and
what one unit of each explainer's map means (the colour bars' captions, from the explainer classes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...drawing import charts, figures
from ...drawing.fmt import fmt
from ...explainers import registry as explainer_registry
from ...explainers.base import GENERIC_UNIT
from ...result import AuditResult


def unit_of(name: str) -> str:
    """What one unit of an explainer's map means (its colour bar's caption), as the explainer's class states it."""
    cls = explainer_registry().get(name)
    return cls.unit if cls is not None else GENERIC_UNIT


def views_context(r: AuditResult) -> dict[str, Any] | None:
    """The model-views section: embeddings of penultimate features and linear-probe accuracies (None: off)."""
    v = r.views.model
    outcome = r.task.outcome(r.predictions)
    if v is None or outcome is None:
        return None
    pr = r.predictions
    labels, correct = pr.labels[v.rows], outcome[v.rows]
    names = {"pca": "PCA", "tsne": "t-SNE"}
    figs = [charts.embedding_figure(c, labels, correct, r.classes, f"{names.get(m, m)} of penultimate features")
            for m, c in v.embeddings.items()]
    probe = charts.probe_figure(v.probe_accuracy, float(np.max(np.bincount(pr.labels)) / pr.n)) \
        if v.probe_accuracy else None
    return {
        "embeddings": figs, "n": len(v.rows), "probe_figure": probe,
        "probe": [{"layer": k, "accuracy": fmt(a)} for k, a in v.probe_accuracy.items()],
        "notes": list(v.notes),
    }


def layer_views_context(r: AuditResult) -> dict[str, Any] | None:
    """The layer-views section: per-layer activations and feature inversions of a few samples (None: off)."""
    lv = r.views.layers
    if lv is None:
        return None
    rows = []
    for i, sid in enumerate(lv.ids):
        view = r.views.samples[sid]
        act_cells = []
        for layer in lv.layers:
            if layer in lv.activations:
                m = lv.activations[layer][i]
                act_cells.append(figures.overlay_cell(view.image, m, figures.shared_scale(m[None], bool((m < 0).any()))))
        inv_cells = [figures.image_cell(lv.inversions[layer][i]) for layer in lv.layers if layer in lv.inversions]
        rows.append({"id": sid, "input": figures.image_cell(view.image, view.roi), "activations": act_cells,
                     "inversions": inv_cells})
    return {
        "layers": list(lv.layers), "rows": rows, "has_activations": bool(lv.activations),
        "has_inversions": bool(lv.inversions),
        "gains": [{"layer": k, "gain": f"{v:.0%}"} for k, v in lv.inversion_gain.items()],
        "notes": list(lv.notes),
    }
