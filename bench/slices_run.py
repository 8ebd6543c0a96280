"""The planted-slice benchmark: train a small CNN per problem (source x kind x mode x seed, see slices_data.py),
embed its validation and test sets, run every slice discovery method (slices_methods.py), and tabulate precision
at 10 and recall of the planted slice.

A problem is valid when the model fails on its slice (dcbench's criterion: a significant degradation): test
accuracy on the planted slice below the rest's, one-sided Fisher exact p < 0.01. Tables are over valid problems.
"Recovered" = the best returned slice has precision at 10 >= 0.8 (8 of its 10 most typical test images are planted
ones); intervals are Wilson 95 % for rates over problems and percentile bootstrap 95 % (2,000 resamples of
problems) for means. Per-problem rows are cached in the JSON, so a rerun computes only what is missing.

    nice -n 10 python bench/slices_run.py                      # every problem (trains what is not cached)
    nice -n 10 python bench/slices_run.py --sources shapes --seeds 0 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import binom, fisher_exact
from slices_data import KINDS, MODES, SOURCES, SliceSpec, make_set
from slices_descriptor import descriptor
from slices_methods import METHODS, NEEDS_EXTRA, Split, evaluate
from slices_models import TrainSettings, embed, load_or_train, model_path
from threadpoolctl import threadpool_limits

from audit.scoring.ranking import wilson

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "slices" / "run.json"
RECOVERED = 0.8


def problem_key(spec: SliceSpec) -> str:
    return f"{spec.source}/{spec.kind}/{spec.mode}/s{spec.seed}"


def embedded(spec: SliceSpec) -> tuple[dict[str, Split], bool]:
    """The problem's validation and test splits as the model sees them (cached beside the model), and whether the
    model was trained now."""
    path = model_path(spec, TrainSettings()).with_suffix(".npz")
    if path.is_file():
        with np.load(path) as z:
            return {n: Split(z[f"{n}_f"], z[f"{n}_p"], z[f"{n}_y"], z[f"{n}_s"]) for n in ("val", "test")}, False
    model, trained = load_or_train(spec)
    splits = {}
    for name in ("val", "test"):
        s = make_set(spec, name)
        f, p = embed(model, s.images)
        splits[name] = Split(f, p, s.labels, s.planted)
    np.savez(path, **{f"{n}_{k}": getattr(sp, a) for n, sp in splits.items()
                      for k, a in (("f", "features"), ("p", "probs"), ("y", "labels"), ("s", "planted"))})
    return splits, trained


def with_descriptor(spec: SliceSpec, splits: dict[str, Split]) -> dict[str, Split]:
    """The splits with the pixel descriptor as their second embedding (cached beside the model)."""
    path = model_path(spec, TrainSettings()).with_name(model_path(spec, TrainSettings()).stem + "-desc.npz")
    if path.is_file():
        with np.load(path) as z:
            extra = {n: z[n] for n in splits}
    else:
        extra = {n: descriptor(make_set(spec, n).images) for n in splits}
        np.savez(path, **extra)
    return {n: dataclasses.replace(s, extra=extra[n]) for n, s in splits.items()}


def run_problem(spec: SliceSpec, methods: list[str]) -> dict[str, Any]:
    t0 = time.time()
    splits, trained = embedded(spec)
    if any(m in NEEDS_EXTRA for m in methods):
        splits = with_descriptor(spec, splits)
    test = splits["test"]
    correct = test.probs.argmax(1) == test.labels
    table = [[int(correct[test.planted].sum()), int((~correct[test.planted]).sum())],
             [int(correct[~test.planted].sum()), int((~correct[~test.planted]).sum())]]
    p_fail = float(fisher_exact(table, alternative="less")[1])
    row: dict[str, Any] = {
        "key": problem_key(spec), "source": spec.source, "kind": spec.kind, "mode": spec.mode, "seed": spec.seed,
        "fraction": spec.fraction, "n_planted_test": int(test.planted.sum()),
        "accuracy_slice": float(correct[test.planted].mean()), "accuracy_rest": float(correct[~test.planted].mean()),
        "p_fail": p_fail, "valid": p_fail < 0.01, "trained_now": trained, "methods": {},
    }
    for name in methods:
        rng = np.random.default_rng([spec.seed, zlib.crc32(name.encode()), 30])  # the same draws in any subset
        t = time.time()
        res = evaluate(METHODS[name](splits["val"], test, rng), test.planted)
        res["seconds"] = round(time.time() - t, 3)
        row["methods"][name] = res
    row["seconds"] = round(time.time() - t0, 1)
    return row


def _boot_mean(x: np.ndarray, rng: np.random.Generator, reps: int = 2000) -> tuple[float, float]:
    if len(x) == 0:
        return (float("nan"), float("nan"))
    means = x[rng.integers(0, len(x), (reps, len(x)))].mean(1)
    return (float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975)))


def summarise(rows: list[dict[str, Any]], methods: list[str]) -> dict[str, Any]:
    valid = [r for r in rows if r["valid"]]
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"n_problems": len(rows), "n_valid": len(valid), "methods": {}}
    for m in methods:
        p10 = np.array([r["methods"][m]["precision_at_10"] for r in valid if m in r["methods"]])
        rec = np.array([r["methods"][m]["recall"] for r in valid if m in r["methods"]])
        k = int((p10 >= RECOVERED).sum())
        out["methods"][m] = {
            "n": len(p10), "recovered": k, "recovered_rate": k / len(p10) if len(p10) else float("nan"),
            "recovered_ci95": wilson(k, len(p10)), "mean_precision_at_10": float(p10.mean()) if len(p10) else None,
            "precision_at_10_ci95": _boot_mean(p10, rng), "mean_recall": float(rec.mean()) if len(rec) else None,
            "recall_ci95": _boot_mean(rec, rng),
            "mean_returned": float(np.mean([r["methods"][m]["n_returned"] for r in valid])) if valid else None,
        }
    out["paired"] = [c for a, b in PAIRS if a in methods and b in methods and (c := paired(rows, a, b))]
    return out


PAIRS = (("ours", "domino"), ("ours+desc", "domino+desc"))


def paired(rows: list[dict[str, Any]], a: str, b: str) -> dict[str, Any] | None:
    """``a`` against ``b`` on the same valid problems: problems only one recovers (exact two-sided McNemar / sign
    test on them) and the mean difference in precision at 10 with a paired bootstrap 95 % interval."""
    both = [r for r in rows if r["valid"] and a in r["methods"] and b in r["methods"]]
    if not both:
        return None
    pa = np.array([r["methods"][a]["precision_at_10"] for r in both])
    pb = np.array([r["methods"][b]["precision_at_10"] for r in both])
    ra, rb = pa >= RECOVERED, pb >= RECOVERED
    only_a, only_b = int(np.sum(ra & ~rb)), int(np.sum(rb & ~ra))
    n = only_a + only_b
    p = float(min(1.0, 2 * binom.cdf(min(only_a, only_b), n, 0.5))) if n else 1.0
    return {"a": a, "b": b, "n": len(both), "only_a": only_a, "only_b": only_b, "mcnemar_p": p,
            "precision_at_10_difference": float((pa - pb).mean()),
            "difference_ci95": _boot_mean(pa - pb, np.random.default_rng(1))}


def _pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.0f}"


def markdown(summary: dict[str, Any], title: str) -> str:
    lines = [f"**{title}** ({summary['n_valid']} valid of {summary['n_problems']} problems)", "",
             "| method | recovered (p@10 >= 0.8) | mean precision at 10 | mean recall | slices returned |",
             "| --- | --- | --- | --- | --- |"]
    for m, s in summary["methods"].items():
        lo, hi = s["recovered_ci95"]
        plo, phi = s["precision_at_10_ci95"]
        rlo, rhi = s["recall_ci95"]
        lines.append(f"| {m} | {s['recovered']}/{s['n']} = {_pct(s['recovered_rate'])} % ({_pct(lo)}-{_pct(hi)}) | "
                     f"{s['mean_precision_at_10']:.2f} ({plo:.2f}-{phi:.2f}) | {s['mean_recall']:.2f} "
                     f"({rlo:.2f}-{rhi:.2f}) | {s['mean_returned']:.1f} |")
    for c in summary.get("paired", ()):
        lo, hi = c["difference_ci95"]
        lines.append(f"\n{c['a']} vs {c['b']} on the same {c['n']} problems: recovered by {c['a']} only "
                     f"{c['only_a']}, by {c['b']} only {c['only_b']} (exact McNemar p = {c['mcnemar_p']:.2f}); "
                     f"precision at 10 difference {c['precision_at_10_difference']:+.2f} ({lo:+.2f} to {hi:+.2f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--recompute", action="store_true",
                    help="rerun the chosen methods even where their rows are cached (other methods' rows are kept)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # tiny batches: one thread is fastest on a shared machine
    threadpool_limits(1)
    rows = {}
    if args.out.is_file():
        rows = {r["key"]: r for r in json.loads(args.out.read_text())["rows"]}
    for source in args.sources:
        for kind in args.kinds:
            for mode in args.modes:
                for seed in args.seeds:
                    spec = SliceSpec(source, kind, mode, seed)
                    key = problem_key(spec)
                    have = rows.get(key, {"methods": {}})
                    todo = [m for m in args.methods if args.recompute or m not in have["methods"]]
                    if not todo:
                        continue
                    r = run_problem(spec, todo)
                    r["methods"] = {**have["methods"], **r["methods"]}  # other methods' rows are kept
                    rows[key] = r
                    print(f"{key}: slice acc {r['accuracy_slice']:.2f} rest {r['accuracy_rest']:.2f} "
                          f"valid {r['valid']} " + " ".join(f"{m}={v['precision_at_10']:.1f}/{v['recall']:.2f}"
                                                            for m, v in r["methods"].items())
                          + f" ({r['seconds']}s)", file=sys.stderr, flush=True)
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps({"rows": sorted(rows.values(), key=lambda x: x["key"])},
                                                   indent=1))
    selected = [r for r in rows.values() if r["source"] in args.sources and r["kind"] in args.kinds
                and r["mode"] in args.modes and r["seed"] in args.seeds]
    report = {"rows": sorted(rows.values(), key=lambda x: x["key"]), "summary": summarise(selected, args.methods)}
    for source in args.sources:
        for mode in args.modes:
            report[f"summary_{source}_{mode}"] = summarise(
                [r for r in selected if r["source"] == source and r["mode"] == mode], args.methods)
    args.out.write_text(json.dumps(report, indent=1))
    print(markdown(report["summary"], "all sources and modes"))
    for source in args.sources:
        for mode in args.modes:
            print()
            print(markdown(report[f"summary_{source}_{mode}"], f"{source}, {mode}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
