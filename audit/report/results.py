"""results.json: the machine-readable record of an audit (versioned schema, see README)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import SCHEMA_VERSION
from ..provenance import with_cache_notes
from ..result import AuditResult
from ..types import Finding, Pick
from .criteria import criterion_of, verdict_sentence

#: the ``$schema`` pointer written into results.json: the ``$id`` of ``audit/schema/results.schema.json``
SCHEMA_URI = f"https://model-audit.invalid/schema/results-{SCHEMA_VERSION}.json"


def jsonable(x: Any) -> Any:
    """Plain JSON types only; NaN/inf become null; floats rounded to 6 significant digits for stable diffs."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        if not math.isfinite(f):
            return None
        return float(f"{f:.6g}")
    if x is None or isinstance(x, str):
        return x
    if isinstance(x, Path):
        return str(x)
    return str(x)


def _pick(p: Pick, classes: tuple[str, ...]) -> dict[str, Any]:
    out = {
        "id": p.sample_id, "scope": p.scope, "label": p.label_name or classes[p.label],
        "predicted": p.predicted_name or classes[p.pred], "confidence": p.confidence, "margin": p.margin,
        "reason": p.reason,
    }
    if p.target is not None:  # a pick for one label of a multi-label (or the finding of a binary) model
        out["explains"] = classes[p.target]
    return out


def rule_params(r: AuditResult) -> dict[str, dict[str, Any]]:
    """Each pack rule's parameters by rule id (metric names, limits, descriptions)."""
    return {rule.params.id: rule.params.model_dump(mode="json") for rule in r.pack.rules}


def finding_dict(f: Finding, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One entry of ``rules``; ``params`` (the rule's pack entry) name the metric a metric rule reads."""
    params = params or {}
    return {
        "id": f.rule, "kind": f.kind, "severity": f.severity, "status": f.status, "value": f.value,
        "threshold": f.threshold,
        "criterion": criterion_of(f.kind, f.details, params, f.threshold),
        "description": str(params.get("description") or ""),
        "message": f.message, "sample_ids": list(f.sample_ids),
        "details": dict(f.details),
    }


def build_results(r: AuditResult, maps_file: str | None = None) -> dict[str, Any]:
    """The results.json document; ``maps_file`` names the maps.npz written beside it, if any."""
    classes = r.classes
    samples: dict[str, Any] = {c: [_pick(p, classes) for p in r.picks.overall.get(c, ())]
                               for c in ("correct", "incorrect", "borderline")}
    samples["per_class"] = {
        classes[ci]: {c: [_pick(p, classes) for p in cats.get(c, ())] for c in ("correct", "incorrect", "borderline")}
        for ci, cats in r.picks.per_class.items()
    }
    counts = {s: sum(1 for f in r.findings if f.status == s)
              for s in ("pass", "warn", "fail", "error", "not_applicable")}
    for f in r.findings:  # statuses other rule kinds add (e.g. not_applicable) are counted too
        counts.setdefault(f.status, sum(1 for g in r.findings if g.status == f.status))
    params = rule_params(r)
    rules = [finding_dict(f, params.get(f.rule)) for f in r.findings]
    out = {
        "$schema": SCHEMA_URI,
        "schema_version": SCHEMA_VERSION,
        "name": r.config.name,
        "verdict": r.verdict,
        "summary": {
            "rules": counts,
            "blocking": [f.rule for f in r.findings if f.blocking],
            "n_samples": r.metrics.n,
            "n_listed": r.n_listed,
            "n_skipped": len(r.skipped),
        },
        "classes": list(classes),
        **r.task.results_sections(r.metrics),
        "samples": samples,
        "explainers": [
            {"name": e.name, "title": e.title, "status": e.status, "reason": e.reason, "signed": e.signed,
             "n_maps": 0 if e.maps is None else len(e.maps.ids), "parameters": dict(e.params)}
            for e in r.explanations.outcomes
        ],
        "rules": rules,
        "skipped": [{"path": s.path, "reason": s.reason} for s in r.skipped],
        "predictions": r.task.predictions_json(r.predictions),
        "provenance": with_cache_notes(r.provenance.as_dict(), r.scored.cache_log),
    }
    out["maps_file"] = maps_file
    if r.comparison is not None:
        out["comparison"] = r.comparison.data
    if r.concepts is not None:
        out["concepts"] = r.concepts.as_dict()
    if r.datachecks is not None:
        out["data_checks"] = r.datachecks.as_dict()
    out["summary"]["reason"] = verdict_sentence(out)
    return jsonable(out)


def dumps(results: Mapping[str, Any]) -> str:
    return json.dumps(results, indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n"
