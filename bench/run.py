"""Speed-and-scale benchmark of the audit pipeline against references measured in the same process.

    .venv/bin/python bench/run.py --quick                       # small N (~6 min on 2 busy cores)
    .venv/bin/python bench/run.py [--out bench/results/run.json]  # the full sizes (the resnet18 N=2048 scoring
                                                                 # and explainer cases dominate: an idle box)
    .venv/bin/python bench/run.py --workloads demo_cnn@64        # full sizes, demo CNN only (~10 min)
    .venv/bin/python bench/run.py --quick --stages perturbation  # one stage (comma-separated list)

Prints a table (one row per measured variant) and writes JSON (default bench/results/run.json, git-ignored).
tests/bench/test_bench_smoke.py runs every stage with the "tiny" profile (no timing assertion).

Targets, as speed = reference seconds / pipeline seconds: scoring >= 0.9 x raw forward; explain_tensor >= 0.9 x
the bare captum call; Grad-CAM >= 2.5 x pytorch-grad-cam; map_over_perturbations >= 1/1.2 x (time <= 1.2 x) k
raw forwards; memory: peak RSS at the large N <= 1.10 x that at the small N; render: HTML + PDF (+ JSON, JUnit)
for >= 100 picks x 4 explainers in <= 10 s.

Stages, one module each in bench/ (its docstring says what it compares); every pipeline timing is paired with
a reference timed in the same process, interleaved: rep r runs the variants in an order rotated by r; the
fastest rep is kept, since load from other processes only ever adds time; medians and rep-by-rep ratios are in
the JSON too (bench/harness.py):

  scoring       scoring.py: the engine's scoring pass over PNG files + manifest.csv vs raw model(x) over
                decoded tensors and with a plain PIL decode; channels-last and autocast. resnet18 at 224x224
                and the demo CNN at 64x64.
  explainers    explainers_stage.py: ModelProbe.explain_tensor / .attributions for Grad-CAM, saliency,
                Integrated Gradients and occlusion vs the bare captum calls, raw forwards (+ backward), and
                pytorch-grad-cam as an outside reference.
  perturbation  perturbation.py: ModelProbe.map_over_perturbations with k perturbations vs k raw forwards.
  memory        memory.py: peak RSS of scoring N small vs N large demo-CNN images, each in a fresh subprocess.
  render        render.py: write_outputs (HTML + PDF + JSON + JUnit, and HTML alone) for an AuditResult with
                many picks (run_audit of an untrained demo CNN); skipped with --quick.
  quantus       quantus_refs.py: Quantus PointingGame / ROAD as outside references, when quantus imports
                (`.venv/bin/pip install --no-deps quantus cachetools`; see there why --no-deps); otherwise
                recorded as not run, with the reason.

Shared: workloads.py (workloads, profiles full / quick / tiny, targets), pipeline.py (synthetic image sets, the
audit package's scoring pass and model probe), harness.py (timing, RSS, rows, table, threads, JSON).
bench/explainers.py is a separate script (ms per image of every registered explainer), not a stage.

On a busy machine (load average >= CPUs) torch's thread pool thrashes (a tiny CNN ran ~100x slower with 2
threads than with 1 on a loaded 2-core box), so --threads auto drops to one thread; the JSON says why.

"speed" in the table = reference seconds / pipeline seconds for the same images (> 1: the pipeline is faster);
targets are written in that unit. Peak RSS is the process's high-water mark during that variant (reset
through /proc/self/clear_refs where Linux allows it, else the process-lifetime peak).
Timings on a shared machine are noisy: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# bench/ is not a package: its modules import each other by name. Run as a script, this folder is already
# sys.path[0]; loaded from a file path (the smoke test), it is not.
BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import torch
from explainers_stage import stage_explainers
from harness import DEFAULT_OUT, format_table, loadavg, new_report, set_threads, write_json
from memory import child_rss, stage_memory
from perturbation import stage_perturbation
from pipeline import DataCache
from quantus_refs import stage_quantus
from render import stage_render
from scoring import stage_scoring
from workloads import PROFILES, WORKLOADS, select_profile

STAGE_FNS = {"scoring": stage_scoring, "explainers": stage_explainers, "perturbation": stage_perturbation,
             "memory": stage_memory, "render": stage_render, "quantus": stage_quantus}
STAGES = tuple(STAGE_FNS)


def run(profile: str = "quick", out: Path | None = DEFAULT_OUT, stages: tuple[str, ...] = STAGES,
        data_dir: Path | None = None, device: str = "cpu", verbose: bool = True, raise_errors: bool = False,
        workloads: tuple[str, ...] | None = None, reps: int | None = None) -> dict:
    """Run the chosen stages; return (and write to ``out`` unless None) the JSON report.

    ``workloads`` (names such as "demo_cnn@64") keeps only those in the scoring / explainer / perturbation stages.
    A stage that raises becomes one error row (or, with ``raise_errors``, stops the run).
    """
    p = select_profile(profile, reps, workloads)
    dev = torch.device(device)
    root = data_dir or Path(tempfile.mkdtemp(prefix="audit-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    data = DataCache(root)
    report: dict[str, Any] = new_report(profile, p, dev, workloads)
    t_all = time.perf_counter()
    try:
        for st in stages:
            if verbose:
                print(f"[{st}] ...", flush=True)
            t0 = time.perf_counter()
            try:
                rows = STAGE_FNS[st](p, data, dev)
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
        if data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    report["loadavg_end"] = loadavg()
    report["wall_s"] = round(time.perf_counter() - t_all, 1)
    if out is not None:
        write_json(report, out)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="small N; skips the render stage")
    ap.add_argument("--profile", choices=sorted(PROFILES), default=None, help="overrides --quick (tiny: CI smoke)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON report (default {DEFAULT_OUT})")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES))
    ap.add_argument("--workloads", default=None,
                    help="comma-separated workload names to keep in scoring/explainers/perturbation: "
                         + ", ".join(w.name for w in WORKLOADS))
    ap.add_argument("--data-dir", type=Path, default=None, help="keep the synthetic images here (default: temp)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per variant (default: the profile's)")
    ap.add_argument("--threads", default="auto",
                    help="torch CPU threads; auto (default): 1 when the 1-minute load average shows the CPUs "
                         "busy (torch's thread pool collapses under oversubscription), else torch's choice")
    ap.add_argument("--child-rss", type=Path, default=None, help=argparse.SUPPRESS)  # the memory stage's child
    ap.add_argument("--child-n", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    threads_why = set_threads(args.threads)
    if args.child_rss is not None:
        print(json.dumps(child_rss(args.child_rss, args.child_n, 128)))
        return 0
    stages = tuple(s for s in args.stages.split(",") if s)
    unknown = set(stages) - set(STAGES)
    if unknown:
        ap.error(f"unknown stage(s): {', '.join(sorted(unknown))}")
    profile = args.profile or ("quick" if args.quick else "full")
    print(f"profile {profile}, torch {torch.__version__}, {torch.get_num_threads()} threads ({threads_why}), "
          f"load average {loadavg()}", flush=True)
    wl = tuple(x for x in args.workloads.split(",") if x) if args.workloads else None
    report = run(profile, args.out, stages, args.data_dir, args.device, workloads=wl, reps=args.reps)
    report["threads_reason"] = threads_why
    if args.out is not None:
        write_json(report, args.out)
    rows = [r for st in report["stages"].values() for r in st]
    print("\n" + format_table(rows))
    print(f"\nwall {report['wall_s']} s, load average {report['loadavg_start']} -> {report['loadavg_end']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
