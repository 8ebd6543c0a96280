"""What a reader must know beside the verdict, in words, once: the flags results.json states as ``summary.flags`` and
every document shows as it is (the cover of the HTML and PDF, summary.md, the JUnit properties).

Each flag is ``{"kind": …, "text": …}``; kinds, in the order they are listed:

- ``incomplete_evidence``: the pack lets an audit on missing evidence pass (``evidence_complete`` at severity
  warning), and what is missing (explainers the config listed that produced no maps are named by that rule and
  listed with the explainers);
- ``model``: what loading changed, a model loaded from a pickle, listed images skipped as unreadable;
- ``data``: an image property or metadata column that alone predicts a class (the data-level checks), images that
  are the same picture under two labels, held-out images that are also in the training listing;
- ``unchecked_shortcuts``: the kinds of shortcut no rule of the pack tested on this audit;
- ``baseline``: the comparison with a baseline audit in one sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..result import AuditResult
from ..rules import registry as rule_registry
from ..rules.coverage import coverage

MAX_LISTED = 5  # items named in one flag; the rest are counted
DEFAULT_AUC_LIMIT = 0.7  # the data_confounder rule's default, when the pack has no such rule


def evidence_note(r: AuditResult) -> str:
    """The sentence when the pack lets an audit on incomplete evidence pass (its ``evidence_complete`` rule at
    severity warning), with what is missing; empty otherwise (missing evidence then blocks the verdict)."""
    rule = r.pack.evidence_rule()
    if rule is None or rule.params.severity != "warning":
        return ""
    text = (f"Missing evidence does not block this verdict: rule pack “{r.pack.name}” lists {rule.params.id} with "
            "severity warning.")
    found = next((f for f in r.findings if f.rule == rule.params.id), None)
    if found is not None and found.status != "pass":
        text += f" Evidence is missing — {found.message}"
    return text


def _listed(items: list[str]) -> str:
    more = f"; and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return "; ".join(items[:MAX_LISTED]) + more


def _data_flags(r: AuditResult) -> list[str]:
    dc = r.datachecks
    if dc is None:
        return []
    limit = next((float(f.threshold) for f in r.findings if f.kind == "data_confounder" and f.threshold is not None),
                 DEFAULT_AUC_LIMIT)
    rows = sorted(((g["ci95"][0], g["auc"], g["ci95"][1], p.name, str(g["group"])) for p in dc.properties
                   for g in p.per_group if g.get("auc") is not None and g["ci95"][0] > limit), reverse=True)
    out = []
    if rows:
        out.append("Data: " + _listed([f"{name} alone predicts '{group}' at AUC {auc:.2f} (95 % interval "
                                       f"{lo:.2f}–{hi:.2f})" for lo, auc, hi, name, group in rows])
                   + f" — over the limit {limit:.2f}: a model can learn these from the data alone.")
    if dc.n_cross_class_duplicates:
        out.append(f"Data: {dc.n_cross_class_duplicates} pair(s) of held-out images are the same picture under "
                   "different labels.")
    overlap = (dc.train or {}).get("n_heldout_overlapping")
    if overlap:
        out.append(f"Data: {overlap} held-out image(s) also appear in the training listing.")
    return out


def _unchecked(r: AuditResult) -> str:
    kinds = list(rule_registry().values())
    cover = coverage([x for x in r.pack.rules if x.phase == "main"], r.findings, kinds)
    gone = [c for c in cover if not c["checked"]]
    if not gone:
        return ""
    return ("Shortcut kinds not checked by this audit (a pass says nothing about them): "
            + _listed([f"{c['description']} ({c['why_unchecked']})" for c in gone]) + ".")


def baseline_sentence(comp: Mapping[str, Any]) -> str:
    """The comparison's headline: the baseline, rules newly failing, headline metric changes, flips."""
    base = comp.get("baseline") or {}
    failing = (comp.get("rules") or {}).get("newly_failing") or []
    parts = [f"rules newly failing: {', '.join(failing) if failing else 'none'}"]
    for name, d in list((comp.get("metrics") or {}).items())[:3]:
        if isinstance(d.get("baseline"), (int, float)) and isinstance(d.get("candidate"), (int, float)):
            parts.append(f"{name} {d['baseline']:.4f} → {d['candidate']:.4f}")
    flips = comp.get("flips")
    if flips:
        parts.append(f"{flips.get('to_wrong', 0)} prediction(s) right → wrong, {flips.get('to_right', 0)} wrong → right")
    return f"Compared with baseline “{base.get('name', '?')}” (verdict {base.get('verdict', '?')}): " \
           + "; ".join(parts) + "."


def flags(r: AuditResult) -> list[dict[str, str]]:
    """Every flag of the audit ``r``, in the order of the module docstring."""
    out: list[dict[str, str]] = []

    def add(kind: str, text: str) -> None:
        if text:
            out.append({"kind": kind, "text": text})

    add("incomplete_evidence", evidence_note(r))
    for note in (*r.model.notes, *(r.provenance.as_dict().get("data") or {}).get("notes", ())):
        add("model", str(note).rstrip(".") + ".")
    if r.model.pickled:
        add("model", "The model was loaded from a pickle with allow_pickle = true: loading it could run arbitrary "
            "code. Only audit models whose origin you trust this way.")
    if r.skipped:
        add("model", f"{len(r.skipped)} listed image(s) were skipped as unreadable (listed in results.json and the "
            "report).")
    for text in _data_flags(r):
        add("data", text)
    add("unchecked_shortcuts", _unchecked(r))
    if r.comparison is not None:
        add("baseline", baseline_sentence(r.comparison.data))
    return out
