"""report.formats "model_card": model_card.md with every section of the Hugging Face model-card template (the one
huggingface_hub ships, ``templates/modelcard_template.md``; YAML front matter with a model-index of the audited
metrics that ``huggingface_hub.ModelCardData`` parses) and model_card.json, a Model Card Toolkit document that
validates against its JSON schema 0.0.2 (``model_card_toolkit/schema/v0.0.2/model_card.schema.json``: no key of
ours at the top level; the verdict, the evidence hashes and what the audit cannot attest are in
``model_details.documentation``). Filled from results.json and the config's ``[model_card]``; every string from a
user or the data is escaped (inert Markdown; JSON strings in the YAML front matter); values a reader copies
(contact, hashes, times) are code spans, with no escape or invisible character in them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from ...config import ModelCardConfig
from ..criteria import headline_of
from .attest import ProviderDocument, cannot_attest, evidence, is_spdx, is_uri, metric_rows
from .base import json_document, utf8_text
from .hf_card import build_model_card_md
from .robustness_text import robustness_metrics

MCT_SCHEMA_VERSION = "0.0.2"
FILES = ("model_card.md", "model_card.json")


def _name(results: Mapping[str, Any]) -> str:
    model = (results.get("provenance") or {}).get("model") or {}
    return str(model.get("name") or results.get("name") or "model")


def _version(results: Mapping[str, Any], card: ModelCardConfig) -> str:
    model = (results.get("provenance") or {}).get("model") or {}
    return str(model.get("version") or card.version or "")


def _date(s: Any) -> str | None:
    try:
        return date.fromisoformat(str(s)[:10]).isoformat()
    except ValueError:
        return None


def _slices(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per-class and per-subgroup metrics as Model Card Toolkit performance metrics with a slice."""
    m = results.get("metrics") or {}
    out = []
    for c in m.get("per_class") or ():
        for key in ("precision", "recall", "f1", "iou", "dice"):
            if isinstance(c.get(key), (int, float)):
                out.append({"type": key, "value": f"{c[key]:.4f}", "slice": f"class={c.get('class')}"})
    for g in m.get("subgroups") or ():
        if g.get("accuracy") is not None:
            entry: dict[str, Any] = {"type": "accuracy", "value": f"{g['accuracy']:.4f}",
                                     "slice": f"{g.get('column')}={g.get('value')} (n={g.get('n')})"}
            ci = g.get("accuracy_ci95")
            if isinstance(ci, list) and len(ci) == 2 and None not in ci:
                entry["confidence_interval"] = {"lower_bound": f"{ci[0]:.4f}", "upper_bound": f"{ci[1]:.4f}"}
            out.append(entry)
    return out


def documentation(results: Mapping[str, Any], results_sha256: str) -> str:
    """The audit in words: verdict and reason, every evidence hash (``<item> SHA-256 <hex>``; ``audit verify``
    reads the results.json one), and what the audit cannot attest."""
    tool = (results.get("provenance") or {}).get("tool") or {}
    rows = evidence(results, results_sha256)
    hashes = "; ".join(f"{r['item']} SHA-256 {r['sha256']}" + (f" ({r['what']})" if r["what"] else "")
                       for r in rows if r["sha256"])
    return (f"Audited by {tool.get('name', 'model-audit')} {tool.get('version', '')}: verdict "
            f"{str(results.get('verdict')).upper()}. {(results.get('summary') or {}).get('reason', '')} "
            f"Evidence: {hashes}. The audit cannot attest " + " ".join(cannot_attest(results)))


def build_model_card_json(results: Mapping[str, Any], card: ModelCardConfig, results_sha256: str) -> dict[str, Any]:
    prov = results.get("provenance") or {}
    data = prov.get("data") or {}
    cfg = prov.get("config") or {}
    dcfg = cfg.get("data") or {}
    perf = []
    for r in metric_rows(results):
        entry: dict[str, Any] = {"type": r["name"], "value": f"{r['value']:.4f}", "slice": "held-out set"}
        if r["ci95"]:
            entry["confidence_interval"] = {"lower_bound": f"{r['ci95'][0]:.4f}", "upper_bound": f"{r['ci95'][1]:.4f}"}
        perf.append(entry)
    rules = list(results.get("rules") or ())
    version: dict[str, str] = {"name": _version(results, card)}
    when = _date(prov.get("finished"))
    if when:
        version["date"] = when
    lic = card.license.strip()
    return {
        "schema_version": MCT_SCHEMA_VERSION,
        "model_details": {
            "name": _name(results),
            "overview": card.description or f"Image model audited by model-audit; verdict {results.get('verdict')}.",
            "documentation": documentation(results, results_sha256),
            "owners": [{"name": card.owner, "contact": card.contact}] if card.owner or card.contact else [],
            "version": version,
            "licenses": [{"identifier": lic} if is_spdx(lic) else {"custom_text": lic}] if lic else [],
            "references": [{"reference": ref} for ref in card.references if is_uri(ref)],
            "citations": ([{"citation": card.citation}] if card.citation else [])
            + [{"style": "reference", "citation": ref} for ref in card.references if not is_uri(ref)],
        },
        "model_parameters": {
            "model_architecture": str((prov.get("model") or {}).get("source") or ""),
            "data": [
                {"name": "held-out evaluation set",
                 "sensitive": {"sensitive_data": [str(s) for s in dcfg.get("subgroups") or []]},
                 "graphics": {"description": f"{data.get('n_scored')} images scored of {data.get('n_listed')} "
                              f"listed; manifest SHA-256 {data.get('manifest_sha256')}; images SHA-256 "
                              f"{data.get('images_sha256')}"}},
                *([{"name": "training data (as stated by the provider, not seen by the audit)",
                    "graphics": {"description": card.training_data}}] if card.training_data else []),
            ],
            "input_format": (f"images {dcfg.get('image_size')} (height, width), {dcfg.get('channels')} channel(s), "
                             f"normalised with mean {dcfg.get('mean')} and std {dcfg.get('std')}, resize "
                             f"{dcfg.get('resize')}"),
            "output_format": f"scores over the classes {list(results.get('classes') or [])} "
                             f"(task {(prov.get('model') or {}).get('task') or (cfg.get('model') or {}).get('task', '')})",
        },
        "quantitative_analysis": {
            "performance_metrics": perf + _slices(results) + robustness_metrics(results),
            "graphics": {"description": "Figures are in report.pdf / report.html beside this file."},
        },
        "considerations": {
            "users": [{"description": card.intended_users}] if card.intended_users else [],
            "use_cases": [{"description": card.intended_use}] if card.intended_use else [],
            "limitations": [{"description": x} for x in (card.limitations, card.out_of_scope_uses and
                            f"Out of scope: {card.out_of_scope_uses}") if x]
            + [{"description": f"Audit finding {r['id']} ({r['status']}): {headline_of(r)}"}
               for r in rules if r.get("status") in ("fail", "warn", "error")],
            "tradeoffs": [{"description": card.tradeoffs}] if card.tradeoffs else [],
            "ethical_considerations": [{"name": card.ethical_considerations,
                                        "mitigation_strategy": card.human_oversight}]
            if card.ethical_considerations else [],
        },
    }


def build_model_card(results: Mapping[str, Any], card: ModelCardConfig, results_sha256: str) -> tuple[str, str]:
    """(model_card.md, model_card.json) texts."""
    doc = build_model_card_json(results, card, results_sha256)
    md = build_model_card_md(doc, results, card, results_sha256)
    return md, json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def check_front_matter_md(p: Path) -> None:
    text = utf8_text(p)
    if not text.startswith("---\n") or "\n---\n" not in text[4:] or "\n# " not in text:
        raise ValueError("no YAML front matter or no title")


class ModelCardOutput(ProviderDocument):
    name = "model_card"
    title = "model card (Hugging Face template .md, Model Card Toolkit 0.0.2 .json)"
    files: ClassVar = {"model_card": "model_card.md", "model_card_json": "model_card.json"}
    parsers: ClassVar = {"model_card.md": check_front_matter_md, "model_card.json": json_document}

    build = staticmethod(build_model_card)


__all__ = ["FILES", "MCT_SCHEMA_VERSION", "ModelCardOutput", "build_model_card"]
