"""The held-out zoo's Markdown: the test-split table with the tuning split beside it, the family-held-out
variant, per kind, per architecture and per family, the pack's limits for reference, and the targets."""

from __future__ import annotations

from typing import Any

from zoo_protocol import GATE
from zoo_stats import fmt_rate, rate

TARGET_DETECTION = 0.95  # the gate's detection among reliant models (point estimate)
TARGET_FALSE_ALARMS = 0.02  # the upper end of the Wilson interval of the gate's false alarms
TARGET_WARN_CLEAN = 0.10  # a warning rule's rate on clean twins, on every architecture (point estimate)
TARGET_WARN_RELIANT = 0.80  # and on reliant models whose cue lies outside the ROI
# the confounder kinds (zoo_cues.py) whose cue lies outside the object's ROI; the others reach the object too
OUTSIDE_ROI = ("corner", "letterbox", "text", "texture", "checker", "bg_hue", "logo", "ruler")


def _pooled(r: dict[str, Any] | None) -> str:
    if not r or not r["n"]:
        return "–"
    return f"{r['k']}/{r['n']} ({100 * r['rate']:.0f} %)"


def _cell(t: dict[str, Any], rule: str, pop: str, group: str = "all") -> dict[str, Any] | None:
    return t.get(rule, {}).get(pop, {}).get(group)


def _fmt(r: dict[str, Any] | None, digits: int = 0) -> str:
    return fmt_rate(r, digits) if r else "–"


def _limits(proto: dict[str, Any], rule: str) -> str:
    vals = [f["limits"][rule] for f in proto["folds"] if rule in f["limits"]]
    if not vals:
        return "pack"
    lo, hi = min(vals), max(vals)
    return f"{lo:.2f}" if lo == hi else f"{lo:.2f}–{hi:.2f}"


def _label(rule: str) -> str:
    return "**gate (any error-severity rule)**" if rule == GATE else f"`{rule}`"


def main_table(a: dict[str, Any], proto: dict[str, Any]) -> list[str]:
    lines = [("| rule | severity | pack limit | limit read on tuning (range over folds) | **test: detection** | "
             "**test: false alarms** | tuning: detection | tuning: false alarms |"),
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for rule in [*a["rules"], {"id": GATE, "severity": "", "pack_limit": None, "tuned": True}]:
        rid = rule["id"]
        if not rule["tuned"]:
            continue
        pack = "" if rule["pack_limit"] is None else f"{rule['pack_limit']:g}"
        lim = "" if rid == GATE else _limits(proto, rid)
        lines.append(f"| {_label(rid)} | {rule['severity']} | {pack} | {lim} | "
                     f"{_fmt(_cell(proto['test'], rid, 'reliant'), 1)} | {_fmt(_cell(proto['test'], rid, 'clean'), 1)} | "
                     f"{_pooled(_cell(proto['tuning'], rid, 'reliant'))} | {_pooled(_cell(proto['tuning'], rid, 'clean'))} |")
    return lines


def targets(proto: dict[str, Any]) -> str:
    det, fa = _cell(proto["test"], GATE, "reliant"), _cell(proto["test"], GATE, "clean")
    if not det or not fa:
        return "Targets: not measurable on this subset."
    d_ok = det["rate"] >= TARGET_DETECTION
    f_ok = fa["ci95"][1] < TARGET_FALSE_ALARMS
    return (f"Targets on the test split: gate detection ≥ {100 * TARGET_DETECTION:.0f} % of reliant models: "
            f"{100 * det['rate']:.1f} % — **{'met' if d_ok else 'missed'}**; gate false alarms with a Wilson upper "
            f"bound < {100 * TARGET_FALSE_ALARMS:.0f} %: {fa['k']}/{fa['n']}, upper bound {100 * fa['ci95'][1]:.1f} % "
            f"— **{'met' if f_ok else 'missed'}**.")


def per_group(a: dict[str, Any], proto: dict[str, Any], prefix: str, names: list[str]) -> list[str]:
    rules = [r["id"] for r in a["rules"] if r["tuned"]] + [GATE]
    lines = [f"| {prefix} | " + " | ".join(_label(r) for r in rules) + " |", "| --- |" + " --- |" * len(rules)]
    for name in names:
        g = f"{prefix}:{name}"
        cells = []
        for rule in rules:
            d, f = _cell(proto["test"], rule, "reliant", g), _cell(proto["test"], rule, "clean", g)
            cells.append(f"{d['k'] if d else 0}/{d['n'] if d else 0} · {f['k'] if f else 0}/{f['n'] if f else 0}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def warning_rates(a: dict[str, Any], archs: list[str]) -> list[str]:
    """Each warning-severity rule at the pack's limits, per architecture: clean twins warned (target ≤ 10 %) and
    reliant models whose cue lies outside the ROI warned (target ≥ 80 %); not_applicable and error counted apart."""
    lines = [("| rule | architecture | clean twins warned | reliant, cue outside the ROI, warned | not applicable "
             "or error (clean · reliant) | targets |"), "| --- | --- | --- | --- | --- | --- |"]
    for rule in (r["id"] for r in a["rules"] if r["severity"] == "warning" and r["tuned"]):
        for arch in archs:
            clean, reliant = [], []
            for name, m in a["models"].items():
                _, march, kind, version, _ = name.split("/")
                if march != arch or rule not in m["status"]:
                    continue
                if version == "clean":
                    clean.append(m["status"][rule])
                elif m["relies"] and kind in OUTSIDE_ROI:
                    reliant.append(m["status"][rule])
            if not clean and not reliant:
                continue
            c = rate(sum(s in ("warn", "fail") for s in clean), len(clean))
            r = rate(sum(s in ("warn", "fail") for s in reliant), len(reliant))
            odd = [sum(s in ("not_applicable", "error") for s in x) for x in (clean, reliant)]
            ok = (c["n"] and c["rate"] <= TARGET_WARN_CLEAN, r["n"] and r["rate"] >= TARGET_WARN_RELIANT)
            verdict = ", ".join(f"{w} {'met' if good else 'missed'}" for w, good in zip(
                (f"clean ≤ {100 * TARGET_WARN_CLEAN:.0f} %", f"reliant ≥ {100 * TARGET_WARN_RELIANT:.0f} %"), ok,
                strict=True))
            lines.append(f"| `{rule}` | {arch} | {_fmt(c)} | {_fmt(r)} | {odd[0]} · {odd[1]} | {verdict} |")
    return lines


def markdown(a: dict[str, Any], command: str, names: dict[str, list[str]], minutes: float) -> str:
    pops = a["populations"]
    loko, lofo = a["leave_one_kind_out"], a["leave_one_family_out"]
    out = [(f"Shortcut zoo, held out: {a['n_models']} models ({pops['reliant']} confounded models that rely on their "
           f"cue, {pops['non_reliant']} that do not, {pops['clean']} clean twins); rule code {', '.join(a['rule_code'])}. "
           f"Reproduce: `{command}` ({minutes:.0f} CPU-thread minutes to train and audit every model from scratch; "
           "cached models and audits are reused)."), ""]
    if loko.get("folds"):
        out += [("**Leave one confounder kind out** — every rule's limit is read on the other kinds' clean twins "
                f"(policy: {a['policy']}); rates on the held-out kind's models (test split, Wilson 95 %), the "
                "tuning split beside it (pooled over folds, no interval):"), "", *main_table(a, loko), "",
                targets(loko), ""]
    if lofo.get("folds"):
        out += ["**Leave one data family out** (limits read on the other family):", "", *main_table(a, lofo), "",
                targets(lofo), ""]
    if loko.get("folds"):
        out += ["Per confounder kind (leave-one-kind-out test split; detection k/n · false alarms k/n):", "",
                *per_group(a, loko, "kind", names["kind"]), "",
                "Per architecture (test split; detection · false alarms):", "",
                *per_group(a, loko, "arch", names["arch"]), "",
                "Per data family (test split; detection · false alarms):", "",
                *per_group(a, loko, "family", names["family"]), ""]
    warn = warning_rates(a, names["arch"])
    if len(warn) > 2:
        out += [("Warnings at the pack's limits (all models; Wilson 95 %; issue 31's targets: clean twins ≤ 10 % on "
                "every architecture, reliant models whose cue lies outside the ROI ≥ 80 %):"), "", *warn, ""]
    pack = a["pack_limits"]["all"]
    out += ["The pack's limits as shipped (read on the earlier nine-kind shapes zoo; all models):", "",
            "| rule | severity | limit | detection | false alarms | confounded, not reliant, flagged |",
            "| --- | --- | --- | --- | --- | --- |"]
    for rule in [*a["rules"], {"id": GATE, "severity": "", "pack_limit": None}]:
        rid = rule["id"]
        lim = "" if rule["pack_limit"] is None else f"{rule['pack_limit']:g}"
        out.append(f"| {_label(rid)} | {rule['severity']} | {lim} | {_fmt(_cell(pack, rid, 'reliant'))} | "
                   f"{_fmt(_cell(pack, rid, 'clean'))} | {_fmt(_cell(pack, rid, 'non_reliant'))} |")
    bad = {k: v for k, v in a["statistic_check"].items() if v["disagree"] or v["no_statistic"]}
    out += ["", "Decision statistics read from the findings agree with the rules' own verdicts at the pack's limits "
            + ("on every model." if not bad else "except: " + "; ".join(
                f"`{k}` {len(v['disagree'])} disagreement(s) {v['disagree'][:3]}, {v['no_statistic']} unreadable"
                for k, v in bad.items()) + " (these rules' tuned rates are approximate).")]
    return "\n".join(out) + "\n"
