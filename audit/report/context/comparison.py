"""The report context of "Changes since baseline": metric deltas, recall per class, flips, and how the
explanations of the baseline's picks changed (similarity figures and the least similar pairs drawn)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...drawing import figures
from ...drawing.fmt import fmt
from ...result import AuditResult
from .views import unit_of


def _explanation_changes_ctx(comp: Mapping[str, Any], r: AuditResult) -> list[dict[str, Any]]:
    """Per explainer: similarity of shared picks' maps, ROI share per class, and the least similar pairs drawn."""
    titles = {e.name: e.title for e in r.explanations.outcomes}
    pairs = r.comparison.map_pairs if r.comparison is not None else {}
    out = []
    for name, e in (comp.get("explanations") or {}).items():
        images = []
        for sid, bmap, cmap in pairs.get(name, []):
            view = r.views.samples.get(sid)
            if view is None:
                continue
            both = np.stack([bmap, cmap])
            sc = figures.shared_scale(both, bool(np.any(both < 0)))
            row = next((x for x in e["lowest"] if x["id"] == sid), {})
            images.append({
                "id": sid, "input": figures.image_cell(view.image, view.roi),
                "baseline": figures.overlay_cell(view.image, bmap, sc, view.roi),
                "candidate": figures.overlay_cell(view.image, cmap, sc, view.roi),
                "colorbar": figures.colorbar(sc, titles.get(name, name), unit_of(name)),  # this pair's own scale
                "caption": f"true '{row.get('label', '')}', explained '{row.get('target', '')}', Spearman "
                           f"{fmt(row.get('spearman'), 2)}, SSIM {fmt(row.get('ssim'), 2)}",
            })
        out.append({
            "name": name, "title": titles.get(name, name), "status": e["status"], "reason": e.get("reason", ""),
            "n_compared": e["n_compared"], "n_target_differs": e.get("n_target_differs", 0),
            "n_undefined": e.get("n_undefined", 0),
            "spearman_median": fmt((e.get("spearman") or {}).get("median"), 2),
            "spearman_min": fmt((e.get("spearman") or {}).get("min"), 2),
            "ssim_median": fmt((e.get("ssim") or {}).get("median"), 2),
            "roi": [{"name": c["class"], "n": c["n"], "baseline": fmt(c["baseline"], 2),
                     "candidate": fmt(c["candidate"], 2), "delta": f"{c['delta']:+.2f}",
                     "regressed": c["delta"] <= -0.1} for c in e.get("roi_share_per_class", [])],
            "images": images,
        })
    return out


def _roi_change_table(explanations: list[dict[str, Any]]) -> dict[str, Any]:
    """One table, classes x explainers: candidate ROI share and its change since the baseline."""
    with_roi = [e for e in explanations if e["roi"]]
    classes: dict[str, int] = {}
    for e in with_roi:
        for c in e["roi"]:
            classes.setdefault(c["name"], c["n"])
    rows = []
    for name, n in classes.items():
        cells = []
        for e in with_roi:
            c = next((x for x in e["roi"] if x["name"] == name), None)
            cells.append({"text": f"{c['candidate']} ({c['delta']})", "regressed": c["regressed"]} if c
                         else {"text": "—", "regressed": False})
        rows.append({"name": name, "n": n, "cells": cells})
    return {"explainers": [e["title"] for e in with_roi], "rows": rows}


def comparison_context(r: AuditResult) -> dict[str, Any] | None:
    """The report's \"Changes since baseline\" section, or None without a baseline."""
    if r.comparison is None:
        return None
    comp = r.comparison.data
    metrics = []
    for name, d in comp["metrics"].items():
        ci = d.get("delta_ci95")
        metrics.append({"name": name, "baseline": fmt(d["baseline"], 4), "candidate": fmt(d["candidate"], 4),
                        "delta": f"{d['delta']:+.4f}", "ci": f"{ci[0]:+.4f} to {ci[1]:+.4f}" if ci else "—"})
    per_class = [{"name": r["class"], "baseline": fmt(r["recall_baseline"]), "candidate": fmt(r["recall_candidate"]),
                  "delta": f"{r['recall_delta']:+.3f}", "regressed": r["recall_delta"] < 0} for r in comp["per_class"]]
    flips = comp.get("flips")
    explanations = _explanation_changes_ctx(comp, r)
    return {
        "paired": comp["paired"],
        "baseline": comp["baseline"],
        "metrics": metrics,
        "per_class": per_class,
        "newly_failing": comp["rules"]["newly_failing"],
        "newly_passing": comp["rules"]["newly_passing"],
        "explanations": explanations,
        "roi_table": _roi_change_table(explanations),
        "max_pairs": max((len(e["images"]) for e in explanations), default=0),
        "flips": None if not flips else {
            "to_wrong": flips["to_wrong"], "to_right": flips["to_right"],
            "examples": flips["to_wrong_examples"][:10], "n_listed": len(flips["to_wrong_examples"]),
        },
    }
