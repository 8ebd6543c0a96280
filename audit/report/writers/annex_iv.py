"""report.formats "annex_iv": annex_iv.md and annex_iv.json, technical-documentation sections under the nine
headings of Annex IV of the EU AI Act (Regulation (EU) 2024/1689; headings paraphrased), each split into

- ``evidenced``: what this audit measured, with the hashes that identify model, data, rule pack and results;
- ``provider_statements``: what the provider wrote into ``[model_card]`` (reproduced, not verified);
- ``provider_must_supply``: what the point asks for that an audit cannot evidence.

It is input to the provider's technical documentation, never a conformity assessment; the document says so and
lists what the tool cannot attest."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ...config import ModelCardConfig
from ..context.document import params_text
from ..criteria import headline_of, metric_label
from .attest import ProviderDocument, cannot_attest, cannot_attest_md, evidence, evidence_md, md_table, metric_rows
from .base import json_document, utf8_text
from .robustness_text import robustness_lines
from .text import md_text

FILES = ("annex_iv.md", "annex_iv.json")
REGULATION = "Regulation (EU) 2024/1689 (Artificial Intelligence Act), Annex IV"


def _words(v: Any) -> str:
    """A setting as words: on/off for a flag, "none" for nothing, lists comma-separated (never JSON)."""
    if isinstance(v, bool):
        return "on" if v else "off"
    if v is None or v == "":
        return "none"
    if isinstance(v, (list, tuple)):
        return ", ".join(_words(x) for x in v) or "none"
    if isinstance(v, Mapping):
        return ", ".join(f"{k} {_words(x)}" for k, x in v.items()) or "none"
    return str(v)


def _f(v: Any) -> str:
    return "—" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def _sections(results: Mapping[str, Any], card: ModelCardConfig) -> list[dict[str, Any]]:
    prov = results.get("provenance") or {}
    model, data, cfg = prov.get("model") or {}, prov.get("data") or {}, prov.get("config") or {}
    dcfg = cfg.get("data") or {}
    m = results.get("metrics") or {}
    rules = list(results.get("rules") or ())
    versions = ", ".join(f"{k} {v}" for k, v in (prov.get("versions") or {}).items())
    metrics = [f"{metric_label(r['name'])[0]} {r['value']:.4f}"
               + (f" (95 % CI {r['ci95'][0]:.4f}–{r['ci95'][1]:.4f})" if r["ci95"] else "")
               for r in metric_rows(results)]
    per_class = "; ".join(f"{c.get('class')}: recall {_f(c.get('recall'))}, precision {_f(c.get('precision'))}"
                          for c in m.get("per_class") or ())
    subgroups = "; ".join(f"{g.get('column')}={g.get('value')} (n={g.get('n')}): accuracy {_f(g.get('accuracy'))}"
                          for g in m.get("subgroups") or ())
    tests = [f"{r.get('id')} ({r.get('kind')}, severity {r.get('severity')}): {r.get('status')} — {headline_of(r)}"
             for r in rules]
    explainers = [f"{e.get('title') or e.get('name')}: {e.get('status')}; parameters as run: "
                  f"{params_text(str(e.get('name')), e.get('parameters') or {})}" for e in results.get("explainers") or ()]
    compute = ", ".join(f"{k.replace('_', ' ')} {_words(v)}" for k, v in (prov.get("compute") or {}).items())
    comp = results.get("comparison")

    def stated(*pairs: tuple[str, str]) -> list[str]:
        return [f"{label}: {text}" for label, text in pairs if text]

    return [
        {"number": "1", "heading": "General description of the AI system",
         "evidenced": [
             (f"Model audited: {model.get('name') or results.get('name')} version {model.get('version') or '—'}, "
             f"source {model.get('source')}, weights SHA-256 {model.get('sha256')}."),
             f"Software the audit ran with (versions that shaped the results): {versions}.",
             f"Inference as audited: device {prov.get('device')}" + (f"; {compute}" if compute else "") + ".",
             (f"Input specification: images {_words(dcfg.get('image_size'))} (height, width), {dcfg.get('channels')} "
             f"channel(s), mean {_words(dcfg.get('mean'))}, std {_words(dcfg.get('std'))}, resize "
             f"{_words(dcfg.get('resize'))}; outputs: "
             f"scores over the classes {', '.join(str(c) for c in results.get('classes') or [])}.")],
         "provider_statements": stated(("Intended purpose", card.intended_use), ("Provider / owner", card.owner),
                                       ("Description", card.description), ("Intended users", card.intended_users)),
         "provider_must_supply": [
             "provider identity; the forms in which the system is placed on the market or put into service;",
             ("hardware it is intended to run on; how it interacts with other hardware or software; its user "
             "interface and the instructions for use (Article 13).")]},
        {"number": "2", "heading": "Elements of the AI system and the process of its development",
         "evidenced": [
             (f"Validation and testing procedure (point 2(g)): rule pack {(prov.get('rule_pack') or {}).get('name')} "
             f"(SHA-256 {(prov.get('rule_pack') or {}).get('sha256')}) applied to a held-out set of "
             f"{data.get('n_scored')} images (manifest SHA-256 {data.get('manifest_sha256')}, images SHA-256 "
             f"{data.get('images_sha256')}); run from {prov.get('started')} to {prov.get('finished')}, seed "
             f"{prov.get('seed')}."),
             "Test log: each rule with its status, measured value, limit and what it judged (table below).",
             "Metrics used to measure accuracy: " + "; ".join(metrics) + ".",
             *([f"Metrics used to measure robustness (point 2(g)): {' '.join(robustness_lines(results))}"]
               if robustness_lines(results) else []),
             *(["Potentially discriminatory impacts, per configured subgroup: " + subgroups + "."] if subgroups else
               [("No subgroup (metadata) columns were configured: potentially discriminatory impacts were not "
                "measured.")]),
             "Explanation methods and their parameters as run: " + "; ".join(explainers) + ".",
             ("The test report is report.pdf (dated; sign-off table on its first page) with results.json and "
             "report.junit.xml; manifest.json holds the SHA-256 of every report file.")],
         "table": {"header": ["rule", "kind", "severity", "status", "measured against the limit"],
                   "rows": [[str(r.get("id")), str(r.get("kind")), str(r.get("severity")), str(r.get("status")),
                             headline_of(r)] for r in rules]},
         "provider_statements": stated(("Training data", card.training_data), ("Human oversight", card.human_oversight)),
         "provider_must_supply": [
             ("development methods and steps, use of pre-trained systems or third-party tools; design specifications, "
             "key design choices and assumptions; system architecture and computational resources;"),
             ("datasheets of the training, validation and testing data (provenance, scope, collection, labelling, "
             "cleaning); the audit saw the held-out set only;"),
             ("assessment of the human oversight measures (Article 14); pre-determined changes; cybersecurity "
             "measures;"),
             "signatures of the responsible persons on the test report (the sign-off table is blank until signed)."]},
        {"number": "3", "heading": "Monitoring, functioning and control of the AI system",
         "evidenced": [
             "Capabilities and limitations in performance, overall: " + "; ".join(metrics) + ".",
             *(["Per class: " + per_class + "."] if per_class else []),
             *(["Per subgroup: " + subgroups + "."] if subgroups else []),
             "Foreseeable unintended outcomes found by the audit: " + (
                 "; ".join(t for t, r in zip(tests, rules, strict=True) if r.get("status") in ("fail", "warn", "error"))
                 or "none of the rules failed or warned") + "."],
         "provider_statements": stated(("Limitations", card.limitations), ("Out-of-scope uses", card.out_of_scope_uses),
                                       ("Human oversight", card.human_oversight)),
         "provider_must_supply": [("human oversight measures and the technical measures that let deployers interpret "
                                  "outputs; sources of risk to health, safety and fundamental rights in the intended "
                                  "use.")]},
        {"number": "4", "heading": "Appropriateness of the performance metrics",
         "evidenced": ["Metrics and limits the rule pack applied, each with what it measures, its unit and whether "
                       "the limit is a floor or a ceiling: " + "; ".join(
                           f"{r.get('id')}: {(r.get('criterion') or {}).get('name')} "
                           f"({(r.get('criterion') or {}).get('unit') or 'no unit'}), "
                           f"{'at most' if (r.get('criterion') or {}).get('direction') == 'max' else 'at least'} "
                           f"{_f(r.get('threshold'))}" for r in rules) + "."],
         "provider_statements": [],
         "provider_must_supply": ["why these metrics and limits are appropriate for the intended purpose."]},
        {"number": "5", "heading": "Risk management system (Article 9)",
         "evidenced": [("The audit's findings (points 2 and 3) are inputs to risk identification and to testing; "
                       "re-running the audit (audit run, exit code = verdict) can gate every release.")],
         "provider_statements": stated(("Risk management", card.risk_management)),
         "provider_must_supply": ["the risk management system itself."]},
        {"number": "6", "heading": "Relevant changes through the lifecycle",
         "evidenced": ([f"Compared with baseline {(comp.get('baseline') or {}).get('name')} (model SHA-256 "
                        f"{(comp.get('baseline') or {}).get('model_sha256')}): rules newly failing "
                        f"{', '.join((comp.get('rules') or {}).get('newly_failing') or []) or 'none'}; metric changes "
                        + "; ".join(f"{k} {_f(v.get('delta'))}" for k, v in (comp.get("metrics") or {}).items())
                        + "."] if comp else
                       ["No baseline was given (audit run --baseline): this audit documents no change."]),
         "provider_statements": [],
         "provider_must_supply": ["the list of changes made to the system through its lifecycle."]},
        {"number": "7", "heading": "Harmonised standards and other specifications applied",
         "evidenced": [],
         "provider_statements": [f"Standard or specification: {s}" for s in card.standards],
         "provider_must_supply": [("the standards applied or, where none, the solutions adopted to meet the "
                                  "requirements of Chapter III, Section 2.")]},
        {"number": "8", "heading": "EU declaration of conformity (Article 47)",
         "evidenced": [], "provider_statements": [],
         "provider_must_supply": [("a copy of the EU declaration of conformity; the audit does not assess "
                                  "conformity.")]},
        {"number": "9", "heading": "Evaluation of performance in the post-market phase (Article 72)",
         "evidenced": [("The same audit can be re-run on post-market data with the same rule pack; results.json "
                       "(schema-versioned) and the MLflow logging ([report] mlflow) make runs comparable.")],
         "provider_statements": stated(("Post-market monitoring", card.post_market_monitoring)),
         "provider_must_supply": ["the post-market monitoring plan."]},
    ]


def build_annex_iv(results: Mapping[str, Any], card: ModelCardConfig, results_sha256: str) -> tuple[str, str]:
    """(annex_iv.md, annex_iv.json) texts."""
    doc = {
        "document": f"Technical documentation input following the headings of {REGULATION}",
        "generated_by": ((results.get("provenance") or {}).get("tool") or {}),
        "audit": results.get("name"),
        "verdict": results.get("verdict"),
        "reason": (results.get("summary") or {}).get("reason", ""),
        "sections": _sections(results, card),
        "evidence": evidence(results, results_sha256),
        "cannot_attest": list(cannot_attest(results)),
        "note": "Headings are paraphrased; this is not legal advice and not a conformity assessment.",
    }
    out = [f"# Technical documentation (EU AI Act, Annex IV): {md_text(results.get('name'), defuse=False)}", "",
           (f"Input for the technical documentation of {REGULATION}, generated by model-audit from the audit "
           f"document `{results_sha256[:12]}`. Headings are paraphrased. Under each: what this audit evidences (with "
           "the hashes below), what the provider stated in `[model_card]` (reproduced, not verified), and what the "
           "provider must supply. This is not legal advice and not a conformity assessment."), "",
           f"**Audit verdict:** {md_text(str(results.get('verdict')).upper())}. {md_text(doc['reason'], defuse=False)}",
           ""]
    for s in doc["sections"]:
        out += [f"## {s['number']}. {md_text(s['heading'], defuse=False)}", ""]
        out += ["**Evidenced by this audit**", ""] + ([f"- {md_text(x, defuse=False)}" for x in s["evidenced"]]
                                                       or ["- nothing"])
        if s.get("table"):
            out += [""] + md_table(s["table"]["header"], [[md_text(c, defuse=False) for c in row]
                                                          for row in s["table"]["rows"]])
        if s["provider_statements"]:
            out += ["", "**Stated by the provider (not verified)**", ""]
            out += [f"- {md_text(x, defuse=False)}" for x in s["provider_statements"]]
        out += ["", "**To be supplied by the provider**", ""]
        out += [f"- {md_text(x, defuse=False)}" for x in s["provider_must_supply"]]
        out.append("")
    out += ["## Evidence", ""] + evidence_md(doc["evidence"])
    out += ["", "## What the tool cannot attest", ""] + cannot_attest_md(results)
    return "\n".join(out) + "\n", json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def check_heading_md(p: Path) -> None:
    if not utf8_text(p).startswith("# "):
        raise ValueError("does not start with a '# ' title")


class AnnexIvOutput(ProviderDocument):
    name = "annex_iv"
    title = "EU AI Act Annex IV headings the audit can evidence (.md, .json)"
    files: ClassVar = {"annex_iv": "annex_iv.md", "annex_iv_json": "annex_iv.json"}
    parsers: ClassVar = {"annex_iv.md": check_heading_md, "annex_iv.json": json_document}

    build = staticmethod(build_annex_iv)
