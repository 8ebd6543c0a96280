"""What the text exports say of the family ([[family]]), read from results.json's ``family``: plain sentences for
summary.md (members, the key metric's spread, the released member against the family, the pooled out-of-fold
figure, the weakest agreement, and per rule how many members fail it, named). Nothing is said without a family."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _f(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else "—"


def _ci(ci: Any) -> str:
    return f"{_f(ci[0])}–{_f(ci[1])}" if isinstance(ci, list) and len(ci) == 2 and None not in ci else "—"


def family_lines(results: Mapping[str, Any]) -> list[str]:
    fam = results.get("family")
    if not isinstance(fam, Mapping):
        return []
    metric = fam["key_metric"]
    trained = [m for m in fam["members"] if m["role"] != "ensemble"]
    ensemble = next((m for m in fam["members"] if m["role"] == "ensemble"), None)
    s = fam["spread"].get(metric) or {}
    level = f"{fam['level']:.0%}"
    out = [f"{len(trained)} members of the recipe (released: '{fam['released']}')"
           + (f" and their mean ensemble ({metric} {_f(ensemble['metrics'].get(metric))})" if ensemble else "")
           + f"; {metric} mean {_f(s.get('mean'))}, sd {_f(s.get('sd'))} ({level} t-interval "
           f"{_ci(s.get('t_interval'))}), range {_f(s.get('min'))}–{_f(s.get('max'))}."]
    check = fam.get("released_check")
    if check:
        where = ("too few other members to tell whether it is typical" if check["outlier"] is None
                 else "an outlier of the family" if check["outlier"] else "within the family's spread")
        out.append(f"Released member '{check['member']}': {check['metric']} {_f(check['value'])}, {where} "
                   f"({level} prediction interval from the other {check['other_members']}: "
                   f"{_ci(check['prediction_interval'])}).")
    pooled = fam.get("pooled_out_of_fold")
    if pooled:
        out.append(f"Pooled out-of-fold predictions of {len(pooled['members'])} folds ({pooled['n']} rows): {metric} "
                   f"{_f(pooled['metrics'].get(metric))}.")
    names = {m["name"] for m in trained}
    pairs = [p for p in fam["agreement"] if p["a"] in names and p["b"] in names and p["kappa"] is not None]
    if pairs:
        w = min(pairs, key=lambda p: p["kappa"])
        out.append(f"Weakest prediction agreement: '{w['a']}' and '{w['b']}', kappa {_f(w['kappa'])} "
                   f"({w['changed']} of {w['n']} answers differ).")
    for r in fam["rules"]:
        failing = f": {', '.join(r['failing'])}" if r["failing"] else ""
        errors = f" (not judged on {', '.join(r['errors'])})" if r["errors"] else ""
        out.append(f"Rule '{r['rule']}' fails on {r['k']} of {r['of']} members{failing}{errors}.")
    return out
