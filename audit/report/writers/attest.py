"""What the documentation exports (model card, Annex IV) share: the evidence hashes from provenance, the metrics as
(name, value, interval) rows, and the plain list of what an audit cannot attest."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

from ...config import ModelCardConfig
from .base import OutputFormat, Report
from .robustness_text import DEFAULT_CLAUSE, robustness_clause
from .text import md_literal, md_text

#: an SPDX license expression of simple ids (``Apache-2.0``, ``MIT OR CC-BY-4.0``, ``LicenseRef-x``)
SPDX = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*(?: (?:AND|OR|WITH) [A-Za-z0-9][A-Za-z0-9.+-]*)*")

#: said in every exported document, in these words
CANNOT_ATTEST = (
    ("that the held-out data represent the population, sites, devices and conditions of the intended use: the "
    "metrics hold for this data set only;"),
    ("anything about the training data (provenance, lawfulness, labelling quality, overlap with the held-out set): the "
    "audit sees the held-out set only;"),
    "that the model file audited (identified by its SHA-256) is the one deployed;",
    ("performance in real use, including clinical or operational benefit, and behaviour on inputs unlike the held-out "
    "images;"),
    ("that explanation maps show the model's reasoning: they show which pixels a method attributes a score to, and "
    "methods can disagree;"),
    ("fairness beyond the subgroup columns the config listed, robustness beyond the perturbations the rules applied, "
    "cybersecurity, and the effectiveness of human oversight;"),
    ("the statements the provider wrote into [model_card] (intended use, limitations, oversight, standards): they are "
    "reproduced, not verified;"),
    ("conformity with any regulation or standard: this document is input to the provider's technical documentation "
    "and conformity assessment, not a substitute for them, and not legal advice."),
)


def is_uri(s: str) -> bool:
    """An absolute URI (a scheme and an authority or path, no space), as a schema's ``format: uri`` asks."""
    p = urlparse(s)
    return bool(p.scheme) and bool(p.netloc or p.path) and " " not in s


def is_spdx(s: str) -> bool:
    """An SPDX license id or expression (``Apache-2.0``), not prose."""
    return bool(SPDX.fullmatch(s.strip())) and any(c.isdigit() or c.isupper() for c in s)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def evidence(results: Mapping[str, Any], results_sha256: str) -> list[dict[str, str]]:
    """(item, sha256 or value, what it identifies) rows from provenance, plus results.json itself."""
    prov = results.get("provenance") or {}
    model, data, pack = prov.get("model") or {}, prov.get("data") or {}, prov.get("rule_pack") or {}
    rows = [{"item": "model weights", "sha256": str(model.get("sha256") or "none (in-memory model)"),
             "what": str(model.get("source") or "")}]
    for f in model.get("files") or ():
        if f.get("sha256") and f.get("sha256") != model.get("sha256"):
            rows.append({"item": "model file", "sha256": str(f["sha256"]), "what": str(f.get("path", "")).rsplit("/", 1)[-1]})
    rows += [
        {"item": "held-out manifest", "sha256": str(data.get("manifest_sha256") or "none (image folder)"),
         "what": f"{data.get('n_listed', '?')} images listed, {data.get('n_scored', '?')} scored"},
        {"item": "held-out images", "sha256": str(data.get("images_sha256") or ""),
         "what": "over the sorted (path, image SHA-256, label) of every listed image"},
        {"item": "rule pack", "sha256": str(pack.get("sha256") or ""), "what": str(pack.get("name") or "")},
    ]
    for e in pack.get("extends") or ():
        rows.append({"item": "rule pack (extended)", "sha256": str(e.get("sha256", "")),
                     "what": str(e.get("path", "")).rsplit("/", 1)[-1]})
    config = json.dumps(prov.get("config") or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    rows.append({"item": "resolved configuration", "sha256": sha256_text(config),
                 "what": "SHA-256 of provenance.config as canonical JSON (sorted keys, no spaces)"})
    rows.append({"item": "results.json", "sha256": results_sha256,
                 "what": f"the audit's record; document id {results_sha256[:12]} (manifest.json lists every report file)"})
    git = prov.get("git") or {}
    if git.get("commit"):
        rows.append({"item": "code (git)", "sha256": str(git["commit"]),
                     "what": "commit of the working directory" + (" with uncommitted changes" if git.get("dirty") else "")})
    tool = prov.get("tool") or {}
    rows.append({"item": "audit tool", "sha256": "", "what": f"{tool.get('name', 'model-audit')} {tool.get('version', '')}; "
                 f"run {prov.get('started', '?')} to {prov.get('finished', '?')}, seed {prov.get('seed', '?')}, "
                 f"device {prov.get('device', '?')}"})
    return rows


def metric_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Headline metrics of any task: every number at the top of ``metrics`` (with ``<name>_ci95`` when present)."""
    m = results.get("metrics") or {}
    rows = []
    for key, v in m.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or key.endswith("_ci95"):
            continue
        ci = m.get(f"{key}_ci95")
        rows.append({"name": key, "value": float(v),
                     "ci95": [float(x) for x in ci] if isinstance(ci, list) and None not in ci and len(ci) == 2
                     else None})
    for k, v in (m.get("top_k_accuracy") or {}).items():
        if isinstance(v, (int, float)):
            rows.append({"name": f"top_{k}_accuracy", "value": float(v), "ci95": None})
    return rows


def md_paragraphs(value: Any) -> str:
    """User prose as inert Markdown (no word joiners: a document a person copies from), paragraphs (blank-line
    separated) kept."""
    text = "" if value is None else str(value)
    return "\n\n".join(md_text(p, defuse=False) for p in text.split("\n\n") if p.strip())


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def evidence_md(rows: list[dict[str, str]]) -> list[str]:
    return md_table(["evidence", "SHA-256", "identifies"],
                    [[md_text(r["item"], defuse=False), md_literal(r["sha256"]), md_text(r["what"], defuse=False)]
                     for r in rows])


def cannot_attest(results: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """CANNOT_ATTEST, its robustness clause naming what the robustness stage measured (``results``: results.json)."""
    clause = robustness_clause(results)
    return tuple(line.replace(DEFAULT_CLAUSE, clause) for line in CANNOT_ATTEST)


def cannot_attest_md(results: Mapping[str, Any] | None = None) -> list[str]:
    return [f"- The audit cannot attest {line}" for line in cannot_attest(results)]


class ProviderDocument(OutputFormat):
    """A documentation export filled from results.json and the provider's [model_card]: ``<name>.md`` and
    ``<name>.json``, built by ``build(results, card, results_sha256)``."""

    build: ClassVar[Callable[[Mapping[str, Any], ModelCardConfig, str], tuple[str, str]]]

    def write(self, report: Report, folder: Path) -> None:
        md, js = self.build(report.results, report.result.config.model_card, report.results_sha256)
        (folder / f"{self.name}.md").write_text(md, encoding="utf-8")
        (folder / f"{self.name}.json").write_text(js, encoding="utf-8")
