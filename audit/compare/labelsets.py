"""Comparison of two multi-label audits on the same held-out set: macro/micro metric deltas with paired bootstrap
intervals, per-label AUROC and sensitivity changes, and decisions that flipped, label by label."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..scoring.ranking import bootstrap, percentile_interval, weighted_auroc

HEADLINE = ("macro_auroc", "macro_auprc", "micro_auroc", "macro_sensitivity", "macro_specificity",
            "subset_accuracy", "hamming_loss")
MAX_LISTED_FLIPS = 50


def compare_label_sets(bm: Mapping[str, Any], cm: Mapping[str, Any], classes: list[str], ids: list[str],
                       y: np.ndarray, sb: np.ndarray | None, sc: np.ndarray | None, pb: np.ndarray, pc: np.ndarray,
                       seed: int) -> dict[str, Any]:
    """``y`` (N, K) truth, ``sb``/``sc`` (N, K) scores when both audits kept them, ``pb``/``pc`` (N, K) decisions,
    candidate row order."""
    metrics: dict[str, Any] = {}
    for name in HEADLINE:
        b, c = bm.get(name), cm.get(name)
        if b is not None and c is not None:
            metrics[name] = {"baseline": b, "candidate": c, "delta": c - b}
    usable = [k for k in range(y.shape[1]) if 0 < y[:, k].sum() < len(y)]
    if sb is not None and sc is not None and usable and "macro_auroc" in metrics:
        def delta(w: np.ndarray) -> np.ndarray:
            return np.nanmean(np.stack([weighted_auroc(y[:, k], sc[:, k], w) - weighted_auroc(y[:, k], sb[:, k], w)
                                        for k in usable]), axis=0)
        metrics["macro_auroc"]["delta_ci95"] = list(percentile_interval(bootstrap(delta, len(y), seed)))
    b_lab = {r["label"]: r for r in bm.get("per_label", [])}
    per_class = []
    for r in cm.get("per_label", []):
        b = b_lab.get(r["label"])
        if b is None:
            continue
        sens_b, sens_c = b["operating_point"]["sensitivity"], r["operating_point"]["sensitivity"]
        per_class.append({"class": r["label"], "recall_baseline": sens_b, "recall_candidate": sens_c,
                          "recall_delta": (sens_c - sens_b) if sens_b is not None and sens_c is not None else 0.0,
                          "auroc_delta": (r["auroc"] - b["auroc"]) if r["auroc"] is not None and b["auroc"] is not None
                          else None})
    right_b, right_c = pb == y, pc == y
    to_wrong = np.argwhere(right_b & ~right_c)
    to_right = np.argwhere(~right_b & right_c)

    def flip(i: int, k: int) -> dict[str, Any]:
        return {"id": ids[i], "label": classes[k], "truth": int(y[i, k]), "baseline": int(pb[i, k]),
                "candidate": int(pc[i, k])}

    return {"metrics": metrics, "per_class": per_class,
            "flips": {"to_wrong": len(to_wrong), "to_right": len(to_right), "unit": "(sample, label) decisions",
                      "to_wrong_examples": [flip(int(i), int(k)) for i, k in to_wrong[:MAX_LISTED_FLIPS]],
                      "to_right_examples": [flip(int(i), int(k)) for i, k in to_right[:MAX_LISTED_FLIPS]]}}
