"""The family against a baseline family (``audit run --baseline`` where both audits have ``[[family]]``): per member
(matched by name) the change of each metric, and per family the change of each metric's mean and spread, of the
weakest prediction agreement, and of how many members fail each rule. Both sides are read in their results.json
form (``FamilyRun.as_dict``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .result import FamilyRun


def _delta(base: Any, cur: Any) -> dict[str, float | None]:
    b = float(base) if isinstance(base, (int, float)) and math.isfinite(base) else None
    c = float(cur) if isinstance(cur, (int, float)) and math.isfinite(cur) else None
    return {"baseline": b, "current": c, "delta": None if b is None or c is None else c - b}


def _min_kappa(doc: Mapping[str, Any]) -> float | None:
    trained = {m["name"] for m in doc["members"] if m["role"] != "ensemble"}
    ks = [p["kappa"] for p in doc["agreement"] if p["a"] in trained and p["b"] in trained and p["kappa"] is not None]
    return min(ks) if ks else None


def compare_family(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    """The changes from ``baseline`` to ``current`` (both ``FamilyRun.as_dict`` forms)."""
    base_members = {m["name"]: m for m in baseline["members"]}
    cur_members = {m["name"]: m for m in current["members"]}
    members = []
    for name, m in cur_members.items():
        b = base_members.get(name)
        if b is None:
            continue
        shared = [k for k in m["metrics"] if k in b["metrics"]]
        members.append({"name": name, "role": m["role"], "baseline_role": b["role"],
                        "metrics": {k: _delta(b["metrics"][k], m["metrics"][k]) for k in shared}})
    spread = {k: {"mean": _delta(baseline["spread"][k]["mean"], s["mean"]),
                  "sd": _delta(baseline["spread"][k]["sd"], s["sd"]), "n": [baseline["spread"][k]["n"], s["n"]]}
              for k, s in current["spread"].items() if k in baseline["spread"]}
    base_rules = {r["rule"]: r for r in baseline["rules"]}
    rules = [{"rule": r["rule"], "baseline": {"k": b["k"], "of": b["of"], "failing": b["failing"]},
              "current": {"k": r["k"], "of": r["of"], "failing": r["failing"]}, "delta_k": r["k"] - b["k"]}
             for r in current["rules"] if (b := base_rules.get(r["rule"])) is not None]
    return {"members": members,
            "only_current": sorted(set(cur_members) - set(base_members)),
            "only_baseline": sorted(set(base_members) - set(cur_members)),
            "spread": spread, "rules": rules,
            "kappa_min": _delta(_min_kappa(baseline), _min_kappa(current)),
            "released": {"baseline": baseline["released"], "current": current["released"]}}


def with_baseline(family: FamilyRun, baseline: Mapping[str, Any] | None) -> FamilyRun:
    """``family`` with its comparison against the baseline audit's family (a note when the baseline has none)."""
    if baseline is None:
        return family
    other = baseline.get("family")
    if not isinstance(other, Mapping):
        return replace(family, notes=(*family.notes, "the baseline audit has no family: nothing to compare"))
    return replace(family, comparison=compare_family(family.as_dict(), other))
