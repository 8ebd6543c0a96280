"""The shortcut zoo: detection and false-alarm rates of the shortcut rules, measured on models with a planted
confounder and their clean twins.

    .venv/bin/python bench/zoo.py                      # 9 kinds x 3 architectures x 3 seeds x 2, shapes
    .venv/bin/python bench/zoo.py --archs cnn --seeds 0 --kinds corner,tint      # a subset
    .venv/bin/python bench/zoo.py --table-only         # the table from cached results (nothing trained)

This is the in-sample zoo: the pack's limits were read on these nine shapes kinds, so its rates are tuning
rates. bench/zoo_split.py runs the held-out protocol (16 kinds, shapes and photographs, limits read on one split
and rates reported on another); both share the data, models and audits (and their cache).

Every kind of confounder (zoo_cues.py: corner tag, letterbox bars, colour tint, blur, JPEG quality, burnt-in
text at varying positions, background texture, brightness/contrast tied to a site, a metadata-listed site that
leaves a faint trace, and seven more) is planted on 90 % of one class's training images (5 % of the others;
sites 85 / 15 %); the clean twin trains on the same images with the cue on half of them, independent of the
class. Both are audited on
the same i.i.d. held-out set, where the cue rides along with the class. A "swapped" held-out copy moves the cue
to the other classes: a confounded model whose accuracy there falls 15 points or more below i.i.d. relies on
its cue, and only those count for detection (the others are reported apart). Models (zoo_models.py: a small
CNN, a ResNet-style net, a tiny ViT with a convolutional stem) and per-model results are cached on disk
(``$MODEL_AUDIT_ZOO_BENCH_CACHE``, default /tmp/model-audit-zoo-bench), keyed by hashes of the generator,
training settings, the rule pack and the rule code, so a rerun only computes what changed.

Reported, per rule and overall (overall = an error-severity rule fails, i.e. the release gate): detection
among reliant confounded models and false alarms among clean twins, each as k/n with a 95 % Wilson interval,
per confounder kind and per architecture, plus the ROC AUC of each rule's statistic (its finding's value:
reliant confounded vs clean twins) and, per threshold, the rates a different limit would give. Writes JSON
(default bench/results/zoo.json) and the Markdown table (bench/results/zoo.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import torch
from zoo_data import FAMILIES, KINDS
from zoo_eval import Case, data_level, evaluate_case
from zoo_models import ARCHS
from zoo_stats import fmt_rate, rate, roc, wilson

from audit.rules.pack import load_pack

__all__ = ["analyse", "fmt_rate", "markdown", "rate", "roc", "wilson"]
PACK = BENCH_DIR.parent / "rules" / "shortcuts.toml"
SKIP_KINDS = ("explanation_sanity", "faithfulness")  # trust in explanations, not shortcut detectors
DEFAULT_OUT = BENCH_DIR / "results" / "zoo.json"
ORIGINAL_KINDS = KINDS[:9]  # the nine kinds the pack's limits were read on


def flagged(f: dict[str, Any]) -> bool:
    return f["status"] in ("fail", "warn")


def _key(r: dict[str, Any]) -> str:
    c = r["case"]
    return f"{c.get('family', 'shapes')}/{c['arch']}/{c['kind']}/s{c['seed']}"


def analyse(results: list[dict[str, Any]], pack_rules: list[Any]) -> dict[str, Any]:
    conf = [r for r in results if r["case"]["version"] == "confounded"]
    reliant = [r for r in conf if r["relies"]]
    clean = [r for r in results if r["case"]["version"] == "clean"]
    rules = [r.params.id for r in pack_rules]
    severity = {r.params.id: r.params.severity for r in pack_rules}
    out: dict[str, Any] = {"n_models": len(results), "n_confounded": len(conf), "n_reliant": len(reliant),
                           "n_clean": len(clean), "rules": {}, "overall": {}}

    def by(rs: list[dict], rule: str | None) -> dict[str, Any]:
        def hit(r: dict) -> bool:
            if rule is None:  # the gate: an error-severity rule failed or could not be evaluated
                return any(f["severity"] == "error" and f["status"] in ("fail", "error") for f in r["findings"])
            f = next((f for f in r["findings"] if f["rule"] == rule), None)
            return f is not None and flagged(f)
        res = {"all": rate(sum(hit(r) for r in rs), len(rs))}
        for kind in KINDS:
            sub = [r for r in rs if r["case"]["kind"] == kind]
            res[kind] = rate(sum(hit(r) for r in sub), len(sub))
        for arch in ARCHS:
            sub = [r for r in rs if r["case"]["arch"] == arch]
            res[arch] = rate(sum(hit(r) for r in sub), len(sub))
        for fam in FAMILIES:
            sub = [r for r in rs if r["case"].get("family", "shapes") == fam]
            res[fam] = rate(sum(hit(r) for r in sub), len(sub))
        return res

    for rule in rules:
        vals = {}
        for name, rs in (("reliant", reliant), ("clean", clean)):
            vals[name] = [f["value"] for r in rs for f in r["findings"] if f["rule"] == rule and f["value"] is not None]
        statuses = {s: sum(1 for r in results for f in r["findings"] if f["rule"] == rule and f["status"] == s)
                    for s in ("pass", "warn", "fail", "error", "not_applicable")}
        out["rules"][rule] = {"severity": severity[rule], "detection": by(reliant, rule),
                              "false_alarms": by(clean, rule), "non_reliant_flagged": by(
                                  [r for r in conf if not r["relies"]], rule),
                              "roc": roc(vals["reliant"], vals["clean"]), "statuses": statuses}
    out["overall"] = {"detection": by(reliant, None), "false_alarms": by(clean, None),
                      "non_reliant_flagged": by([r for r in conf if not r["relies"]], None)}
    out["reliance"] = {_key(r): {"iid": r["acc_iid"], "swapped": r["acc_swapped"], "relies": r["relies"]}
                       for r in conf}
    out["clean_accuracy"] = {_key(r): {"iid": r["acc_iid"], "swapped": r["acc_swapped"]} for r in clean}
    return out


def markdown(a: dict[str, Any], command: str, wall: float) -> str:
    lines = [(f"Shortcut zoo: {a['n_models']} models ({a['n_confounded']} confounded, of which {a['n_reliant']} rely "
             f"on their cue; {a['n_clean']} clean twins). Reproduce: `{command}` ({wall / 60:.0f} CPU-thread minutes to train and evaluate every model)."),
             "", "| rule | severity | detection (reliant confounded) | false alarms (clean twins) | ROC AUC |",
             "| --- | --- | --- | --- | --- |"]
    for rule, d in a["rules"].items():
        auc = d["roc"]["auc"]
        lines.append(f"| `{rule}` | {d['severity']} | {fmt_rate(d['detection']['all'])} | "
                     f"{fmt_rate(d['false_alarms']['all'])} | {'–' if auc is None else f'{auc:.3f}'} |")
    o = a["overall"]
    lines.append(f"| **any error-severity rule (the gate)** | | **{fmt_rate(o['detection']['all'])}** | "
                 f"**{fmt_rate(o['false_alarms']['all'])}** | |")
    kinds = [k for k in KINDS if sum(o[p][k]["n"] for p in ("detection", "false_alarms", "non_reliant_flagged"))]
    lines += ["", "Detection per confounder kind (reliant models; k/n) and false alarms on the kind's clean twins:", "",
              "| rule | " + " | ".join(kinds) + " |", "| --- |" + " --- |" * len(kinds)]
    for rule, d in [*a["rules"].items(), ("**gate**", o)]:
        cells = []
        for kind in kinds:
            det, fa = d["detection"][kind], d["false_alarms"][kind]
            cells.append(f"{det['k']}/{det['n']} · {fa['k']}/{fa['n']}")
        lines.append(f"| {rule if rule.startswith('**') else '`' + rule + '`'} | " + " | ".join(cells) + " |")
    lines += ["", "Per architecture (detection · false alarms):", "", "| rule | " + " | ".join(ARCHS) + " |",
              "| --- |" + " --- |" * len(ARCHS)]
    for rule, d in [*a["rules"].items(), ("**gate**", o)]:
        cells = [f"{fmt_rate(d['detection'][x])} · {fmt_rate(d['false_alarms'][x])}" for x in ARCHS]
        lines.append(f"| {rule if rule.startswith('**') else '`' + rule + '`'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--kinds", default=",".join(ORIGINAL_KINDS))
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--families", default="shapes")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--pack", type=Path, default=PACK)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--table-only", action="store_true", help="use cached results only; skip missing cases")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pack = load_pack(args.pack)
    rules = [r for r in pack.rules if r.phase == "main" and r.kind not in SKIP_KINDS]
    ids = tuple(r.params.id for r in rules)
    cases = [Case(a, k, s, v, f) for f in args.families.split(",") for a in args.archs.split(",")
             for s in map(int, args.seeds.split(",")) for k in args.kinds.split(",") for v in ("confounded", "clean")]
    t0 = time.perf_counter()
    results = []
    for i, c in enumerate(cases):
        t = time.perf_counter()
        try:
            r = evaluate_case(c, pack, ids, cached_only=args.table_only)
        except FileNotFoundError:
            continue
        results.append(r)
        bad = [f"{f['rule']}:{f['status']}" for f in r["findings"] if f["status"] not in ("pass", "not_applicable")]
        print(f"[{i + 1}/{len(cases)}] {c.name}: iid {r['acc_iid']:.3f} swapped {r['acc_swapped']:.3f} "
              f"{'relies' if r['relies'] else '      '} {time.perf_counter() - t:5.1f}s  {' '.join(bad)}", flush=True)
    wall = time.perf_counter() - t0
    a = analyse(results, rules)
    a["data_level"] = {f"{c.family}/{c.kind}/s{c.seed}": data_level(c.spec) for c in cases
                       if c.version == "clean" and c.arch == cases[0].arch} if not args.table_only else {}
    a["wall_seconds"] = round(wall, 1)
    a["cases"] = results
    given = sys.argv[1:] if argv is None else argv
    command = "python bench/zoo.py" + ("".join(" " + a for a in given))
    compute = sum(r["train_seconds"] + r["rules_seconds"] for r in results)
    a["compute_seconds"] = round(compute, 1)
    md = markdown(a, command, compute)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(a, indent=1) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(md, encoding="utf-8")
    print("\n" + md)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
