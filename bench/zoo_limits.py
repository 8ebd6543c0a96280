"""Limits read on one split of the zoo and applied to another.

A model-level rule's verdict is "flagged when its decision statistic S is above its limit", where S is read from
the finding's details, so a cached audit can be judged at any limit without running the rule again:

    confounder_region    the largest excess over the judged (region, group) cells whose 95 % interval floor (the
                         lowest lower end of the measured directions) is above 0; −inf when no cell is (regions
                         and cells marked ``information``, such as the object apart from its background, are not
                         judged; sequentially sampled cells stopped where the interval cleared the pack's limit,
                         so at other limits S is approximate: ``check`` counts the disagreements)
    confounder_metadata  the largest shift over the columns whose permutation p is below the corrected level
    roi_attribution      the largest fraction of failing samples over the judged classes
    other kinds          the finding's value

``check`` compares (S > the pack's limit) with the status each rule gave, so a change in a rule's details that
breaks the reading shows up as disagreements instead of silently wrong rates. Findings that are not verdicts
(``error``, ``not_applicable``) have no S: an error of an error-severity rule blocks the gate at every limit.

Data-level rules (``data_confounder``, ``data_duplicates``) judge the held-out set, not the model; they are not
tuned (the held-out set of a clean twin is confounded as in deployment, so their warning is right there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DATA_KINDS = ("data_confounder", "data_duplicates")
FLAGGED = ("fail", "warn")


def statistic(f: dict[str, Any]) -> float | None:
    """The decision statistic S of a finding (see the module doc); None for a finding that is no verdict or whose
    details lack what S is read from."""
    if f["status"] not in ("pass", *FLAGGED):
        return None
    d = f.get("details") or {}
    try:
        if f["kind"] == "confounder_region":
            return _region(d)
        if f["kind"] == "confounder_metadata":
            vals = [e["shift"] for e in d["columns"].values() if e.get("shift") is not None
                    and e.get("p_value") is not None and e["p_value"] < e["alpha_corrected"]]
            return max(vals, default=-math.inf)
        if f["kind"] == "roi_attribution":
            return max((e["fraction_failing"] for e in d["per_class"].values() if e.get("judged")),
                       default=-math.inf)
    except (KeyError, TypeError, AttributeError):
        return None
    return None if f["value"] is None else float(f["value"])


def _region(d: dict[str, Any]) -> float:
    best = -math.inf
    for reg in d["regions"].values():
        if reg.get("information"):  # e.g. the object's own colour beside the judged background: not judged
            continue
        for e in reg["per_group"].values():
            if not e.get("judged") or e.get("information") or e.get("excess") is None:
                continue
            dirs = [x for x in (e.get("removal"), e.get("insertion")) if x]
            floor = min(x["ci95"][0] for x in dirs) if dirs else e["ci95"][0]
            if floor > 0:
                best = max(best, float(e["excess"]))
    return best


def flagged_at(f: dict[str, Any], limit: float | None) -> bool:
    """The rule's verdict at ``limit`` (None: the pack's, i.e. its status)."""
    if limit is None:
        return f["status"] in FLAGGED
    s = statistic(f)
    if s is None:
        return f["status"] in FLAGGED
    return s > limit


def blocks(f: dict[str, Any], limit: float | None) -> bool:
    """Whether the finding stops a release at ``limit``: an error-severity rule that fails or errs."""
    return f["severity"] == "error" and (f["status"] == "error" or flagged_at(f, limit))


def check(results: list[dict[str, Any]], rule: str) -> dict[str, Any]:
    """How often (S > the pack's limit) agrees with the status the rule gave."""
    agree, disagree, missing = 0, [], 0
    for r in results:
        f = next((f for f in r["findings"] if f["rule"] == rule), None)
        if f is None or f["status"] not in ("pass", *FLAGGED):
            continue
        s = statistic(f)
        if s is None or f["threshold"] is None:
            missing += 1
        elif (s > f["threshold"]) == (f["status"] in FLAGGED):
            agree += 1
        else:
            disagree.append(name(r))
    return {"agree": agree, "disagree": disagree, "no_statistic": missing}


def name(r: dict[str, Any]) -> str:
    c = r["case"]
    return f"{c.get('family', 'shapes')}/{c['arch']}/{c['kind']}/{c['version']}/s{c['seed']}"


@dataclass(frozen=True)
class LimitPolicy:
    """How a limit is read from the clean twins of the tuning split: the ``q_error`` (error-severity rules) or
    ``q_warning`` quantile of their statistics (the largest value for q = 1: no tuning false alarm), rounded up
    to ``step`` and never below it."""

    q_error: float = 1.0
    q_warning: float = 0.9
    step: float = 0.01

    def read(self, clean_stats: list[float], severity: str) -> float:
        vals = np.array([v for v in clean_stats if v is not None], dtype=float)
        vals = vals[~np.isnan(vals)]
        if not len(vals) or not np.isfinite(vals).any():
            return self.step
        q = self.q_error if severity == "error" else self.q_warning
        x = float(np.quantile(vals, q, method="higher"))
        if not math.isfinite(x):
            return self.step
        return max(self.step, round(math.ceil(round(x / self.step, 9)) * self.step, 10))


def tuned_rules(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules whose limits are read (model-level kinds), as (id, kind, severity) dicts in pack order."""
    seen: dict[str, dict[str, Any]] = {}
    for r in results:
        for f in r["findings"]:
            if f["kind"] not in DATA_KINDS and f["rule"] not in seen:
                seen[f["rule"]] = {"id": f["rule"], "kind": f["kind"], "severity": f["severity"]}
    return list(seen.values())


def read_limits(tuning: list[dict[str, Any]], rules: list[dict[str, Any]], policy: LimitPolicy) -> dict[str, float]:
    clean = [r for r in tuning if r["case"]["version"] == "clean"]
    out = {}
    for rule in rules:
        stats = [statistic(f) for r in clean for f in r["findings"] if f["rule"] == rule["id"]]
        out[rule["id"]] = policy.read([s for s in stats if s is not None], rule["severity"])
    return out
