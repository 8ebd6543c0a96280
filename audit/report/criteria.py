"""What each rule result's number is: the criterion (name, unit, direction) of its value and threshold, the
one-line comparison a reader checks ("probability drop 0.276 > 0.200"), and the sentence that says why the
verdict is what it is.

Every rule result that measured a value states its criterion as ``details.criterion = {"name", "unit",
"direction"[, "condition"]}`` (``audit.rules.base.Criterion``, declared on every rule kind: direction "above" fails
above the threshold, "below" below it; read here as "max" — the threshold is a ceiling: the value must stay at or
below it — and "min", a floor). A result that measured nothing reads "measured value" with no direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

PROPORTION = "proportion, 0–1"
METRICS: dict[str, tuple[str, str]] = {
    "accuracy": ("accuracy", PROPORTION),
    "balanced_accuracy": ("balanced accuracy", PROPORTION),
    "macro_f1": ("macro F1", "score, 0–1"),
    "weighted_f1": ("weighted F1", "score, 0–1"),
    "ece": ("expected calibration error", "probability, 0–1"),
    "mce": ("maximum calibration error", "probability, 0–1"),
    "nll": ("log loss", "nats per sample"),
    "brier": ("Brier score", "squared error, 0–2"),
    "auroc": ("AUROC", "area, 0–1"),
    "auprc": ("average precision", "area, 0–1"),
    "sensitivity": ("sensitivity", PROPORTION),
    "specificity": ("specificity", PROPORTION),
}
#: a rule's stated direction (audit.rules.base.Criterion: "above" fails above the threshold, "below" below it)
#: -> the report's: "max" (the threshold is a ceiling), "min" (a floor)
DIRECTIONS = {"above": "max", "below": "min", "max": "max", "min": "min"}


def metric_label(name: str) -> tuple[str, str]:
    if name in METRICS:
        return METRICS[name]
    if name.startswith("top_") and name.endswith("_accuracy"):
        return (f"top-{name[4:-9]} accuracy", PROPORTION)
    return (name.replace("_", " "), "")


def criterion_of(details: Mapping[str, Any] | None) -> dict[str, str]:
    """``{"name", "unit", "direction", "source"}`` of a rule result: the criterion the rule stated
    (``details.criterion``; every result that measured a value states one, ``Rule.criterion``) with ``source``
    "rule"; a result that measured nothing (it could not be evaluated, or does not apply) gets "measured value" with
    no direction and ``source`` "inferred"."""
    stated = (details or {}).get("criterion")
    if isinstance(stated, Mapping) and stated.get("name"):
        direction = DIRECTIONS.get(str(stated.get("direction") or ""), "")
        out = {"name": str(stated["name"]), "unit": str(stated.get("unit") or ""), "direction": direction,
               "source": "rule"}
        if stated.get("condition"):
            out["condition"] = str(stated["condition"])
        return out
    return {"name": "measured value", "unit": "", "direction": "", "source": "inferred"}


def _real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def number(v: Any, unit: str = "") -> str:
    """A value as the comparison prints it: counts as integers, else three decimals; "—" when missing or not a
    number."""
    if not _real(v):
        return "—"
    if unit == "count" and float(v).is_integer():
        return str(int(v))
    return f"{float(v):.3f}"


def comparison(criterion: Mapping[str, str], value: float | None, threshold: float | None) -> str:
    """"probability drop 0.276 > 0.200": the value against the threshold with the relation that holds, in the
    criterion's direction ("≤"/">" for a ceiling, "≥"/"<" for a floor)."""
    name, unit, direction = criterion.get("name", ""), criterion.get("unit", ""), criterion.get("direction", "")
    v, t = number(value, unit), number(threshold, unit)
    if not _real(value) or not _real(threshold):
        return f"{name} {v}" + ("" if threshold is None else f" (limit {t})")
    if direction == "max":
        op = ">" if value > threshold else "≤"
    elif direction == "min":
        op = "<" if value < threshold else "≥"
    else:
        op = "vs"
    return f"{name} {v} {op} {t}"


def limit_words(criterion: Mapping[str, str]) -> str:
    """"at most" / "at least": how the threshold bounds the value."""
    return {"max": "at most", "min": "at least"}.get(criterion.get("direction", ""), "compared with")


def region_words(label: Any) -> str:
    """A region's label without the overlaps it was cut from ("box x 0–12, y 0–12 px, where the … overlap" → the
    box): what a subject line or a figure legend names."""
    return str(label).split(", where the ", 1)[0]


def subject(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a rule result judged, from its details: ``{"text": "label 'nodule' (tp 0, fn 137)", "names": [...]}``
    (``names``: the class or label, region and metadata column a reader must see wherever the result is shown);
    ``{}`` for a result about the held-out set as a whole. Read from what the rules state: ``subject`` (a metric of
    one class or label, with its counts), ``worst_class``, ``worst_region`` (with its label, and ``named_region`` when a smaller region carries the effect), ``worst_column``, and
    the explainer whose maps were judged."""
    details = details or {}
    parts: list[str] = []
    names: list[str] = []
    stated = details.get("subject")
    if isinstance(stated, Mapping) and stated.get("name"):
        counts = ", ".join(f"{k} {v}" for k, v in (stated.get("counts") or {}).items())
        parts.append(f"{stated.get('kind') or 'class'} '{stated['name']}'" + (f" ({counts})" if counts else ""))
        names.append(str(stated["name"]))
    if details.get("worst_class") and str(details["worst_class"]) not in names:
        parts.append(f"for '{details['worst_class']}'")
        names.append(str(details["worst_class"]))
    if details.get("worst_region"):
        key = str(details["worst_region"])
        region = (details.get("regions") or {}).get(key)
        label = str(region["label"]) if isinstance(region, Mapping) and region.get("label") else key.replace("_", " ")
        parts.append(label)
        names.append(label)
        named = details.get("named_region")  # the smallest overlapping region that still carries the effect
        if isinstance(named, Mapping) and named.get("label") and named.get("key") != key:
            parts.append(f"carried by {region_words(named['label'])}")
            names.append(region_words(named["label"]))
    if details.get("worst_column"):
        parts.append(f"metadata column '{details['worst_column']}'")
        names.append(str(details["worst_column"]))
    if details.get("explainer") and details.get("explainer_judged", True):  # maps shown as information only: not named
        parts.append(f"{details['explainer']} maps")
    for concept, groups in _concepts_at_fault(details.get("concepts")):
        parts.append(f"concept '{concept}' for " + ", ".join(f"'{g}'" for g in groups))
        names += [concept, *groups]
    failing = details.get("newly_failing")
    if isinstance(failing, list) and failing:
        parts.append("newly failing: " + ", ".join(str(x) for x in failing))
        names += [str(x) for x in failing]
    return {"text": ", ".join(parts), "names": names} if parts else {}


def _concepts_at_fault(concepts: Any) -> list[tuple[str, list[str]]]:
    """(concept, classes) a concept rule holds against the model (``details.concepts``): a forbidden concept the
    class uses, a required one it does not."""
    out = []
    for name, c in (concepts or {}).items() if isinstance(concepts, Mapping) else ():
        if not isinstance(c, Mapping):
            continue
        bad = "used" if c.get("role") == "forbidden" else "not used"
        groups = [str(g) for g, row in (c.get("classes") or {}).items()
                  if isinstance(row, Mapping) and row.get("status") == bad]
        if groups:
            out.append((str(name), groups))
    return out


def headline(rule: Mapping[str, Any]) -> str:
    """One line a reviewer checks: the comparison and what it judged (class, label, region, column); the rule's
    first sentence for errors. results.json keeps it as ``rules[].headline``, the one every document shows."""
    crit = rule.get("criterion") or {}
    if not isinstance(crit, Mapping) or not crit.get("name"):  # a result that states no criterion: its own words
        return str(rule.get("message") or "")
    if rule.get("status") == "error":
        first = str(rule.get("message") or "").split("\n", 1)[0]
        if (rule.get("details") or {}).get("incomplete") is True:  # evidence_complete: it names what is missing
            return first[:200]
        return f"could not be evaluated: {first[:200]}"
    text = comparison(crit, rule.get("value"), rule.get("threshold"))
    where = subject(rule.get("details") or {}).get("text", "")
    return f"{text} ({where})" if where else text


def headline_of(rule: Mapping[str, Any]) -> str:
    """The headline results.json states for a rule result, or (a results.json written before it did) the one
    :func:`headline` makes of it."""
    stated = rule.get("headline")
    return stated if isinstance(stated, str) and stated else headline(rule)


def verdict_sentence(results: Mapping[str, Any]) -> str:
    """Why the verdict is what it is, in one sentence, from results.json's rules."""
    rules = list(results.get("rules") or ())
    blocking = set((results.get("summary") or {}).get("blocking") or ())
    bad = [r for r in rules if r.get("id") in blocking]
    errors = [r for r in rules if r.get("severity") == "error"]
    warns = [r for r in rules if r.get("status") == "warn"]
    if bad:
        first = bad[0]
        more = f", and {len(bad) - 1} more blocking rule(s)" if len(bad) > 1 else ""
        what = "failed:" if first.get("status") == "fail" else \
            "found" if (first.get("details") or {}).get("incomplete") is True else "could not be evaluated:"
        return f"FAIL because {first.get('id')} {what} {headline_of(first)}{more}."
    tail = ""
    if warns:
        w = warns[0]
        tail = f"; {len(warns)} warning(s) do not block the release, first {w.get('id')}: {headline_of(w)}"
    return f"PASS: all {len(errors)} error-severity rule(s) passed{tail}."
