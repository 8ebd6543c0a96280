"""What each rule result's number is: the criterion (name, unit, direction) of its value and threshold, the
one-line comparison a reader checks ("probability drop 0.276 > 0.200"), and the sentence that says why the
verdict is what it is.

A rule may state its criterion itself as ``details.criterion = {"name", "unit", "direction"[, "condition"]}``
(``audit.rules.base.Criterion``: direction "above" fails above the threshold, "below" below it; read here as "max"
— the threshold is a ceiling: the value must stay at or below it — and "min", a floor). Rules that do not (or that record only a key
such as ``"prob_drop"``) get one from the table below, by rule kind and parameters; an unknown kind falls back to
its ``_min`` / ``_max`` suffix, else to "measured value" with no direction.
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
# keys rules record in details.criterion (a string) -> (name, unit, direction)
CRITERION_KEYS: dict[str, tuple[str, str, str]] = {
    "flip_rate": ("flip rate", "proportion of images, 0–1", "max"),
    "prob_drop": ("probability drop", "probability, 0–1", "max"),
    "share": ("attribution share in the region", "proportion of positive attribution, 0–1", "max"),
    "accuracy_gap": ("accuracy gap between values", PROPORTION, "max"),
    "probe_auc": ("within-class probe AUC", "area, 0–1", "max"),
    "p_value": ("permutation p-value", "probability, 0–1", "min"),
    "deletion_gain": ("deletion AUC gain over random", "AUC difference", "min"),
    "insertion_gain": ("insertion AUC gain over random", "AUC difference", "min"),
    "mean_gain": ("mean deletion/insertion AUC gain over random", "AUC difference", "min"),
}
KINDS: dict[str, tuple[str, str, str]] = {
    "class_recall_min": ("lowest class recall", PROPORTION, "min"),
    "confusion_max": ("confusion rate", "proportion of the true class, 0–1", "max"),
    "skipped_max": ("share of listed images skipped", PROPORTION, "max"),
    "roi_attribution": ("share of images with too little attribution inside the ROI (worst class)", PROPORTION,
                        "max"),
    "shortcut_discovery": ("share of samples in off-object explanation clusters (worst class)", PROPORTION, "max"),
    "explanation_sanity": ("similarity of maps before and after weight randomisation", "Spearman ρ or SSIM, −1–1",
                           "max"),
    "faithfulness": ("AUC gain over random order", "AUC difference", "min"),
    "baseline_metric_drop": ("drop since the baseline", "metric units", "max"),
    "baseline_recall_drop": ("largest recall drop of a class since the baseline", PROPORTION, "max"),
    "baseline_flips": ("samples newly wrong (right → wrong)", "count", "max"),
    "baseline_new_failures": ("rules newly failing", "count", "max"),
    "baseline_explanation_change": ("median Spearman ρ of maps against the baseline's", "correlation, −1–1", "min"),
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


def criterion_of(kind: str, details: Mapping[str, Any] | None, params: Mapping[str, Any] | None = None,
                 threshold: float | None = None) -> dict[str, str]:
    """``{"name", "unit", "direction", "source"}`` of a rule result; ``source`` is "rule" when the rule stated
    it, "inferred" otherwise. ``params`` are the rule's pack parameters (metric names, limits)."""
    details = details or {}
    params = params or {}
    stated = details.get("criterion")
    if isinstance(stated, Mapping) and stated.get("name"):
        direction = DIRECTIONS.get(str(stated.get("direction") or ""), "")
        out = {"name": str(stated["name"]), "unit": str(stated.get("unit") or ""), "direction": direction,
               "source": "rule"}
        if stated.get("condition"):
            out["condition"] = str(stated["condition"])
        return out
    if isinstance(stated, str) and stated in CRITERION_KEYS:
        name, unit, direction = CRITERION_KEYS[stated]
        return {"name": name, "unit": unit, "direction": direction, "source": "inferred"}
    if kind in ("metric_min", "metric_max") and params.get("metric"):
        name, unit = metric_label(str(params["metric"]))
        return {"name": name, "unit": unit, "direction": kind[-3:], "source": "inferred"}
    if kind == "explanation_sanity" and threshold is not None:
        if params.get("max_spearman") is not None and math.isclose(threshold, float(params["max_spearman"])):
            return {"name": "Spearman ρ of maps before and after weight randomisation", "unit": "correlation, −1–1",
                    "direction": "max", "source": "inferred"}
        if params.get("max_ssim") is not None and math.isclose(threshold, float(params["max_ssim"])):
            return {"name": "SSIM of maps before and after weight randomisation", "unit": "similarity, −1–1",
                    "direction": "max", "source": "inferred"}
    if kind == "baseline_metric_drop" and params.get("metric"):
        name, unit = metric_label(str(params["metric"]))
        return {"name": f"{name} drop since the baseline", "unit": unit, "direction": "max", "source": "inferred"}
    if kind in KINDS:
        name, unit, direction = KINDS[kind]
        return {"name": name, "unit": unit, "direction": direction, "source": "inferred"}
    direction = kind[-3:] if kind.endswith(("_min", "_max")) else ""
    return {"name": "measured value", "unit": "", "direction": direction, "source": "inferred"}


def number(v: float | None, unit: str = "") -> str:
    """A value as the comparison prints it: counts as integers, else three decimals; "—" when missing."""
    if v is None or not math.isfinite(float(v)):
        return "—"
    if unit == "count" and float(v).is_integer():
        return str(int(v))
    return f"{float(v):.3f}"


def comparison(criterion: Mapping[str, str], value: float | None, threshold: float | None) -> str:
    """"probability drop 0.276 > 0.200": the value against the threshold with the relation that holds, in the
    criterion's direction ("≤"/">" for a ceiling, "≥"/"<" for a floor)."""
    name, unit, direction = criterion.get("name", ""), criterion.get("unit", ""), criterion.get("direction", "")
    v, t = number(value, unit), number(threshold, unit)
    if value is None or threshold is None or not math.isfinite(value) or not math.isfinite(threshold):
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


def _where(details: Mapping[str, Any]) -> str:
    parts = []
    if details.get("worst_class"):
        parts.append(f"for '{details['worst_class']}'")
    if details.get("worst_region"):
        key = str(details["worst_region"])
        region = (details.get("regions") or {}).get(key)
        parts.append(str(region["label"]) if isinstance(region, Mapping) and region.get("label") else key.replace("_", " "))
    if details.get("worst_column"):
        parts.append(f"metadata column '{details['worst_column']}'")
    if details.get("explainer") and details.get("explainer_judged", True):  # maps shown as information only: not named
        parts.append(f"{details['explainer']} maps")
    return ", ".join(parts)


def headline(rule: Mapping[str, Any]) -> str:
    """One line a reviewer checks: the comparison, where it happened, the rule's first sentence for errors."""
    crit = rule.get("criterion") or {}
    if rule.get("status") == "error":
        first = str(rule.get("message") or "").split("\n", 1)[0]
        if (rule.get("details") or {}).get("incomplete") is True:  # evidence_complete: it names what is missing
            return first[:200]
        return f"could not be evaluated: {first[:200]}"
    text = comparison(crit, rule.get("value"), rule.get("threshold"))
    where = _where(rule.get("details") or {})
    return f"{text} ({where})" if where else text


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
        return f"FAIL because {first.get('id')} {what} {headline(first)}{more}."
    tail = ""
    if warns:
        w = warns[0]
        tail = (f"; {len(warns)} warning(s) do not block the release, first {w.get('id')}: "
                f"{comparison(w.get('criterion') or {}, w.get('value'), w.get('threshold'))}")
    return f"PASS: all {len(errors)} error-severity rule(s) passed{tail}."
