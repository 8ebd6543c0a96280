"""Compare the explanations of two audits sample by sample: map similarity and ROI share per class.

``audit compare`` has only the two reports' maps, so it compares the picks both audits share; ``audit run
--baseline`` explains every baseline pick with the candidate too. Only maps of the same sample *and* the same
explained class are compared (a map of another class answers another
question). Similarity is the Spearman rank correlation of absolute values and SSIM of the maps scaled to [0, 1]
(the measures of the randomisation test). A baseline map with no structure (constant) cannot be compared and is
counted as undefined; a constant candidate map counts as similarity 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..maps.stats import spearman_abs, ssim_abs
from ..maps.store import StoredMaps

LOWEST_LISTED = 5


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "mean": None, "min": None}
    a = np.asarray(values)
    return {"median": float(np.median(a)), "mean": float(a.mean()), "min": float(a.min())}


def compare_explainer(base: StoredMaps, cand: StoredMaps, classes: Sequence[str]) -> dict[str, Any]:
    """Similarity of the maps both audits hold for the same (sample, class), and ROI share per true class."""
    bi, ci = base.index(), cand.index()
    pairs = sorted(set(bi) & set(ci), key=lambda k: bi[k])
    shared_ids = set(base.ids) & set(cand.ids)
    n_target_differs = len(shared_ids - {sid for sid, _ in pairs})
    if pairs and base.maps.shape[1:] != cand.maps.shape[1:]:
        return {"status": "skipped", "n_compared": 0, "n_target_differs": n_target_differs,
                "reason": f"map sizes differ ({base.maps.shape[1:]} vs {cand.maps.shape[1:]})"}
    rows = []
    sp_vals, ss_vals = [], []
    n_undefined = 0
    for key in pairs:
        b, c = base.maps[bi[key]], cand.maps[ci[key]]
        sp, ss = spearman_abs(b, c), ssim_abs(b, c)
        if sp is None:
            n_undefined += 1
            continue
        sp_vals.append(sp)
        if ss is not None:
            ss_vals.append(ss)
        rows.append({"id": key[0], "label": classes[int(base.labels[bi[key]])], "target": classes[key[1]],
                     "spearman": sp, "ssim": ss})
    rows.sort(key=lambda r: (r["spearman"], r["id"]))
    per_class = []
    b_share = np.array([base.roi_share[bi[k]] for k in pairs], dtype=float)
    c_share = np.array([cand.roi_share[ci[k]] for k in pairs], dtype=float)
    labels = np.array([int(base.labels[bi[k]]) for k in pairs], dtype=int)
    both = np.isfinite(b_share) & np.isfinite(c_share)
    for k, name in enumerate(classes):
        sel = both & (labels == k)
        if not sel.any():
            continue
        mb, mc = float(b_share[sel].mean()), float(c_share[sel].mean())
        per_class.append({"class": name, "n": int(sel.sum()), "baseline": mb, "candidate": mc, "delta": mc - mb})
    return {
        "status": "ok" if sp_vals else "skipped",
        "reason": "" if sp_vals else ("no sample explained for the same class in both audits" if not pairs
                                      else "every baseline map is constant"),
        "n_compared": len(sp_vals), "n_undefined": n_undefined, "n_target_differs": n_target_differs,
        "spearman": _stats(sp_vals), "ssim": _stats(ss_vals),
        "lowest": rows[:LOWEST_LISTED],
        "roi_share_per_class": per_class,
    }


def compare_explanations(base: Mapping[str, StoredMaps], cand: Mapping[str, StoredMaps],
                         classes: Sequence[str]) -> dict[str, Any]:
    """One entry per explainer held by both audits (in the candidate's order)."""
    return {name: compare_explainer(base[name], cand[name], classes) for name in cand if name in base}
