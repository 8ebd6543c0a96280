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
import dataclasses
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import numpy as np
import torch
from harness import (
    format_table,
    loadavg,
    make_row,
    measure,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
    set_threads,
    write_json,
)
from pipeline import DataCache, data_config, local_engine
from workloads import DEMO, RESNET, TINY, Workload

DEFAULT_OUT = BENCH_DIR / "results" / "ray.json"
STAGES = ("scoring", "sweep", "overhead", "memory", "costs")


@dataclasses.dataclass(frozen=True)
class RayProfile:
    name: str
    scoring: tuple[int, int]  # demo CNN images: two sizes
    sweep: tuple[int, int]  # images, regions
    memory: tuple[int, int]  # tiny images: small N, large N
    costs_images: int
    reps: int


PROFILES = {
    "full": RayProfile("full", scoring=(1024, 4096), sweep=(256, 8), memory=(10_000, 100_000), costs_images=16,
                       reps=3),
    "quick": RayProfile("quick", scoring=(256, 1024), sweep=(64, 8), memory=(2_000, 10_000), costs_images=16,
                        reps=2),
    "tiny": RayProfile("tiny", scoring=(16, 32), sweep=(8, 2), memory=(20, 40), costs_images=2, reps=1),
}


# ----------------------------------------------------------------------------------------------------------
# engines over a synthetic set


def _factory_model(w: Workload) -> dict[str, Any]:
    if w.arch == "resnet18":
        return {"torchvision": "resnet18", "num_classes": w.num_classes}
    return {"factory": "audit.demo.model:build",
            "factory_kwargs": {"num_classes": w.num_classes, "in_channels": w.channels, "width": w.width}}


def engines_for(w: Workload, manifest: Path, n: int, batch_size: int, concurrency: int = 1):
    """(RayEngine, LocalEngine on the same model with the workers' compute settings, held-out set of n, preprocess).
    The workers rebuild the model from the config (random initial weights: they take the driver's state dict)."""
    from audit.config import config_from_dict
    from audit.engine.ray_engine import RayEngine
    from audit.loading.inputs import prepare_inputs, with_model_defaults
    from audit.loading.model import load_model

    cfg = config_from_dict({"model": _factory_model(w), "data": data_config(w, manifest, batch_size),
                            "cache": {"enabled": False}, "explainers": {"batch_size": batch_size},
                            "compute": {"engine": "ray", "concurrency": concurrency}}, base_dir=manifest.parent)
    cfg, notes = with_model_defaults(cfg)
    inputs = prepare_inputs(cfg, None, notes)
    loaded = load_model(cfg, len(inputs.classes))
    ray_engine = RayEngine.from_config(cfg, loaded, inputs)
    local = local_engine(ray_engine.model, inputs.classes, torch.device("cpu"), batch_size,
                         compute=ray_engine.worker_compute)
    hs = dataclasses.replace(inputs.heldout, records=inputs.heldout.records[:n])
    return ray_engine, local, hs, inputs.preprocess


def _score(engine, hs, pre, batch_size: int):
    from audit.engine import ScoringOptions

    return engine.score(hs, pre, ScoringOptions(batch_size=batch_size, progress=False))


def _images(hs, pre, n: int) -> torch.Tensor:
    from audit.loading.dataset import ImageDataset

    ds = ImageDataset(hs.records[:n], pre)
    return torch.stack([ds[i][1] for i in range(min(n, len(ds)))])  # type: ignore[misc]


# ----------------------------------------------------------------------------------------------------------
# stages


def stage_scoring(p: RayProfile, data: DataCache) -> list[dict]:
    w, bs = DEMO, 128
    n1, n2 = p.scoring
    manifest = data.manifest(w, n2)
    ray_engine, local, hs, pre = engines_for(w, manifest, n2, bs)
    rows, secs = [], {}
    try:
        for n in (n1, n2):
            part = dataclasses.replace(hs, records=hs.records[:n])
            _score(local, dataclasses.replace(hs, records=hs.records[:2]), pre, bs)  # warm-up
            m = measure({"local": lambda part=part: _score(local, part, pre, bs),
                         "ray": lambda part=part: _score(ray_engine, part, pre, bs)}, p.reps, torch.device("cpu"))
            secs[n] = m
            label = f"{w.name} N={n} bs={bs}"
            rows.append(make_row("ray.scoring", label, "LocalEngine.score", n, m["local"]))
            rows.append(make_row("ray.scoring", label, "RayEngine.score (1 actor + decode tasks)", n, m["ray"],
                                 reference="LocalEngine.score", ref=m["local"]))
        for eng in ("local", "ray"):
            t1, t2 = secs[n1][eng]["seconds"], secs[n2][eng]["seconds"]
            per = (t2 - t1) / (n2 - n1)
            rows.append({"stage": "ray.scoring", "workload": f"{w.name} fit", "variant": f"{eng}: fixed s + s/img",
                         "n_images": n2, "seconds": round(t2, 3), "images_per_s": round(1 / per, 1) if per > 0
                         else None, "ms_per_image": round(1000 * per, 4), "peak_rss_mb": None,
                         "fixed_seconds": round(t1 - per * n1, 3), "marginal_s_per_image": per})
    finally:
        ray_engine.close()
    return rows


def stage_sweep(p: RayProfile, data: DataCache) -> list[dict]:
    w, bs = DEMO, 64
    n, regions = p.sweep
    manifest = data.manifest(w, max(n, p.scoring[1]))
    ray_engine, local, hs, pre = engines_for(w, manifest, n, bs)
    try:
        x = _images(hs, pre, n)
        cell = w.size // 4
        masks = []
        for r in range(regions):
            m = torch.zeros(w.size, w.size)
            y0, x0 = (r // 4) * cell % w.size, (r % 4) * cell
            m[y0:y0 + cell, x0:x0 + cell] = 1.0
            masks.append(m)

        def sweep(engine) -> None:
            for m in masks:
                engine.map_over_perturbations(x, lambda b, m=m: b * (1.0 - m.to(b.device)))

        ray_engine.outputs(x[:2])  # start the model actors
        meas = measure({"local": lambda: sweep(local), "ray": lambda: sweep(ray_engine)}, p.reps,
                       torch.device("cpu"))
    finally:
        ray_engine.close()
    label = f"{w.name} N={n} x {regions} regions bs={bs}"
    return [make_row("ray.sweep", label, "local map_over_perturbations", n * regions, meas["local"]),
            make_row("ray.sweep", label, "ray map_over_perturbations (1 actor)", n * regions, meas["ray"],
                     reference="local map_over_perturbations", ref=meas["local"])]


def stage_overhead(p: RayProfile, data: DataCache) -> list[dict]:
    import ray

    w = TINY
    n = max(16, p.sweep[0])
    manifest = data.manifest(w, max(256, n))
    rows = []
    ray_engine, local, hs, pre = engines_for(w, manifest, 256, 1)
    try:
        x = _images(hs, pre, n)
        ray_engine.outputs(x[:1])
        actor = ray_engine._ensure_pool()[0]
        calls = 200

        def sequential() -> None:
            for _ in range(calls):
                ray.get(actor.where.remote())

        def pipelined() -> None:
            ray.get([actor.where.remote() for _ in range(calls)])

        m = measure({"seq": sequential, "pipe": pipelined}, p.reps, torch.device("cpu"))
        rows.append(make_row("ray.overhead", "empty actor call", "sequential round trip", calls, m["seq"],
                             note="ms_per_image = ms per call"))
        rows.append(make_row("ray.overhead", "empty actor call", f"{calls} in flight", calls, m["pipe"],
                             note="ms_per_image = ms per call"))
        m = measure({"local": lambda: local.outputs(x), "ray": lambda: ray_engine.outputs(x)}, p.reps,
                    torch.device("cpu"))
        per_batch = (m["ray"]["seconds"] - m["local"]["seconds"]) / n
        rows.append(make_row("ray.overhead", f"{w.name} {n} one-image batches", "outputs(): Ray vs local", n,
                             m["ray"], reference="local outputs()", ref=m["local"],
                             overhead_ms_per_batch=round(1000 * per_batch, 3)))
        # Ray Data: the same images in batches of 1 and of 64
        nd = 256 if p.name != "tiny" else 32
        part = dataclasses.replace(hs, records=hs.records[:nd])
        m = measure({"ray1": lambda: _score(ray_engine, part, pre, 1), "ray64": lambda: _score(ray_engine, part, pre, 64),
                     "loc1": lambda: _score(local, part, pre, 1), "loc64": lambda: _score(local, part, pre, 64)},
                    p.reps, torch.device("cpu"))
        extra = nd - -(-nd // 64)
        ray_per = (m["ray1"]["seconds"] - m["ray64"]["seconds"]) / extra
        loc_per = (m["loc1"]["seconds"] - m["loc64"]["seconds"]) / extra
        rows.append(make_row("ray.overhead", f"{w.name} N={nd}", "Ray Data scoring, batch size 1", nd, m["ray1"],
                             reference="Ray Data scoring, batch size 64", ref=m["ray64"],
                             overhead_ms_per_batch=round(1000 * (ray_per - loc_per), 3),
                             note="overhead = extra seconds per extra batch, Ray minus local"))
    finally:
        ray_engine.close()
    return rows


def child_memory(manifest: Path, n: int, engine_name: str, batch_size: int = 256) -> dict:
    """In a fresh process: list the first n images, score them with one engine; RSS before and peak during."""
    import ray

    if engine_name == "ray":
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    ray_engine, local, hs, pre = engines_for(TINY, manifest, n, batch_size)
    engine = ray_engine if engine_name == "ray" else local
    gc.collect()
    before = rss_mb()
    reset_peak_rss()
    t0 = time.perf_counter()
    out = _score(engine, hs, pre, batch_size)
    secs = time.perf_counter() - t0
    assert out.predictions.n == n
    peak = peak_rss_mb()
    table_mb = (out.predictions.probs.nbytes + out.kept_rows.nbytes) / 2**20
    ray_engine.close()
    return {"n": n, "engine": engine_name, "seconds": round(secs, 2), "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(peak, 1), "prediction_arrays_mb": round(table_mb, 2)}


def stage_memory(p: RayProfile, data: DataCache) -> list[dict]:
    small, large = p.memory
    t0 = time.perf_counter()
    manifest = data.manifest(TINY, large)
    print(f"  (image set of {large} ready after {time.perf_counter() - t0:.0f} s)", flush=True)
    res: dict[tuple[str, int], dict] = {}
    for eng in ("local", "ray"):
        for n in (small, large):
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child-mem", str(manifest), "--child-n", str(n),
                   "--child-engine", eng, "--threads", str(torch.get_num_threads())]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"memory child ({eng}, N={n}) failed:\n{proc.stderr[-2000:]}")
            res[(eng, n)] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"  {eng} N={n}: {res[(eng, n)]}", flush=True)
    rows = []
    for eng in ("local", "ray"):
        s, lg = res[(eng, small)], res[(eng, large)]
        for n, r in ((small, s), (large, lg)):
            extra: dict[str, Any] = {"rss_before_scoring_mb": r["rss_before_mb"],
                                     "scoring_rss_growth_mb": round(r["peak_rss_mb"] - r["rss_before_mb"], 1),
                                     "prediction_arrays_mb": r["prediction_arrays_mb"]}
            if n == large:
                extra.update(peak_rss_ratio_vs_small=round(lg["peak_rss_mb"] / s["peak_rss_mb"], 3),
                             target_max_ratio=1.10,
                             growth_kb_per_image=round(1024 * (lg["peak_rss_mb"] - s["peak_rss_mb"]) / (large - small),
                                                       3),
                             listing_kb_per_image=round(1024 * (lg["rss_before_mb"] - s["rss_before_mb"])
                                                        / (large - small), 3))
            rows.append(make_row("ray.memory", f"{TINY.name} fresh process", f"{eng} driver N={n}", n,
                                 {"seconds": r["seconds"], "peak_rss_mb": r["peak_rss_mb"]}, **extra))
    return rows


COST_CASES = (
    (RESNET, {"integrated_gradients": {"n_steps": 16, "baseline": "zeros"}, "smoothgrad": {"n_samples": 8},
              "occlusion": {"window": 32, "stride": 32, "perturbations_per_eval": 16}}),
    (DEMO, {"integrated_gradients": {"n_steps": 16, "baseline": "zeros"}, "smoothgrad": {"n_samples": 8},
            "occlusion": {"window": 16, "stride": 8, "perturbations_per_eval": 16}}),
)
COST_METHODS = ("gradcam", "saliency", "integrated_gradients", "smoothgrad", "occlusion")


def stage_costs(p: RayProfile, data: DataCache) -> list[dict]:
    rows = []
    for w, opts in COST_CASES:
        rows += costs_case(w, opts, p, data)
    return rows


def costs_case(w: Workload, opts: dict[str, dict], p: RayProfile, data: DataCache) -> list[dict]:
    from audit.engine.probe import ModelProbe
    from audit.loading.dataset import ImageDataset

    n = p.costs_images
    bs = min(32, n)
    manifest = data.manifest(w, max(n, 64))
    ray_engine, local, hs, pre = engines_for(w, manifest, n, bs)
    try:
        ds = ImageDataset(hs.records[:n], pre)
        x = torch.stack([ds[i][1] for i in range(n)])  # type: ignore[misc]
        targets = np.zeros(n, dtype=np.int64)
        probe = ModelProbe(engine=local, records=hs.records[:n], preprocess=pre, predictions=None,  # type: ignore
                           explainer_options=opts)
        variants = {
            "decode": lambda: [ds[i] for i in range(n)],
            "forward": lambda: local.outputs(x),
            "local_score": lambda: _score(local, hs, pre, bs),
        }
        for name in COST_METHODS:
            variants[name] = lambda name=name: probe.explain_tensor(name, x, targets)
        m = measure(variants, p.reps, torch.device("cpu"))
        m_ray = measure({"ray_score": lambda: _score(ray_engine, hs, pre, bs)}, 1, torch.device("cpu"))
    finally:
        ray_engine.close()
    label = f"{w.name} N={n}"
    rows = [make_row("ray.costs", label, "decode + preprocess", n, m["decode"]),
            make_row("ray.costs", label, f"forward (batch {bs}, scores)", n, m["forward"]),
            make_row("ray.costs", label, "LocalEngine.score", n, m["local_score"]),
            make_row("ray.costs", label, "RayEngine.score (incl. start-up)", n, m_ray["ray_score"],
                     reference="LocalEngine.score", ref=m["local_score"])]
    for name in COST_METHODS:
        rows.append(make_row("ray.costs", label, f"explain {name}", n, m[name], options=opts.get(name, {})))
    return rows


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
