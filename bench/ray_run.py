"""Speed and scale of the Ray engine (compute.engine = "ray") against the local engine, timed in the same run.

    nice -n 10 .venv/bin/python bench/ray_run.py --quick                 # small N (~10 min on 2 busy cores)
    nice -n 10 .venv/bin/python bench/ray_run.py                         # + peak driver memory at 10k / 100k images
    .venv/bin/python bench/ray_run.py --stages overhead,costs            # a subset (comma-separated)

Starts a local Ray instance over this machine's CPUs (``ray.init(num_cpus=os.cpu_count())``); the Ray engine runs
``compute.concurrency`` model actors of one CPU each and decoding tasks of one CPU (on 2 cores: one actor, one
decoder). Prints a table (harness.format_table) and writes JSON (default bench/results/ray.json, git-ignored).
"speed" = local seconds / Ray seconds for the same work (> 1: Ray is faster), timed interleaved (harness.measure).

Stages:
  scoring   RayEngine.score vs LocalEngine.score over the same PNG files (demo CNN @64, two sizes): throughput
            ratio per size, and from the two sizes each engine's fixed start-up seconds and marginal s/image.
  sweep     a region sweep (confounder_region's inner loop): map_over_perturbations over N images x R regions
            (each region filled with zeros), model actors already running, vs the local engine.
  overhead  Ray's per-call costs: an empty actor call (sequential round trip, and pipelined), one-image batches
            through outputs() (Ray minus local, per batch), and Ray Data's cost per scoring batch (batch size 1
            vs 64 over the same images, Ray minus local, per extra batch).
  memory    peak driver RSS of a scoring pass over N small / N large tiny images (32x32, 10k / 100k in the full
            profile), each in a fresh process, for both engines: flat means the peak does not grow with N beyond
            the prediction table (the listing and scores the later stages need).
  costs     the cost model's local numbers (resnet18 @224 and the demo CNN @64, this machine): decode+preprocess
            s/image, scoring forward s/image, explainer s/image (Grad-CAM, saliency, Integrated Gradients 16
            steps, SmoothGrad 8 samples, occlusion 32/32 on resnet18), Ray scoring s/image for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import torch
from harness import (
    format_table,
    loadavg,
    set_threads,
    write_json,
)
from pipeline import DataCache

DEFAULT_OUT = BENCH_DIR / "results" / "ray.json"
STAGES = ("scoring", "sweep", "overhead", "memory", "costs")


from ray_setup import PROFILES
from ray_stages import child_memory, stage_costs, stage_memory, stage_overhead, stage_scoring, stage_sweep

STAGE_FNS = {"scoring": stage_scoring, "sweep": stage_sweep, "overhead": stage_overhead, "memory": stage_memory,
             "costs": stage_costs}


# ----------------------------------------------------------------------------------------------------------


def run(profile: str, out: Path | None, stages: tuple[str, ...], data_dir: Path | None, verbose: bool = True,
        raise_errors: bool = False) -> dict:
    import ray

    p = PROFILES[profile]
    root = data_dir or Path(tempfile.mkdtemp(prefix="audit-ray-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    data = DataCache(root)
    report: dict[str, Any] = {"profile": profile, "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
                              "torch": torch.__version__, "ray": None, "loadavg_start": loadavg(), "reps": p.reps,
                              "stages": {}}
    t_all = time.perf_counter()
    started = not ray.is_initialized()
    if started and any(s != "memory" for s in stages):
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    report["ray"] = ray.__version__
    try:
        for st in stages:
            if verbose:
                print(f"[{st}] ...", flush=True)
            t0 = time.perf_counter()
            try:
                rows = STAGE_FNS[st](p, data)
            except Exception as e:
                if raise_errors:
                    raise
                rows = [{"stage": st, "workload": "-", "variant": "-",
                         "error": f"{type(e).__name__}: {str(e).strip()[:300]}"}]
            report["stages"][st] = rows
            report.setdefault("stage_wall_s", {})[st] = round(time.perf_counter() - t0, 1)
            if verbose:
                print(format_table(rows).split("\n", 2)[-1], f"\n  ({time.perf_counter() - t0:.1f} s)", flush=True)
    finally:
        if started and ray.is_initialized():
            ray.shutdown()
        if data_dir is None:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    report["loadavg_end"] = loadavg()
    report["wall_s"] = round(time.perf_counter() - t_all, 1)
    if out is not None:
        write_json(report, out)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="small N")
    ap.add_argument("--profile", choices=sorted(PROFILES), default=None, help="overrides --quick")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON report (default {DEFAULT_OUT})")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES))
    ap.add_argument("--data-dir", type=Path, default=None, help="keep the synthetic images here (default: temp)")
    ap.add_argument("--threads", default="auto", help="torch CPU threads of this process (harness.set_threads)")
    ap.add_argument("--child-mem", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--child-engine", default="local", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    why = set_threads(args.threads)
    if args.child_mem is not None:
        print(json.dumps(child_memory(args.child_mem, args.child_n, args.child_engine)))
        return 0
    stages = tuple(s for s in args.stages.split(",") if s)
    unknown = set(stages) - set(STAGES)
    if unknown:
        ap.error(f"unknown stage(s): {', '.join(sorted(unknown))}")
    profile = args.profile or ("quick" if args.quick else "full")
    print(f"profile {profile}, torch {torch.__version__}, {torch.get_num_threads()} threads ({why}), "
          f"load average {loadavg()}", flush=True)
    report = run(profile, args.out, stages, args.data_dir)
    report["threads_reason"] = why
    if args.out is not None:
        write_json(report, args.out)
    rows = [r for st in report["stages"].values() for r in st]
    print("\n" + format_table(rows))
    print(f"\nwall {report['wall_s']} s, load average {report['loadavg_start']} -> {report['loadavg_end']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
