"""The held-out protocol of the shortcut zoo: limits read on a tuning split, rates reported on a disjoint test
split.

- leave one kind out: for each confounder kind, every rule's limit is read on the models of the other kinds
  (zoo_limits.LimitPolicy) and the held-out kind's models are judged at it; the test split is the union of the
  held-out kinds (each model judged once, at limits its kind did not shape);
- leave one family out: the same with the data family (shapes, photos) held out;
- the pack's limits as shipped, for reference (read on an earlier zoo of nine shapes kinds: held out only for
  the new kinds and the photographs).

Populations: reliant confounded models (swapped accuracy 15 points or more below i.i.d.: detection counts these),
clean twins (false alarms), confounded models that do not rely on their cue (reported apart). The gate is "an
error-severity rule fails or errs". Tuning-split rates are pooled over folds (a model counts once per fold it
tunes), so their k/n are not independent draws and carry no interval.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoo_limits import DATA_KINDS, LimitPolicy, blocks, check, flagged_at, read_limits, statistic, tuned_rules
from zoo_stats import rate

GATE = "gate"
POPULATIONS = ("reliant", "clean", "non_reliant")


def population(r: dict[str, Any]) -> str:
    if r["case"]["version"] == "clean":
        return "clean"
    return "reliant" if r["relies"] else "non_reliant"


def verdicts(r: dict[str, Any], limits: dict[str, float] | None) -> dict[str, bool]:
    """Each rule's verdict on one model (flagged or not) at ``limits`` (None or a missing rule: the pack's), and
    the gate's."""
    lim = limits or {}
    out = {f["rule"]: flagged_at(f, lim.get(f["rule"])) for f in r["findings"]}
    out[GATE] = any(blocks(f, lim.get(f["rule"])) for f in r["findings"])
    return out


def groups_of(r: dict[str, Any]) -> list[str]:
    c = r["case"]
    return ["all", f"kind:{c['kind']}", f"arch:{c['arch']}", f"family:{c.get('family', 'shapes')}"]


def tally(rows: list[tuple[dict[str, Any], dict[str, bool]]], with_intervals: bool = True) -> dict[str, Any]:
    """rule -> population -> group -> rate (k/n with a Wilson interval, or k/n alone)."""
    counts: dict[str, dict[str, dict[str, list[int]]]] = {}
    for r, v in rows:
        pop = population(r)
        for rule, hit in v.items():
            for g in groups_of(r):
                c = counts.setdefault(rule, {}).setdefault(pop, {}).setdefault(g, [0, 0])
                c[0] += int(hit)
                c[1] += 1
    return {rule: {pop: {g: (rate(k, n) if with_intervals else {"k": k, "n": n, "rate": k / n if n else None})
                         for g, (k, n) in gs.items()} for pop, gs in pops.items()} for rule, pops in counts.items()}


def held_out(results: list[dict[str, Any]], key: Callable[[dict[str, Any]], str], policy: LimitPolicy
             ) -> dict[str, Any]:
    """One held-out protocol: folds by ``key``; the test rows judged at their fold's limits."""
    rules = tuned_rules(results)
    names = sorted({key(r) for r in results})
    if len(names) < 2:
        return {"folds": [], "note": f"one {key.__name__} only: nothing to hold out"}
    folds, test_rows, tune_rows = [], [], []
    for name in names:
        test = [r for r in results if key(r) == name]
        tuning = [r for r in results if key(r) != name]
        limits = read_limits(tuning, rules, policy)
        folds.append({"held_out": name, "limits": limits, "n_test": len(test), "n_tuning": len(tuning)})
        test_rows += [(r, verdicts(r, limits)) for r in test]
        tune_rows += [(r, verdicts(r, limits)) for r in tuning]
    return {"folds": folds, "test": tally(test_rows), "tuning": tally(tune_rows, with_intervals=False),
            "test_verdicts": {_name(r): v for r, v in test_rows}}


def kind_of(r: dict[str, Any]) -> str:
    return r["case"]["kind"]


def family_of(r: dict[str, Any]) -> str:
    return r["case"].get("family", "shapes")


kind_of.__name__ = "kind"
family_of.__name__ = "family"


def _name(r: dict[str, Any]) -> str:
    c = r["case"]
    return f"{family_of(r)}/{c['arch']}/{c['kind']}/{c['version']}/s{c['seed']}"


def analyse(results: list[dict[str, Any]], policy: LimitPolicy) -> dict[str, Any]:
    rules = [{"id": f["rule"], "kind": f["kind"], "severity": f["severity"], "pack_limit": f["threshold"],
              "tuned": f["kind"] not in DATA_KINDS} for f in (results[0]["findings"] if results else [])]
    pops = {p: sum(population(r) == p for r in results) for p in POPULATIONS}
    codes = sorted({(r.get("rule_code") or {}).get("commit", "?") + ("+dirty" if (r.get("rule_code") or {}).get("dirty")
                                                                   else "") for r in results})
    return {
        "n_models": len(results), "populations": pops, "rules": rules, "policy": policy.__dict__,
        "rule_code": codes,
        "statistic_check": {rule["id"]: check(results, rule["id"]) for rule in rules if rule["tuned"]},
        "leave_one_kind_out": held_out(results, kind_of, policy),
        "leave_one_family_out": held_out(results, family_of, policy),
        "pack_limits": {"all": tally([(r, verdicts(r, None)) for r in results])},
        "models": {_name(r): {"acc_iid": r["acc_iid"], "acc_swapped": r["acc_swapped"], "relies": r["relies"],
                              "status": {f["rule"]: f["status"] for f in r["findings"]},
                              "value": {f["rule"]: f["value"] for f in r["findings"]},
                              "statistic": {f["rule"]: statistic(f) for f in r["findings"]}} for r in results},
    }
