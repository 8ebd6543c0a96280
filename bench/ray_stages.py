"""The Ray benchmark's stages (scoring, sweep, overhead, memory, costs; see bench/ray_run.py for what each
measures). Each takes a profile and the data cache and returns table rows."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import numpy as np
import torch
from harness import (
    make_row,
    measure,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
)
from pipeline import DataCache
from ray_setup import RayProfile, engines_for, images_of, score_with
from workloads import DEMO, RESNET, TINY, Workload

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
            score_with(local, dataclasses.replace(hs, records=hs.records[:2]), pre, bs)  # warm-up
            m = measure({"local": lambda part=part: score_with(local, part, pre, bs),
                         "ray": lambda part=part: score_with(ray_engine, part, pre, bs)}, p.reps, torch.device("cpu"))
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
        x = images_of(hs, pre, n)
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
        x = images_of(hs, pre, n)
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
        m = measure({"ray1": lambda: score_with(ray_engine, part, pre, 1), "ray64": lambda: score_with(ray_engine, part, pre, 64),
                     "loc1": lambda: score_with(local, part, pre, 1), "loc64": lambda: score_with(local, part, pre, 64)},
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
    out = score_with(engine, hs, pre, batch_size)
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
            cmd = [sys.executable, str(BENCH_DIR / "ray_run.py"), "--child-mem", str(manifest), "--child-n", str(n),
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
            "local_score": lambda: score_with(local, hs, pre, bs),
        }
        for name in COST_METHODS:
            variants[name] = lambda name=name: probe.explain_tensor(name, x, targets)
        m = measure(variants, p.reps, torch.device("cpu"))
        m_ray = measure({"ray_score": lambda: score_with(ray_engine, hs, pre, bs)}, 1, torch.device("cpu"))
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
