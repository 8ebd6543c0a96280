"""Report sections drawn from the model views: embeddings, linear probes, layer activations and inversions; and
what one unit of each explainer's map means (the colour bars' captions)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...result import AuditResult
from ...drawing import charts, figures
from ...drawing.fmt import fmt

#: what one unit of each explainer's map means (colour-bar captions); an unknown method gets the generic line
UNITS: dict[str, str] = {
    "gradcam": "ReLU of gradient-weighted activations, arbitrary units",
    "gradcam_pp": "ReLU of Grad-CAM++-weighted activations, arbitrary units",
    "guided_gradcam": "guided gradient × Grad-CAM, arbitrary units",
    "cam": "classifier-weighted feature map, logit units (the map's mean is the logit minus the bias)",
    "saliency": "|∂ logit / ∂ input|, logit per unit of normalised input",
    "smoothgrad": "mean |∂ logit / ∂ input| over noisy copies, logit per unit of normalised input",
    "guided_backprop": "guided gradient, arbitrary units",
    "deconvnet": "deconvnet signal, arbitrary units",
    "integrated_gradients": "logit contribution per pixel (the map sums to logit(input) − logit(baseline))",
    "gradient_shap": "expected logit contribution per pixel (SHAP values)",
    "occlusion": "logit drop when a patch covering the pixel is occluded",
    "lime": "weight of the pixel's segment in a local linear model of the score",
    "kernel_shap": "Shapley value of the pixel's segment, score units",
    "lrp": "relevance, logit units (sums to the logit)",
    "layer_activations": "channel-summed activation, arbitrary units (not class evidence)",
    "feature_inversion": "reconstructed intensity",
    "attention_rollout": "attention flow to the patch, share 0–1",
}
GENERIC_UNIT = "attribution, the method's own units"


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
