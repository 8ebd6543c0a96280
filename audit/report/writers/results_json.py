"""results.json: the machine-readable record of an audit (versioned schema, see README)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ...products import Pick
from ...provenance import with_cache_notes
from ...result import AuditResult
from ...version import SCHEMA_VERSION
from ..criteria import verdict_sentence
from ..flags import flags
from ..record import finding_dict, jsonable, rule_params
from .base import OutputFormat, Report, json_document

#: the ``$schema`` pointer written into results.json: the ``$id`` of ``audit/schema/results.schema.json``
SCHEMA_URI = f"https://model-audit.invalid/schema/results-{SCHEMA_VERSION}.json"


def _pick(p: Pick, classes: tuple[str, ...]) -> dict[str, Any]:
    out = {
        "id": p.sample_id, "scope": p.scope, "label": p.label_name or classes[p.label],
        "predicted": p.predicted_name or classes[p.pred], "confidence": p.confidence, "margin": p.margin,
        "reason": p.reason,
    }
    if p.target is not None:  # a pick for one label of a multi-label (or the finding of a binary) model
        out["explains"] = classes[p.target]
    return out


def build_results(r: AuditResult, maps_file: str | None = None) -> dict[str, Any]:
    """The results.json document; ``maps_file`` names the maps.npz written beside it, if any."""
    classes = r.classes
    kinds = r.task.pick_kinds  # the task's names of its pick lists: "best" / "worst" by Dice, or right / wrong
    samples: dict[str, Any] = {kinds[c][0]: [_pick(p, classes) for p in r.picks.overall.get(c, ())] for c in kinds}
    samples["per_class"] = {
        classes[ci]: {kinds[c][0]: [_pick(p, classes) for p in cats.get(c, ())] for c in kinds}
        for ci, cats in r.picks.per_class.items()
    }
    samples["lists"] = {key: title for key, title in kinds.values()}
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
    if r.robustness is not None:
        out["robustness"] = r.robustness.as_dict()
    if r.family is not None:
        out["family"] = r.family.as_dict()
    if r.slices is not None:
        out["slices"] = r.slices.as_dict()
    out["summary"]["reason"] = verdict_sentence(out)
    out["summary"]["flags"] = flags(r)
    return jsonable(out)


def dumps(results: Mapping[str, Any]) -> str:
    return json.dumps(results, indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n"


class JsonOutput(OutputFormat):
    """results.json, always written (every other document is built from it)."""

    name = "json"
    title = "results.json (the machine-readable record)"
    files: ClassVar = {"json": "results.json"}
    parsers: ClassVar = {"results.json": json_document}
    always = True

    def write(self, report: Report, folder: Path) -> None:
        (folder / "results.json").write_text(report.results_text, encoding="utf-8")
