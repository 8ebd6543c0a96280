"""Stage "memory": peak RSS of the scoring pass over N small vs N large demo-CNN images, each N in a fresh
subprocess (``bench/run.py --child-rss``, which calls ``child_rss``), so that neither run inherits the other's
high-water mark.

Target: peak RSS at the large N <= 1.10 x that at the small N (the scoring pass streams its batches: memory
should not grow with N).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from harness import BENCH_DIR, make_row, peak_rss_mb, rss_mb
from pipeline import DataCache, load_set, local_engine, score
from workloads import DEMO, TARGETS, Profile


def child_rss(manifest: Path, n: int, batch_size: int) -> dict:
    """Run in a fresh process: score the first ``n`` images of the demo-CNN set; RSS before / peak after."""
    torch.manual_seed(0)
    model = DEMO.build()
    hs, pre = load_set(DEMO, manifest, n)
    engine = local_engine(model, hs.classes, torch.device("cpu"), batch_size)
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    out = score(engine, hs, pre, batch_size)
    secs = time.perf_counter() - t0
    assert out.predictions.n == n
    return {"n": n, "seconds": secs, "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}


def stage_memory(p: Profile, data: DataCache, device: torch.device) -> list[dict]:
    small, large = p.memory
    manifest = data.manifest(DEMO, large)
    res = {}
    for n in (small, large):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH_DIR.parent), os.environ.get("PYTHONPATH", "")])}
        cmd = [sys.executable, str(BENCH_DIR / "run.py"), "--child-rss", str(manifest), "--child-n", str(n),
               "--threads", str(torch.get_num_threads())]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"memory child (N={n}) failed:\n{proc.stderr[-2000:]}")
        res[n] = json.loads(proc.stdout.strip().splitlines()[-1])
        # the same number seen from the parent (ru_maxrss of waited-for children is a running maximum)
        res[n]["rusage_children_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0, 1)
    rows = []
    s, lg = res[small], res[large]
    for n, r in ((small, s), (large, lg)):
        m = {"seconds": r["seconds"], "peak_rss_mb": r["peak_rss_mb"]}
        extra = {"rss_before_scoring_mb": r["rss_before_mb"],
                 "scoring_rss_growth_mb": round(r["peak_rss_mb"] - r["rss_before_mb"], 1)}
        if n == large:
            ratio = lg["peak_rss_mb"] / s["peak_rss_mb"]
            extra.update(peak_rss_ratio_vs_small=round(ratio, 3), target_max_ratio=TARGETS["memory"],
                         meets_target=bool(ratio <= TARGETS["memory"]))
        rows.append(make_row("memory", f"{DEMO.name} fresh process", f"audit.predict N={n}", n, m, **extra))
    return rows
