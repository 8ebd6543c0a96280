"""report.formats "model_card": model_card.md in the Hugging Face model-card layout (YAML front matter with a
model-index of the audited metrics, then Model Details, Uses, Bias/Risks/Limitations, Evaluation, Model Examination)
and model_card.json in the Model Card Toolkit layout (schema 0.0.2: model_details, model_parameters,
quantitative_analysis, considerations) plus one ``model_audit`` key with the evidence hashes, the verdict and what
the audit cannot attest. Filled from results.json and the config's ``[model_card]``; every string from a user or
the data is escaped (inert Markdown; JSON strings in the YAML front matter)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ...config import ModelCardConfig
from ..criteria import comparison, metric_label
from .attest import (
    CANNOT_ATTEST,
    ProviderDocument,
    cannot_attest_md,
    evidence,
    evidence_md,
    md_paragraphs,
    md_table,
    metric_rows,
)
from .base import json_document, utf8_text
from .robustness_text import robustness_metrics
from .text import md_code, md_text

MCT_SCHEMA_VERSION = "0.0.2"
FILES = ("model_card.md", "model_card.json")


def _name(results: Mapping[str, Any]) -> str:
    model = (results.get("provenance") or {}).get("model") or {}
    return str(model.get("name") or results.get("name") or "model")


def _version(results: Mapping[str, Any], card: ModelCardConfig) -> str:
    model = (results.get("provenance") or {}).get("model") or {}
    return str(model.get("version") or card.version or "")


def _metric_title(name: str) -> str:
    return metric_label(name)[0]


def _slices(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per-class and per-subgroup metrics as Model Card Toolkit performance metrics with a slice."""
    m = results.get("metrics") or {}
    out = []
    for c in m.get("per_class") or ():
        for key in ("precision", "recall", "f1"):
            if c.get(key) is not None:
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
    return {
        "schema_version": MCT_SCHEMA_VERSION,
        "model_details": {
            "name": _name(results),
            "overview": card.description or f"Image model audited by model-audit; verdict {results.get('verdict')}.",
            "owners": [{"name": card.owner, "contact": card.contact}] if card.owner or card.contact else [],
            "version": {"name": _version(results, card), "date": str(prov.get("finished", ""))[:10]},
            "licenses": [{"custom_text": card.license}] if card.license else [],
            "references": [{"reference": ref} for ref in card.references],
            "citations": [{"citation": card.citation}] if card.citation else [],
        },
        "model_parameters": {
            "model_architecture": str((prov.get("model") or {}).get("source") or ""),
            "data": [
                {"name": "held-out evaluation set", "link": "",
                 "sensitive": {"sensitive_data": list(dcfg.get("subgroups") or [])},
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
                             f"(task {(cfg.get('model') or {}).get('task', '')})",
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
            + [{"description": "Audit finding: " + comparison(r.get("criterion") or {}, r.get("value"),
                                                               r.get("threshold")) + f" ({r['id']}, {r['status']})"}
               for r in rules if r.get("status") in ("fail", "warn", "error")],
            "tradeoffs": [{"description": card.tradeoffs}] if card.tradeoffs else [],
            "ethical_considerations": [{"name": card.ethical_considerations,
                                        "mitigation_strategy": card.human_oversight}]
            if card.ethical_considerations else [],
        },
        "model_audit": {
            "verdict": results.get("verdict"),
            "reason": (results.get("summary") or {}).get("reason", ""),
            "rules": [{"id": r.get("id"), "status": r.get("status"), "severity": r.get("severity"),
                       "criterion": r.get("criterion"), "value": r.get("value"), "threshold": r.get("threshold")}
                      for r in rules],
            "evidence": evidence(results, results_sha256),
            "cannot_attest": list(CANNOT_ATTEST),
        },
    }


def _front_matter(results: Mapping[str, Any], card: ModelCardConfig) -> list[str]:
    """YAML front matter; every scalar is written as a JSON string or number (valid YAML 1.2)."""
    j = json.dumps
    lines = ["---"]
    if card.license:
        lines.append(f"license: {j(card.license)}")
    lines += ["library_name: pytorch", "tags:", "- image-classification", "- model-audit",
              "model-index:", f"- name: {j(_name(results))}", "  results:",
              "  - task:", "      type: image-classification", "    dataset:",
              f"      name: {j('held-out set ' + str(((results.get('provenance') or {}).get('data') or {}).get('images_sha256', ''))[:12])}",
              "      type: held-out", "      split: test", "    metrics:"]
    for r in metric_rows(results):
        lines += [f"    - type: {j(r['name'])}", f"      value: {round(r['value'], 6)}",
                  f"      name: {j(_metric_title(r['name']))}", "      verified: false"]
    lines.append("---")
    return lines


def build_model_card_md(doc: Mapping[str, Any], results: Mapping[str, Any], card: ModelCardConfig,
                        results_sha256: str) -> str:
    d, p, q, _c, a = (doc["model_details"], doc["model_parameters"], doc["quantitative_analysis"],
                     doc["considerations"], doc["model_audit"])
    name = md_text(d["name"])
    out = _front_matter(results, card)
    out += ["", f"# Model card for {name}", "",
            (f"Generated by model-audit from the audit {md_code(results.get('name'))} "
            f"(verdict **{md_text(str(results.get('verdict')).upper())}**, document "
            f"`{results_sha256[:12]}`). "
            "Sections follow the Hugging Face model-card template; statements from the provider's `[model_card]` "
            "are reproduced, not verified."), "",
            "## Model Details", "", "### Model Description", ""]
    out += [md_paragraphs(d["overview"]), ""]
    facts = [("Version", d["version"]["name"] or "—"), ("Date", d["version"]["date"]),
             ("Developed by", ", ".join(o["name"] for o in d["owners"]) or "—"),
             ("Contact", ", ".join(o["contact"] for o in d["owners"] if o["contact"]) or "—"),
             ("Model type / source", p["model_architecture"]),
             ("License", ", ".join(x["custom_text"] for x in d["licenses"]) or "—"),
             ("Input", p["input_format"]), ("Output", p["output_format"])]
    out += [f"- **{k}:** {md_text(v)}" for k, v in facts]
    if d["references"] or d["citations"]:
        out += ["", "### References", ""] + [f"- {md_text(r['reference'])}" for r in d["references"]]
        out += [f"- {md_text(x['citation'])}" for x in d["citations"]]
    out += ["", "## Uses", "", "### Direct Use", "",
            md_paragraphs(card.intended_use) or "Not stated by the provider ([model_card] intended_use).", ""]
    if card.intended_users:
        out += ["Intended users: " + md_text(card.intended_users), ""]
    out += ["### Out-of-Scope Use", "",
            md_paragraphs(card.out_of_scope_uses) or "Not stated by the provider ([model_card] out_of_scope_uses).", "",
            "## Bias, Risks, and Limitations", ""]
    out += [md_paragraphs(card.limitations) or "Not stated by the provider ([model_card] limitations).", ""]
    if card.ethical_considerations:
        out += ["### Ethical considerations", "", md_paragraphs(card.ethical_considerations), ""]
    if card.tradeoffs:
        out += ["### Trade-offs", "", md_paragraphs(card.tradeoffs), ""]
    findings = [r for r in a["rules"] if r["status"] in ("fail", "warn", "error")]
    out += ["### Recommendations", "",
            "The audit's failing and warning rules, each a limitation to resolve or accept before release:" if findings
            else "Every rule of the audit's pack passed on the held-out set.", ""]
    out += [f"- {md_code(r['id'])} ({md_text(r['status'])}): "
            f"{md_text(comparison(r['criterion'] or {}, r['value'], r['threshold']))}" for r in findings]
    out += ["", "## Evaluation", "", "### Testing Data, Factors & Metrics", "", "#### Testing Data", "",
            md_text(p["data"][0]["graphics"]["description"]), "", "#### Factors", ""]
    sensitive = p["data"][0]["sensitive"]["sensitive_data"]
    out += [("Metrics are reported per class and per value of the metadata columns " +
             ", ".join(f"{md_code(s)}" for s in sensitive) + ".") if sensitive else
            "Metrics are reported per class; no metadata (subgroup) columns were configured.", "",
            "#### Metrics", "", "Headline metrics on the held-out set with 95 % bootstrap intervals where computed.", "",
            "### Results", ""]
    rows = [[md_text(_metric_title(m["type"])), m["value"],
             f"{m['confidence_interval']['lower_bound']}–{m['confidence_interval']['upper_bound']}"
             if m.get("confidence_interval") else "—"]
            for m in q["performance_metrics"] if m["slice"] == "held-out set"]
    out += md_table(["metric", "value", "95 % CI"], rows)
    sliced = [m for m in q["performance_metrics"] if m["slice"] != "held-out set"]
    if sliced:
        out += ["", "Per class and subgroup:", ""]
        out += md_table(["slice", "metric", "value"], [[md_text(m["slice"]), md_text(m["type"]), m["value"]]
                                                       for m in sliced])
    out += ["", "#### Summary", "", md_text(a["reason"]), "", "## Model Examination", "",
            "Every rule of the audit, including its explanation and shortcut rules (maps and evidence images in report.pdf):", ""]
    out += md_table(["rule", "status", "measured against the limit"],
                    [[f"{md_code(r['id'])}", md_text(r["status"]),
                      md_text(comparison(r["criterion"] or {}, r["value"], r["threshold"]))] for r in a["rules"]])
    out += ["", "## Audit evidence", ""] + evidence_md(a["evidence"])
    out += ["", "## What this card does not attest", ""] + cannot_attest_md()
    return "\n".join(out) + "\n"


def build_model_card(results: Mapping[str, Any], card: ModelCardConfig, results_sha256: str) -> tuple[str, str]:
    """(model_card.md, model_card.json) texts."""
    doc = build_model_card_json(results, card, results_sha256)
    return build_model_card_md(doc, results, card, results_sha256), json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def check_front_matter_md(p: Path) -> None:
    text = utf8_text(p)
    if not text.startswith("---\n") or "\n---\n" not in text[4:] or "\n# " not in text:
        raise ValueError("no YAML front matter or no title")


class ModelCardOutput(ProviderDocument):
    name = "model_card"
    title = "model card (Hugging Face layout .md, Model Card Toolkit layout .json)"
    files: ClassVar = {"model_card": "model_card.md", "model_card_json": "model_card.json"}
    parsers: ClassVar = {"model_card.md": check_front_matter_md, "model_card.json": json_document}

    build = staticmethod(build_model_card)
