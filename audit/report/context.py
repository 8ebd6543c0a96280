"""build_context: the only thing templates see — a JSON-safe dict with figures as data URIs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..runner import MAX_EVIDENCE_IMAGES, AuditResult
from ..types import Finding
from . import figures
from .questions import explainer_questions
from .results import jsonable

STATUS_ORDER = {"fail": 0, "error": 1, "warn": 2, "pass": 3}


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None or not np.isfinite(v):
        return "—"
    return f"{v:.{digits}f}"


def _not_model_sensitive(findings: tuple[Finding, ...]) -> set[str]:
    out: set[str] = set()
    for f in findings:
        names = f.details.get("not_model_sensitive") if isinstance(f.details, Mapping) else None
        if names:
            out.update(str(n) for n in names)
    return out


def _grid(r: AuditResult, scales: dict[str, figures.Scale], warn: set[str]) -> dict[str, Any]:
    ok = [e for e in r.explanations if e.status == "ok" and e.maps is not None]
    columns = [
        {"name": e.name, "title": e.title, "signed": e.signed,
         "colorbar": figures.colorbar(scales[e.name], e.title + (" (signed)" if e.signed else "")),
         "warning": "not model-sensitive" if e.name in warn else ""}
        for e in ok
    ]
    why: dict[str, list[str]] = {}  # why each sample was picked, short: the row already shows label and confidence
    for p in r.picks.all_picks():
        lines = why.setdefault(p.sample_id, [])
        if p.category == "borderline" and not any(x.startswith("top-1 − top-2") for x in lines):
            lines.insert(0, f"top-1 − top-2 margin {p.margin:.3f}")
        short = p.reason.split(": ", 1)[-1]
        if short not in lines:
            lines.append(short)
    pr = r.predictions
    ids = list(r.picks.all_ids())
    rows = []
    for sid in ids:
        i = int(pr.index_of([sid])[0])
        cells = []
        for e in ok:
            assert e.maps is not None
            amap = e.maps.get(sid)
            status = ""
            if not np.isfinite(amap).all():
                status = "non-finite values"
            elif not np.any(amap):
                status = "all-zero map"
            view = r.views[sid]
            cells.append({"uri": figures.overlay_cell(view.image, amap, scales[e.name], view.roi,
                                                      size=figures.cell_px(view.image)), "note": status})
        rows.append({
            "id": sid,
            "why": why[sid],
            "label": r.classes[int(pr.labels[i])],
            "predicted": r.classes[int(pr.preds[i])],
            "confidence": _fmt(float(pr.confidence[i])),
            "correct": bool(pr.correct[i]),
            "input": figures.image_cell(r.views[sid].image, r.views[sid].roi, size=figures.cell_px(r.views[sid].image)),
            "cells": cells,
        })
    per_table = 5  # explainer columns per table, so a row fits an A4 page
    chunks = [list(range(i, min(i + per_table, len(columns)))) for i in range(0, len(columns), per_table)] or [[]]
    return {"columns": columns, "rows": rows, "chunks": chunks}


def _finding_ctx(f: Finding, r: AuditResult, scales: dict[str, figures.Scale]) -> dict[str, Any]:
    name = f.details.get("explainer") if isinstance(f.details, Mapping) else None
    images = []
    for sid in f.sample_ids[:MAX_EVIDENCE_IMAGES]:
        view = r.views.get(sid)
        if view is None:
            continue
        key = (str(name), sid)
        pr = r.predictions
        i = int(pr.index_of([sid])[0])
        caption = f"{sid} — true '{r.classes[int(pr.labels[i])]}', predicted '{r.classes[int(pr.preds[i])]}'"
        if name and key in r.finding_maps:
            amap = r.finding_maps[key]
            sc = scales.get(str(name)) or figures.shared_scale(amap[None], bool(np.any(amap < 0)))
            images.append({"uri": figures.overlay_cell(view.image, amap, sc, view.roi), "caption": caption})
        else:
            images.append({"uri": figures.image_cell(view.image, view.roi), "caption": caption})
    return {
        "id": f.rule, "kind": f.kind, "severity": f.severity, "status": f.status, "message": f.message,
        "value": _fmt(f.value, 4), "threshold": _fmt(f.threshold, 4), "n_samples": len(f.sample_ids),
        "sample_ids": list(f.sample_ids[:12]), "explainer": name or "", "images": images,
        "details": json.dumps(jsonable(dict(f.details)), indent=1)[:4000] if f.details else "",
    }


def _explanation_changes_ctx(comp: Mapping[str, Any], r: AuditResult) -> list[dict[str, Any]]:
    """Per explainer: similarity of shared picks' maps, ROI share per class, and the least similar pairs drawn."""
    titles = {e.name: e.title for e in r.explanations}
    pairs = r.extras.get("map_pairs") or {}
    out = []
    for name, e in (comp.get("explanations") or {}).items():
        images = []
        for sid, bmap, cmap in pairs.get(name, []):
            view = r.views.get(sid)
            if view is None:
                continue
            both = np.stack([bmap, cmap])
            sc = figures.shared_scale(both, bool(np.any(both < 0)))
            row = next((x for x in e["lowest"] if x["id"] == sid), {})
            images.append({
                "id": sid, "input": figures.image_cell(view.image, view.roi),
                "baseline": figures.overlay_cell(view.image, bmap, sc, view.roi),
                "candidate": figures.overlay_cell(view.image, cmap, sc, view.roi),
                "caption": f"true '{row.get('label', '')}', explained '{row.get('target', '')}', Spearman "
                           f"{_fmt(row.get('spearman'), 2)}, SSIM {_fmt(row.get('ssim'), 2)}",
            })
        out.append({
            "name": name, "title": titles.get(name, name), "status": e["status"], "reason": e.get("reason", ""),
            "n_compared": e["n_compared"], "n_target_differs": e.get("n_target_differs", 0),
            "n_undefined": e.get("n_undefined", 0),
            "spearman_median": _fmt((e.get("spearman") or {}).get("median"), 2),
            "spearman_min": _fmt((e.get("spearman") or {}).get("min"), 2),
            "ssim_median": _fmt((e.get("ssim") or {}).get("median"), 2),
            "roi": [{"name": c["class"], "n": c["n"], "baseline": _fmt(c["baseline"], 2),
                     "candidate": _fmt(c["candidate"], 2), "delta": f"{c['delta']:+.2f}",
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


def _comparison_ctx(comp: Mapping[str, Any] | None, r: AuditResult) -> dict[str, Any] | None:
    if not comp:
        return None
    metrics = []
    for name, d in comp["metrics"].items():
        ci = d.get("delta_ci95")
        metrics.append({"name": name, "baseline": _fmt(d["baseline"], 4), "candidate": _fmt(d["candidate"], 4),
                        "delta": f"{d['delta']:+.4f}", "ci": f"{ci[0]:+.4f} to {ci[1]:+.4f}" if ci else "—"})
    per_class = [{"name": r["class"], "baseline": _fmt(r["recall_baseline"]), "candidate": _fmt(r["recall_candidate"]),
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
            "examples": flips["to_wrong_examples"][:10],
        },
    }


def _views_ctx(r: AuditResult) -> dict[str, Any] | None:
    v = r.extras.get("model_views")
    if v is None:
        return None
    pr = r.predictions
    labels, correct = pr.labels[v.rows], pr.correct[v.rows]
    names = {"pca": "PCA", "tsne": "t-SNE"}
    figs = [figures.embedding_figure(c, labels, correct, r.classes, f"{names.get(m, m)} of penultimate features")
            for m, c in v.embeddings.items()]
    probe = figures.probe_figure(v.probe_accuracy, float(np.max(np.bincount(pr.labels)) / pr.n)) \
        if v.probe_accuracy else None
    return {
        "embeddings": figs, "n": len(v.rows), "probe_figure": probe,
        "probe": [{"layer": k, "accuracy": _fmt(a)} for k, a in v.probe_accuracy.items()],
        "notes": list(v.notes),
    }


def _layer_views_ctx(r: AuditResult) -> dict[str, Any] | None:
    lv = r.extras.get("layer_views")
    if lv is None:
        return None
    rows = []
    for i, sid in enumerate(lv.ids):
        view = r.views[sid]
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


def build_context(r: AuditResult, document_id: str = "") -> dict[str, Any]:
    """Everything the templates show. ``document_id`` is the short SHA-256 of results.json."""
    scales: dict[str, figures.Scale] = {}
    for e in r.explanations:
        if e.status == "ok" and e.maps is not None:
            scales[e.name] = figures.shared_scale(e.maps.maps, e.signed)
    for name in {n for n, _ in r.finding_maps} - set(scales):
        same = np.stack([v for (n, _), v in r.finding_maps.items() if n == name])
        scales[name] = figures.shared_scale(same, bool(np.any(same < 0)))
    m = r.metrics
    warn = _not_model_sensitive(r.findings)
    findings = sorted(r.findings, key=lambda f: (STATUS_ORDER[f.status], f.rule))
    prov = r.provenance
    title = r.config.report.title or f"Model audit: {r.config.model.name or r.config.name}"
    card = dict(prov.get("model_card", {}))
    return {
        "document_id": document_id or "draft",
        "date": str(prov["finished"])[:10],
        "model_name": r.config.model.name or r.config.name,
        "model_version": r.config.model.version or card.get("version") or "—",
        "author": card.get("owner") or "model-audit",
        "title": title,
        "name": r.config.name,
        "verdict": r.verdict,
        "verdict_text": "PASS — every error-severity rule passed" if r.verdict == "pass"
        else "FAIL — at least one error-severity rule failed or could not be evaluated",
        "counts": {s: sum(1 for f in r.findings if f.status == s) for s in ("pass", "warn", "fail", "error")},
        "blocking": [_finding_ctx(f, r, scales) for f in findings if f.blocking],
        "findings": [_finding_ctx(f, r, scales) for f in findings],
        "pack": {"name": r.pack.name, "description": r.pack.description, "path": str(r.pack.path)},
        "pickled_model": r.pickled_model,
        "model_source": r.model_source,
        "model_card": dict(prov.get("model_card", {})),
        "provenance": {
            "model_sha256": (prov["model"].get("sha256") or "— (no model file)"),
            "model_files": prov["model"]["files"],
            "data_source": prov["data"]["source"],
            "manifest_sha256": prov["data"].get("manifest_sha256") or "— (image folder)",
            "images_sha256": prov["data"]["images_sha256"],
            "n_listed": prov["data"]["n_listed"],
            "n_scored": prov["data"]["n_scored"],
            "n_skipped": prov["data"]["n_skipped"],
            "rule_pack_sha256": prov["rule_pack"]["sha256"],
            "rule_pack_extends": list(prov["rule_pack"].get("extends", [])),
            "compute": prov.get("compute") or {},
            "versions": prov["versions"],
            "seed": prov["seed"],
            "device": prov["device"],
            "git": prov.get("git"),
            "started": prov["started"],
            "finished": prov["finished"],
        },
        "metrics": {
            "n": m.n,
            "accuracy": _fmt(m.accuracy),
            "accuracy_ci": f"{_fmt(m.accuracy_ci[0])}–{_fmt(m.accuracy_ci[1])}",
            "balanced_accuracy": _fmt(m.balanced_accuracy),
            "macro_f1": _fmt(m.macro_f1),
            "weighted_f1": _fmt(m.weighted_f1),
            "ece": _fmt(m.calibration.ece),
            "mce": _fmt(m.calibration.mce),
            "nll": _fmt(m.nll),
            "brier": _fmt(m.brier),
            "top_k": [{"k": k, "value": _fmt(v)} for k, v in m.top_k.items()],
            "per_class": [
                {"name": c.name, "precision": _fmt(c.precision), "recall": _fmt(c.recall), "f1": _fmt(c.f1),
                 "support": c.support}
                for c in m.per_class
            ],
            "subgroups": [
                {"column": g.column, "value": g.value, "n": g.n, "accuracy": _fmt(g.accuracy),
                 "ci": f"{_fmt(g.accuracy_ci[0])}–{_fmt(g.accuracy_ci[1])}",
                 "balanced_accuracy": _fmt(g.balanced_accuracy), "macro_f1": _fmt(g.macro_f1)}
                for g in m.subgroups
            ],
        },
        "classes": list(r.classes),
        "confusion": {
            "figure": figures.confusion_figure(m.confusion, m.confusion_normalized, r.classes),
            "counts": m.confusion.tolist(),
            "normalized": [[_fmt(v, 2) for v in row] for row in m.confusion_normalized],
        },
        "calibration_figure": figures.reliability_figure(m.calibration),
        "grid": _grid(r, scales, warn),
        "views": _views_ctx(r),
        "layer_views": _layer_views_ctx(r),
        "explainers": [
            {"name": e.name, "title": e.title, "legend": e.legend, "status": e.status, "reason": e.reason,
             "signed": e.signed, "warning": "not model-sensitive" if e.name in warn else ""}
            for e in r.explanations
        ],
        "questions": explainer_questions(r),
        "skipped": [{"path": s.path, "reason": s.reason} for s in r.skipped],
        "config_json": json.dumps(r.config.to_jsonable(), indent=2),
        "rerun": f"audit run {r.config.source or '<config.toml>'} --seed {r.config.seed}",
        "comparison": _comparison_ctx(r.extras.get("comparison"), r),
    }
