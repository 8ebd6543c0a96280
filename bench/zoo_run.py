"""The shortcut zoo's held-out run (bench/zoo_split.py parses the command line): every case through
zoo_eval.evaluate_case (trained or loaded, audited or read from the cache), then the protocol and the tables."""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import torch
from zoo_data import FAMILIES, KINDS
from zoo_eval import PACKAGE, Case, evaluate_case
from zoo_limits import LimitPolicy
from zoo_models import ARCHS
from zoo_protocol import analyse
from zoo_tables import markdown

from audit.rules.pack import load_pack

SKIP_KINDS = ("explanation_sanity", "faithfulness")  # trust in explanations, not shortcut detectors


def cases(families: list[str], archs: list[str], kinds: list[str], seeds: list[int]) -> list[Case]:
    """Seed by seed, so a partial run covers every kind and family evenly; each twin pair together."""
    return [Case(a, k, s, v, f) for s in seeds for f in families for k in kinds for a in archs
            for v in ("confounded", "clean")]


def partial_note(todo: list[Case], missing: list[str]) -> str:
    """Which asked-for models have no audit, by family, architecture and seed (k of n each)."""
    def group(c: Case) -> str:
        return f"{c.family}/{c.arch}/s{c.seed}"

    asked = Counter(group(c) for c in todo)
    gone = Counter(group(c) for c in todo if c.name in set(missing))
    parts = [f"{g} {gone[g]} of {asked[g]}" + (" (all)" if gone[g] == asked[g] else "") for g in asked if gone[g]]
    return (f"**Partial**: {len(missing)} of {len(todo)} asked-for models had no audit at this rule code and are "
            f"left out ({'; '.join(parts)}); every rate below counts the audited models only.")


def run(args: argparse.Namespace, command: str) -> int:
    torch.set_num_threads(args.threads)
    pack = load_pack(args.pack or PACKAGE.parent / "rules" / "shortcuts.toml")
    rules = [r for r in pack.rules if r.phase == "main" and r.kind not in SKIP_KINDS]
    ids = tuple(r.params.id for r in rules)
    families, archs, kinds = args.families.split(","), args.archs.split(","), args.kinds.split(",")
    todo = cases(families, archs, kinds, [int(s) for s in args.seeds.split(",")])
    results, missing = [], []
    for i, c in enumerate(todo):
        t = time.perf_counter()
        try:
            r = evaluate_case(c, pack, ids, force=args.recompute, cached_only=args.table_only,
                              train_only=args.train_only)
        except FileNotFoundError:
            missing.append(c.name)
            continue
        results.append(r)
        bad = [f"{f['rule']}:{f['status']}" for f in r.get("findings", []) if f["status"] not in ("pass", "not_applicable")]
        print(f"[{i + 1}/{len(todo)}] {c.name}: iid {r['acc_iid']:.3f} swapped {r['acc_swapped']:.3f} "
              f"{'relies' if r['relies'] else '      '} {time.perf_counter() - t:5.1f}s  {' '.join(bad)}", flush=True)
    if args.train_only:
        return 0
    a = analyse(results, LimitPolicy(args.q_error, args.q_warning))
    a["command"] = command
    minutes = sum(r["train_seconds"] + r["rules_seconds"] for r in results) / 60
    a["compute_minutes"] = round(minutes, 1)
    names = {"kind": [k for k in KINDS if k in kinds], "arch": [x for x in ARCHS if x in archs],
             "family": [f for f in FAMILIES if f in families]}
    md = markdown(a, command, names, minutes)
    if missing:  # --table-only: say which asked-for cases had no cached audit (never extrapolated)
        a["missing"] = missing
        md = partial_note(todo, missing) + "\n\n" + md
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(a, indent=1) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(md, encoding="utf-8")
    print("\n" + md)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0
