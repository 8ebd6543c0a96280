"""build_context: the only thing templates see — a JSON-safe dict with figures as data URIs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..result import AuditResult
from ..types import Finding
from ..views.stage import MAX_EVIDENCE_IMAGES
from . import figures
from .comparison import comparison_context
from .fmt import fmt
from .questions import explainer_questions
from .results import jsonable

STATUS_ORDER = {"fail": 0, "error": 1, "warn": 2, "pass": 3}



def _not_model_sensitive(findings: tuple[Finding, ...]) -> set[str]:
    out: set[str] = set()
    for f in findings:
        names = f.details.get("not_model_sensitive") if isinstance(f.details, Mapping) else None
        if names:
            out.update(str(n) for n in names)
    return out


def _grid(r: AuditResult, scales: dict[str, figures.Scale], warn: set[str]) -> dict[str, Any]:
    ok = [e for e in r.explanations.outcomes if e.status == "ok" and e.maps is not None]
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
            view = r.views.samples[sid]
            cells.append({"uri": figures.overlay_cell(view.image, amap, scales[e.name], view.roi,
                                                      size=figures.cell_px(view.image)), "note": status})
        d = r.task.describe(pr, i)
        view = r.views.samples[sid]
        rows.append({
            "id": sid,
            "why": why[sid],
            "label": d.label,
            "predicted": d.predicted,
            "confidence": fmt(d.confidence),
            "correct": bool(d.correct),
            "input": figures.image_cell(view.image, view.roi, size=figures.cell_px(view.image)),
            "cells": cells,
        })
    per_table = 5  # explainer columns per table, so a row fits an A4 page
    chunks = [list(range(i, min(i + per_table, len(columns)))) for i in range(0, len(columns), per_table)] or [[]]
    return {"columns": columns, "rows": rows, "chunks": chunks}


def _finding_ctx(f: Finding, r: AuditResult, scales: dict[str, figures.Scale]) -> dict[str, Any]:
    name = f.details.get("explainer") if isinstance(f.details, Mapping) else None
    images = []
    for sid in f.sample_ids[:MAX_EVIDENCE_IMAGES]:
        view = r.views.samples.get(sid)
        if view is None:
            continue
        key = (str(name), sid)
        d = r.task.describe(r.predictions, int(r.predictions.index_of([sid])[0]))
        caption = f"{sid} — true '{d.label}', predicted '{d.predicted}'"
        if name and key in r.views.finding_maps:
            amap = r.views.finding_maps[key]
            sc = scales.get(str(name)) or figures.shared_scale(amap[None], bool(np.any(amap < 0)))
            images.append({"uri": figures.overlay_cell(view.image, amap, sc, view.roi), "caption": caption})
        else:
            images.append({"uri": figures.image_cell(view.image, view.roi), "caption": caption})
    return {
        "id": f.rule, "kind": f.kind, "severity": f.severity, "status": f.status, "message": f.message,
        "value": fmt(f.value, 4), "threshold": fmt(f.threshold, 4), "n_samples": len(f.sample_ids),
        "sample_ids": list(f.sample_ids[:12]), "explainer": name or "", "images": images,
        "details": json.dumps(jsonable(dict(f.details)), indent=1)[:4000] if f.details else "",
    }


def _views_ctx(r: AuditResult) -> dict[str, Any] | None:
    v = r.views.model
    outcome = r.task.outcome(r.predictions)
    if v is None or outcome is None:
        return None
    pr = r.predictions
    labels, correct = pr.labels[v.rows], outcome[v.rows]
    names = {"pca": "PCA", "tsne": "t-SNE"}
    figs = [figures.embedding_figure(c, labels, correct, r.classes, f"{names.get(m, m)} of penultimate features")
            for m, c in v.embeddings.items()]
    probe = figures.probe_figure(v.probe_accuracy, float(np.max(np.bincount(pr.labels)) / pr.n)) \
        if v.probe_accuracy else None
    return {
        "embeddings": figs, "n": len(v.rows), "probe_figure": probe,
        "probe": [{"layer": k, "accuracy": fmt(a)} for k, a in v.probe_accuracy.items()],
        "notes": list(v.notes),
    }


def _layer_views_ctx(r: AuditResult) -> dict[str, Any] | None:
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


def build_context(r: AuditResult, document_id: str = "") -> dict[str, Any]:
    """Everything the templates show. ``document_id`` is the short SHA-256 of results.json."""
    scales: dict[str, figures.Scale] = {}
    for e in r.explanations.outcomes:
        if e.status == "ok" and e.maps is not None:
            scales[e.name] = figures.shared_scale(e.maps.maps, e.signed)
    fmaps = r.views.finding_maps
    for name in {n for n, _ in fmaps} - set(scales):
        same = np.stack([v for (n, _), v in fmaps.items() if n == name])
        scales[name] = figures.shared_scale(same, bool(np.any(same < 0)))
    warn = _not_model_sensitive(r.findings)
    findings = sorted(r.findings, key=lambda f: (STATUS_ORDER[f.status], f.rule))
    prov = r.provenance.as_dict()
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
        "pickled_model": r.model.pickled,
        "model_notes": [*r.model.notes, *r.provenance.data["notes"]],
        "model_source": r.model.source,
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
        "sections": [{"id": sec.id, "title": sec.title, "template": sec.template, "pagebreak": sec.pagebreak,
                      **sec.context} for sec in r.task.report_sections(r.metrics)],
        "classes": list(r.classes),
        "grid": _grid(r, scales, warn),
        "views": _views_ctx(r),
        "layer_views": _layer_views_ctx(r),
        "explainers": [
            {"name": e.name, "title": e.title, "legend": e.legend, "status": e.status, "reason": e.reason,
             "signed": e.signed, "warning": "not model-sensitive" if e.name in warn else ""}
            for e in r.explanations.outcomes
        ],
        "questions": explainer_questions(r),
        "skipped": [{"path": s.path, "reason": s.reason} for s in r.skipped],
        "config_json": json.dumps(r.config.to_jsonable(), indent=2),
        "rerun": f"audit run {r.config.source or '<config.toml>'} --seed {r.config.seed}",
        "comparison": comparison_context(r),
    }
