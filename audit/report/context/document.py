"""build_context: the only thing templates see — a JSON-safe dict with figures as data URIs.

One context serves both renderings: the interactive HTML (``mode="html"``: map cells as a transparent heat layer
over a per-row base image, so the reader can change the opacity) and the static PDF (``mode="pdf"``: the same
maps composed at the default opacity). ``formats`` says which of the two are drawn.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...drawing import figures
from ...drawing.fmt import fmt
from ...products import Finding
from ...result import AuditResult
from ...views.stage import MAX_EVIDENCE_IMAGES
from ..criteria import comparison as criterion_comparison
from ..criteria import limit_words, number, region_words, verdict_sentence
from ..flags import evidence_note, flags
from ..record import finding_dict, jsonable, rule_params
from .comparison import comparison_context
from .concepts import concepts_context
from .family import family_context
from .questions import explainer_questions
from .robustness import robustness_context
from .shortcuts import shortcuts_context
from .slices import slices_context
from .views import layer_views_context, unit_of, views_context

STATUS_ORDER = {"fail": 0, "error": 1, "warn": 2, "pass": 3}



def _not_model_sensitive(findings: tuple[Finding, ...]) -> set[str]:
    out: set[str] = set()
    for f in findings:
        names = f.details.get("not_model_sensitive") if isinstance(f.details, Mapping) else None
        if names:
            out.update(str(n) for n in names)
    return out


def shown_path(path: str | os.PathLike[str] | None, base: Path | None) -> str:
    """A path as the report prints it: relative to the config's folder when inside it, a temporary folder
    written as ``<tmp>/…``, else as given (results.json keeps the full path)."""
    if not path:
        return "—"
    p = Path(path)
    for root, label in ((base, None), (Path(tempfile.gettempdir()), "<tmp>")):
        if root is None:
            continue
        try:
            rel = p.resolve().relative_to(Path(root).resolve())
        except (ValueError, OSError):
            continue
        return str(rel) if label is None else f"{label}/{rel}"
    return str(p)


def params_text(name: str, params: Mapping[str, Any]) -> str:
    """The explainer's parameters as run, in words: "layer features.12 (default, resolved at run time)"."""
    if not params:
        return "no parameters"
    parts = []
    for key, value in params.items():
        if key.endswith("_source") or key in ("window_used", "stride_used", "resolution_note"):
            continue
        if key in ("layer", "layers"):
            shown = ", ".join(value) if isinstance(value, list) else str(value)
            src = params.get(f"{key}_source")
            parts.append(f"{key} {shown}" + (f" ({src})" if src else " (configured)"))
        elif key == "window" and "window_used" in params:
            h, w = params["window_used"]
            parts.append(f"window {h}×{w} px" + (f" (configured {value}, clamped to the image)"
                                                  if [h, w] != [value, value] else ""))
        elif key == "stride" and "stride_used" in params:
            h, w = params["stride_used"]
            parts.append(f"stride {h}×{w} px")
        elif key == "n_steps":
            parts.append(f"{value} steps")
        else:
            parts.append(f"{key.replace('_', ' ')} {value}")
    if params.get("resolution_note"):
        parts.append(str(params["resolution_note"]))
    return ", ".join(parts)


def _categories(r: AuditResult) -> dict[str, list[str]]:
    """Pick categories of every picked sample ("correct", "incorrect", "borderline"), for the HTML filters."""
    out: dict[str, list[str]] = {}
    for p in r.picks.all_picks():
        cats = out.setdefault(p.sample_id, [])
        if p.category not in cats:
            cats.append(p.category)
    return out


def _grid(r: AuditResult, scales: dict[str, figures.Scale], warn: set[str], draw: set[str]) -> dict[str, Any]:
    ok = [e for e in r.explanations.outcomes if e.status == "ok" and e.maps is not None]
    target = r.config.explainers.target
    columns = [
        {"name": e.name, "title": e.title, "signed": e.signed,
         "colorbar": figures.colorbar(scales[e.name], e.title, unit_of(e.name)),
         "warning": "not model-sensitive" if e.name in warn else ""}
        for e in ok
    ]
    # why each sample was picked, short: the row already shows label and confidence; a task without right or wrong
    # answers keeps the figure its picks are ranked by ("Dice 1.000, …: #1 best overall")
    top2 = "top-1 − top-2" in r.task.pick_kinds["borderline"][1]
    ranked_by_metric = r.task.outcome(r.predictions) is None
    why: dict[str, list[str]] = {}
    for p in r.picks.all_picks():
        lines = why.setdefault(p.sample_id, [])
        if top2 and p.category == "borderline" and not any(x.startswith("top-1 − top-2") for x in lines):
            lines.insert(0, f"top-1 − top-2 margin {p.margin:.3f}")
        short = p.reason if ranked_by_metric else p.reason.split(": ", 1)[-1]
        if short not in lines:
            lines.append(short)
    cats = _categories(r)
    pr = r.predictions
    rows = []
    for ri, sid in enumerate(r.picks.all_ids()):
        i = int(pr.index_of([sid])[0])
        view = r.views.samples[sid]
        d = r.task.describe(pr, i)
        explained = ""  # the class the maps explain, when it is not the one the caption already names
        cells = []
        for e in ok:
            assert e.maps is not None
            amap = e.maps.get(sid)
            t = int(e.maps.targets[e.maps.ids.index(sid)])
            name = r.classes[t] if 0 <= t < len(r.classes) else str(t)
            if not explained and name != (d.predicted if target == "predicted" else d.label):
                explained = name
            status = ""
            if not np.isfinite(amap).all():
                status = "non-finite values"
            elif not np.any(amap):
                status = "all-zero map"
            cells.append({
                "explainer": e.name, "note": status,
                "alt": f"{e.title} map of {sid} explaining '{name}'",
                "uri": figures.overlay_cell(view.image, amap, scales[e.name], view.roi) if "pdf" in draw else "",
                "heat": figures.heat_layer(view.image, amap, scales[e.name], view.roi) if "html" in draw else "",
            })
        rows.append({
            "index": ri,
            "id": sid,
            "why": why[sid],
            "label": d.label,
            "predicted": d.predicted,
            "confidence": fmt(d.confidence),
            "correct": d.correct,  # None: the task has no right or wrong answer per image (no colour)
            "explained": explained,
            "categories": cats.get(sid, []),
            "input": figures.image_cell(view.image, view.roi),
            "base": figures.base_cell(view.image) if "html" in draw else "",
            "cells": cells,
        })
    per_table = 5  # explainer columns per PDF table, so a row fits an A4 page
    chunks = [list(range(i, min(i + per_table, len(columns)))) for i in range(0, len(columns), per_table)] or [[]]
    order = {c: i for i, c in enumerate(r.classes)}
    first = {lab: i for i, lab in reversed(list(enumerate(row["label"] for row in rows)))}
    labels = sorted(first, key=lambda lab: (order.get(lab, len(order)), first[lab]))  # class order, then as picked
    kinds = r.task.pick_kinds
    return {"columns": columns, "rows": rows, "chunks": chunks, "target": target, "classes": labels,
            "categories": [{"key": c, "title": kinds[c][1]} for c in kinds], "opacity": figures.ALPHA_MAX}


def _region_marks(details: Any, hw: tuple[int, int]) -> tuple[list[figures.Mark], list[dict[str, str]]]:
    """The fixed regions a finding judged (``details.judged_region``) and, when smaller, the one that carries the
    effect (``details.named_region``), as boxes in model-input pixels: masks to draw and their legend."""
    if not isinstance(details, Mapping):
        return [], []
    marks: list[figures.Mark] = []
    legend: list[dict[str, str]] = []
    judged = details.get("judged_region")
    for key, rgb, css, words in (("judged_region", figures.JUDGED_RGB, "judged", "the region judged"),
                                 ("named_region", figures.CARRIER_RGB, "carrier",
                                  "the smaller region that carries the effect")):
        reg = details.get(key)
        if not isinstance(reg, Mapping) or not reg.get("boxes"):
            continue  # per-sample regions (background, object) follow each image's ROI, which is drawn already
        if key == "named_region" and isinstance(judged, Mapping) and reg.get("key") == judged.get("key"):
            continue
        mask = np.zeros(hw, dtype=bool)
        for x0, y0, x1, y1 in reg["boxes"]:
            mask[max(0, int(y0)):int(y1), max(0, int(x0)):int(x1)] = True
        if mask.any():
            marks.append((mask, rgb))
            legend.append({"css": css, "text": f"{words}: {region_words(reg.get('label', reg.get('key', '')))}"})
    return marks, legend


def _finding_ctx(f: Finding, r: AuditResult, scales: dict[str, figures.Scale],
                 params: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    name = f.details.get("explainer") if isinstance(f.details, Mapping) else None
    images = []
    colorbar = None
    legend: list[dict[str, str]] = []
    has_roi = False
    for sid in f.sample_ids[:MAX_EVIDENCE_IMAGES]:
        view = r.views.samples.get(sid)
        if view is None:
            continue
        marks, legend = _region_marks(f.details, tuple(view.image.shape[:2]))
        has_roi = has_roi or view.roi is not None
        key = (str(name), sid)
        d = r.task.describe(r.predictions, int(r.predictions.index_of([sid])[0]))
        caption = f"{sid} — true '{d.label}', predicted '{d.predicted}'"
        if name and key in r.views.finding_maps:
            amap = r.views.finding_maps[key]
            sc = scales.get(str(name)) or figures.shared_scale(amap[None], bool(np.any(amap < 0)))
            if colorbar is None:
                title = next((e.title for e in r.explanations.outcomes if e.name == name), str(name))
                colorbar = figures.colorbar(sc, title, unit_of(str(name)))
            images.append({"uri": figures.overlay_cell(view.image, amap, sc, view.roi, marks=marks),
                           "caption": caption, "alt": f"{name} map of {caption}"})
        else:
            images.append({"uri": figures.image_cell(view.image, view.roi, marks=marks), "caption": caption,
                           "alt": f"input {caption}"})
    if legend and has_roi:
        legend.append({"css": "roi", "text": "the region of interest (dashed)"})
    entry = finding_dict(f, params.get(f.rule))
    crit = entry["criterion"]
    return {
        "id": f.rule, "kind": f.kind, "severity": f.severity, "status": f.status, "message": f.message,
        "blocking": f.blocking,
        "value": fmt(f.value, 4), "threshold": fmt(f.threshold, 4),
        "value_raw": f.value, "criterion": crit,
        "measured": number(f.value, crit["unit"]), "limit": number(f.threshold, crit["unit"]),
        "limit_words": limit_words(crit),
        "comparison": "not evaluated" if f.status == "error" and f.value is None
        else criterion_comparison(crit, f.value, f.threshold),
        "headline": entry["headline"],
        "subject": entry["subject"].get("text", ""),
        "description": entry["description"],
        "n_samples": len(f.sample_ids),
        "sample_ids": list(f.sample_ids[:12]), "explainer": name or "", "images": images, "colorbar": colorbar,
        "region_legend": legend if images else [],
        "details": json.dumps(jsonable(dict(f.details)), indent=1)[:4000] if f.details else "",
    }


def build_context(r: AuditResult, document_id: str = "", formats: Iterable[str] = ("html", "pdf")) -> dict[str, Any]:
    """Everything the templates show. ``document_id`` is the short SHA-256 of results.json; ``formats`` says
    which renderings ("html", "pdf") the figures are drawn for."""
    draw = set(formats) & {"html", "pdf"} or {"html", "pdf"}
    scales: dict[str, figures.Scale] = {}
    for e in r.explanations.outcomes:
        if e.status == "ok" and e.maps is not None:
            scales[e.name] = figures.shared_scale(e.maps.maps, e.signed)
    fmaps = r.views.finding_maps
    for name in {n for n, _ in fmaps} - set(scales):
        same = np.stack([v for (n, _), v in fmaps.items() if n == name])
        scales[name] = figures.shared_scale(same, bool(np.any(same < 0)))
    warn = _not_model_sensitive(r.findings)
    params = rule_params(r)
    findings = sorted(r.findings, key=lambda f: (STATUS_ORDER.get(f.status, 4), f.rule))
    finding_ctx = [_finding_ctx(f, r, scales, params) for f in findings]
    prov = r.provenance.as_dict()
    title = r.config.report.title or f"Model audit: {r.config.model.name or r.config.name}"
    card = dict(prov.get("model_card", {}))
    base = Path(r.config.base_dir) if r.config.source else None
    rules_json = [jsonable(finding_dict(f, params.get(f.rule))) for f in r.findings]
    blocking_ids = [f.rule for f in r.findings if f.blocking]
    reason = verdict_sentence({"rules": rules_json, "summary": {"blocking": blocking_ids}})
    counts = {s: sum(1 for f in r.findings if f.status == s) for s in ("pass", "warn", "fail", "error")}
    other = sorted({f.status for f in r.findings} - set(counts))
    data = prov["data"]
    config_name = Path(r.config.source).name if r.config.source else "<config.toml>"
    return {
        "document_id": document_id or "draft",
        "date": str(prov["finished"])[:10],
        "model_name": r.config.model.name or r.config.name,
        "model_version": r.config.model.version or card.get("version") or "—",
        "author": card.get("owner") or "model-audit",
        "title": title,
        "name": r.config.name,
        "verdict": r.verdict,
        "verdict_reason": reason,
        "verdict_text": "PASS — every error-severity rule passed" if r.verdict == "pass"
        else "FAIL — " + (f"blocking: {', '.join(blocking_ids)}" if blocking_ids
                          else "at least one error-severity rule failed or could not be evaluated"),
        "counts": counts,
        "other_counts": [{"status": s, "n": sum(1 for f in r.findings if f.status == s)} for s in other],
        "blocking": [f for f in finding_ctx if f["blocking"]],
        "findings": finding_ctx,
        "pack": {"name": r.pack.name, "description": r.pack.description, "path": str(r.pack.path)},
        "pickled_model": r.model.pickled,
        "evidence_note": evidence_note(r),
        "flags": flags(r),
        "model_notes": [*r.model.notes, *data["notes"]],
        "model_source": r.model.source,
        "model_card": card,
        "provenance": {
            "model_sha256": (prov["model"].get("sha256") or "— (no model file)"),
            "model_files": prov["model"]["files"],
            "data_source": shown_path(data["source"], base),
            "manifest_sha256": data.get("manifest_sha256") or "— (image folder)",
            "images_sha256": data["images_sha256"],
            "n_listed": data["n_listed"],
            "n_scored": data["n_scored"],
            "n_skipped": data["n_skipped"],
            "rule_pack_sha256": prov["rule_pack"]["sha256"],
            "rule_pack_extends": list(prov["rule_pack"].get("extends", [])),
            "compute": prov.get("compute") or {},
            "versions": prov["versions"],
            "seed": prov["seed"],
            "device": prov["device"],
            "git": prov.get("git"),
            "started": prov["started"],
            "finished": prov["finished"],
            "cache_notes": [n.text() for n in r.scored.cache_log.notes],
            # run-dependent: timings.json's record (audit.timing), not results.json's
            "timings": r.timings.rows() if r.timings is not None else [],
            "timings_counted": r.timings.counted if r.timings is not None else "",
        },
        "sections": [{"id": sec.id, "title": sec.title, "template": sec.template, "pagebreak": sec.pagebreak,
                      **sec.context} for sec in (*r.task.report_sections(r.metrics),
                                                  *r.task.sample_sections(r.predictions, r.picks, r.views.samples))],
        "classes": list(r.classes),
        "grid": _grid(r, scales, warn, draw),
        "views": views_context(r),
        "layer_views": layer_views_context(r),
        "explainers": [
            {"name": e.name, "title": e.title, "legend": e.legend, "status": e.status, "reason": e.reason,
             "signed": e.signed, "warning": "not model-sensitive" if e.name in warn else "",
             "params": params_text(e.name, e.params), "unit": unit_of(e.name)}
            for e in r.explanations.outcomes
        ],
        "questions": explainer_questions(r),
        "skipped": [{"path": s.path, "reason": s.reason} for s in r.skipped],
        "config_json": json.dumps(r.config.to_jsonable(), indent=2),
        "rerun": f"audit run {config_name} --seed {r.config.seed}",
        "rerun_note": "run in the folder that holds the config; relative paths in it are read from there",
        "comparison": comparison_context(r),
        "concepts": concepts_context(r),
        "robustness": robustness_context(r),
        "slices": slices_context(r),
        "family": family_context(r),
        "shortcuts": shortcuts_context(r),
    }
