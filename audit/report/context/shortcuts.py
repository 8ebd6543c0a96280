"""Report context of the shortcut checks: the data-level checks (image properties and metadata columns that
alone predict a class, duplicates, train/held-out overlap) tied to the rules that test whether the model uses
them, the shortcut classes the pack left unchecked, and the parameter-randomisation curves of every explainer.

``shortcuts_context(result)`` is JSON-safe apart from figure data URIs; templates ``_datachecks.html.j2`` and
``_sanity_curves.html.j2`` read it as ``shortcuts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt

from ...drawing import figures
from ...result import AuditResult
from ...rules import registry as rule_registry
from ...rules.coverage import coverage, shortcut_classes
from ...rules.data_confounder import PROPERTY_CLASS

MAX_ROWS = 25  # property/group rows shown (all are in results.json)


def _fmt(v: Any, d: int = 2) -> str:
    return "—" if v is None else f"{float(v):.{d}f}"


def datachecks_context(r: AuditResult, cover: list[dict[str, Any]]) -> dict[str, Any] | None:
    dc = r.datachecks
    if dc is None:
        return None
    by_class = {c["class"]: c for c in cover}
    rows = []
    for p in dc.properties:
        for g in p.per_group:
            if g["auc"] is None:
                continue
            rows.append((g["ci95"][0], p, g))
    rows.sort(key=lambda t: -t[0])
    limit = next((float(f.threshold) for f in r.findings if f.kind == "data_confounder" and f.threshold is not None),
                 0.7)
    table = []
    for lo, p, g in rows[:MAX_ROWS]:
        cls = PROPERTY_CLASS.get(p.name, "metadata")
        use = by_class.get(cls, {}).get("rules", [])
        table.append({
            "property": p.name, "source": p.source, "description": p.description, "group": g["group"],
            "auc": _fmt(g["auc"]), "ci": f"{_fmt(g['ci95'][0])}–{_fmt(g['ci95'][1])}", "flagged": lo > limit,
            "shortcut_class": cls,
            "use": [{"rule": u["rule"], "status": u["status"]} for u in use if u["rule"] != "data-confounders"
                    and u["kind"] != "data_confounder"],
        })
    notes = [p.name + ": " + p.note for p in dc.properties if p.note and p.note != "constant"]
    return {
        "n_images": dc.n_images, "seconds": f"{dc.seconds:.1f}", "limit": _fmt(limit), "rows": table,
        "n_rows": len(rows), "n_flagged": sum(1 for lo, _, _ in rows if lo > limit),
        "roi_context": any(rec.roi_box is not None or rec.roi_mask is not None for rec in r.inputs.heldout.records),
        "duplicates": {"cross_class": dc.n_cross_class_duplicates, "same_class": dc.n_same_class_duplicates,
                       "examples": [{"a": d.a, "b": d.b, "kind": d.kind, "labels": " vs ".join(d.labels)}
                                    for d in dc.cross_class_duplicates[:10]]},
        "train": dc.train, "notes": [*dc.notes, *notes],
    }


def sanity_context(r: AuditResult) -> list[dict[str, Any]]:
    out = []
    for f in r.findings:
        if f.kind != "explanation_sanity" or not isinstance(f.details, Mapping):
            continue
        per = f.details.get("explainers") or {}
        if not per:
            continue
        fig, ax = plt.subplots(figsize=(figures.CHART_WIDTH_IN, 3.0))
        steps = 0
        for name, e in per.items():
            curve = [v for v in e.get("spearman_curve", [])]
            steps = max(steps, len(curve))
            xs = [i + 1 for i, v in enumerate(curve) if v is not None]
            ys = [v for v in curve if v is not None]
            style = "--" if not e.get("model_sensitive", True) else "-"
            ax.plot(xs, ys, style, marker="o", ms=3, label=f"{e.get('title', name)}")
        limit = f.details.get("limit", f.threshold)
        if limit is not None:
            ax.axhline(float(limit), color="grey", lw=1, ls=":")
        judged = f.details.get("top_layers") if f.details.get("statistic") == "top" else None
        if judged:
            ax.axvspan(0.5, min(int(judged), steps) + 0.5, color="0.9", zorder=0)
        ax.set_xlabel("layers randomised, from the top", fontsize=9)
        ax.set_ylabel("Spearman of |maps|,\ntrained vs randomised", fontsize=9)
        ax.set_xticks(range(1, steps + 1))
        ax.set_xlim(0.5, steps + 0.5)
        ax.set_ylim(-0.3, 1.05)
        ax.tick_params(labelsize=9)
        # below the plot, never over the curves (they start at the top left and may end anywhere)
        ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
        rows = []
        for name, e in per.items():
            rows.append({"name": name, "title": e.get("title", name), "value": _fmt(e.get("spearman")),
                         "sensitive": e.get("model_sensitive"), "n": e.get("n_compared"),
                         "n_constant_randomised": e.get("n_constant_randomised_maps", 0),
                         "n_constant_trained": e.get("n_constant_trained_maps", 0),
                         "curve": ", ".join(_fmt(v) for v in e.get("spearman_curve", []))})
        out.append({"rule": f.rule, "status": f.status, "figure": figures.fig_uri(fig), "rows": rows,
                    "limit": _fmt(limit), "judged": judged, "layers": list(next(iter(per.values())).get("layers", []))})
        plt.close(fig)
    return out


def shortcuts_context(r: AuditResult) -> dict[str, Any]:
    kinds = list(rule_registry().values())
    cover = coverage([x for x in r.pack.rules if x.phase == "main"], r.findings, kinds)
    unchecked = [c for c in cover if not c["checked"]]
    return {
        "coverage": cover,
        "unchecked": [{"class": c["class"], "description": c["description"], "why": c["why_unchecked"]}
                      for c in unchecked],
        "classes": shortcut_classes(kinds),
        "data": datachecks_context(r, cover),
        "sanity": sanity_context(r),
        "not_applicable": [{"rule": f.rule, "message": f.message} for f in r.findings if f.status == "not_applicable"],
    }
