"""The report's family section ([[family]]): the context ``templates/_family.html.j2`` reads (JSON-safe, the forest
plot as a data URI). Read from the family stage's record (``FamilyRun.as_dict``, what
results.json keeps) and the family rules' findings, so the report shows what the export holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...drawing.family import forest_figure
from ...drawing.fmt import fmt
from ...result import AuditResult
from ..criteria import metric_label


def _ci(ci: Sequence[float | None] | None) -> str:
    return "—" if not ci or ci[0] is None or ci[1] is None else f"{fmt(ci[0])}–{fmt(ci[1])}"


def _forest(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """Each member's key metric with its interval, the trained members' mean and t-interval as a band."""
    metric = doc["key_metric"]
    rows = [(m["name"], m["role"], m["metrics"].get(metric), m["intervals"].get(metric)) for m in doc["members"]]
    rows = [(name, role, v, tuple(ci) if ci and None not in ci else None) for name, role, v, ci in rows
            if v is not None]
    if not rows:
        return None
    spread = doc["spread"].get(metric) or {}
    band = spread.get("t_interval") or [None, None]
    label = metric_label(metric)[0]
    return {"uri": forest_figure(label, rows, spread.get("mean"), None if None in band else tuple(band),
                                 f"{doc['level']:.0%}"),
            "alt": f"forest plot of {label} per member: " + ", ".join(f"{n} {fmt(v)}" for n, _, v, _ in rows),
            "metric": label}


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
