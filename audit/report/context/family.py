"""The report's family section ([[family]]): the context ``templates/_family.html.j2`` reads (JSON-safe; the forest
plot as coordinates the template draws in SVG). Read from the family stage's record (``FamilyRun.as_dict``, what
results.json keeps) and the family rules' findings, so the report shows what the export holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...drawing.fmt import fmt
from ...result import AuditResult
from ..criteria import metric_label

WIDTH, LEFT, RIGHT, ROW = 640, 120, 20, 22  # the forest plot's geometry (SVG user units)


def _ci(ci: Sequence[float | None] | None) -> str:
    return "—" if not ci or ci[0] is None or ci[1] is None else f"{fmt(ci[0])}–{fmt(ci[1])}"


def _forest(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """Each member's key metric with its interval on one axis, the trained members' mean and t-interval as a band."""
    metric = doc["key_metric"]
    rows = [(m["name"], m["role"], m["metrics"].get(metric), m["intervals"].get(metric)) for m in doc["members"]]
    rows = [r for r in rows if r[2] is not None]
    spread = doc["spread"].get(metric) or {}
    ends = [v for _, _, v, ci in rows for v in (v, *(ci or ())) if v is not None]
    ends += [v for v in (spread.get("t_interval") or ()) if v is not None]
    if not rows or not ends:
        return None
    lo, hi = min(ends), max(ends)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    def x(v: float) -> float:
        return round(LEFT + (v - lo) / (hi - lo) * (WIDTH - LEFT - RIGHT), 1)

    band = spread.get("t_interval") or [None, None]
    points = [{"name": name, "role": role, "y": ROW * (i + 1), "x": x(v), "value": fmt(v),
               "lo": x(ci[0]) if ci and ci[0] is not None else None,
               "hi": x(ci[1]) if ci and ci[1] is not None else None} for i, (name, role, v, ci) in enumerate(rows)]
    height = ROW * (len(rows) + 2)
    return {"metric": metric_label(metric)[0], "width": WIDTH, "height": height, "left": LEFT, "points": points,
            "mean": x(spread["mean"]) if spread.get("mean") is not None else None,
            "band": [x(band[0]), x(band[1])] if band[0] is not None and band[1] is not None else None,
            "axis": [{"x": x(v), "label": fmt(v)} for v in (lo + pad, (lo + hi) / 2, hi - pad)],
            "axis_y": height - ROW // 2}


def _confusion(pooled: Mapping[str, Any] | None, classes: Sequence[str]) -> list[dict[str, Any]]:
    if not pooled or pooled.get("confusion") is None:
        return []
    return [{"label": classes[i], "cells": row} for i, row in enumerate(pooled["confusion"])]


def family_context(r: AuditResult) -> dict[str, Any] | None:
    """What the family section shows; None without [[family]]."""
    if r.family is None:
        return None
    doc = r.family.as_dict()
    metrics = doc["metrics"]
    kinds = {f.kind for f in r.findings if f.kind.startswith("family_")}
    check = doc["released_check"]
    released = None
    if check is not None:
        verdict = ("cannot tell (fewer than two other members)" if check["outlier"] is None
                   else "an outlier of the family" if check["outlier"] else "within the family's spread")
        released = {"member": check["member"], "metric": metric_label(check["metric"])[0],
                    "value": fmt(check["value"]), "interval": _ci(check["prediction_interval"]),
                    "others": check["other_members"], "verdict": verdict}
    pooled = doc["pooled_out_of_fold"]
    return {
        "level": f"{doc['level']:.0%}",
        "released": doc["released"],
        "metric_labels": [metric_label(m)[0] for m in metrics],
        "members": [{"name": m["name"], "role": m["role"], "n": m["n"],
                     "fold": "—" if m["out_of_fold"] is None else m["out_of_fold"],
                     "cells": [f"{fmt(m['metrics'].get(k))} ({_ci(m['intervals'].get(k))})"
                               if m["intervals"].get(k) else fmt(m["metrics"].get(k)) for k in metrics]}
                    for m in doc["members"]],
        "spread": [{"metric": metric_label(k)[0], "n": s["n"], "mean": fmt(s["mean"]), "sd": fmt(s["sd"]),
                    "interval": _ci(s["t_interval"]), "range": f"{fmt(s['min'])}–{fmt(s['max'])}"}
                   for k, s in doc["spread"].items()],
        "forest": _forest(doc),
        "shared_rows": doc["shared_rows"],
        "pooled": None if pooled is None else {
            "members": pooled["members"], "n": pooled["n"],
            "metrics": [{"metric": metric_label(k)[0], "value": fmt(v), "interval": _ci(pooled["intervals"].get(k))}
                        for k, v in pooled["metrics"].items()],
            "classes": list(r.classes), "confusion": _confusion(pooled, r.classes)},
        "agreement": [{"a": p["a"], "b": p["b"], "n": p["n"], "kappa": fmt(p["kappa"]), "changed": p["changed"],
                       "a_only": "—" if p["a_right_b_wrong"] is None else p["a_right_b_wrong"],
                       "b_only": "—" if p["a_wrong_b_right"] is None else p["a_wrong_b_right"]}
                      for p in doc["agreement"]],
        "maps": {"top": f"{doc['explanation_agreement']['top_fraction']:.1%}",
                 "n": len(doc["explanation_agreement"]["samples"]),
                 "unavailable": [e for e in doc["explanation_agreement"]["explainers"] if e["status"] != "ok"],
                 "pairs": [{**p, "rank_correlation": fmt(p["rank_correlation"]), "top_overlap": fmt(p["top_overlap"])}
                           for p in doc["explanation_agreement"]["pairs"]]},
        "rules": [{"rule": o["rule"], "k": o["k"], "of": o["of"], "failing": ", ".join(o["failing"]) or "none",
                   "errors": ", ".join(o["errors"]),
                   "statuses": [{"member": x["member"], "status": x["status"]} for x in o["members"]]}
                  for o in doc["rules"]],
        "released_check": released,
        "findings": [{"id": f.rule, "status": f.status} for f in r.findings if f.kind in kinds],
        "comparison": _comparison(doc["comparison"]),
        "notes": doc["notes"],
    }


def _comparison(c: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not c:
        return None

    def delta(d: Mapping[str, Any]) -> str:
        return "—" if d["delta"] is None else f"{fmt(d['baseline'])} → {fmt(d['current'])} ({d['delta']:+.3f})"

    return {"spread": [{"metric": metric_label(k)[0], "mean": delta(s["mean"]), "sd": delta(s["sd"])}
                       for k, s in c["spread"].items()],
            "rules": [{"rule": x["rule"], "baseline": f"{x['baseline']['k']} of {x['baseline']['of']}",
                       "current": f"{x['current']['k']} of {x['current']['of']}"} for x in c["rules"]],
            "kappa": delta(c["kappa_min"]),
            "only_current": c["only_current"], "only_baseline": c["only_baseline"]}
