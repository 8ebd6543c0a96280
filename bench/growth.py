"""Growth with N: how the audit's data-side work scales, one fresh process per size.

    nice -n 10 .venv/bin/python bench/growth.py --what pass  --sizes 1000,10000,100000
    nice -n 10 .venv/bin/python bench/growth.py --what audit --sizes 1000,10000
    nice -n 10 .venv/bin/python bench/growth.py --what near  --sizes 10000,100000,1000000,10000000

pass   the model-free pass of ``datachecks.check_data`` (every check of data.checks, the data fingerprint) over a
       listing of N tiny synthetic images (32 x 32 grey PNGs: a random 6 x 6 field upsampled bicubically plus
       noise, 3 classes, a 'site' column, 1 % of the images copied under another class): wall and CPU seconds, the driver's peak RSS and its RSS after the listing
       alone, bytes read by the process (/proc/self/io rchar) against the images' bytes on disk. One decoding
       process (data.num_workers = 0) so every byte read is this process's.
audit  the whole audit (default pack, data checks on, cache off, results.json only) of the same listing with the
       tiny demo CNN (audit.demo.model, width 4, random weights) on the local engine: wall seconds per stage
       (timings.json's stages) and peak RSS.
near   the multi-index-hashing near-duplicate search (datachecks.near.near_pairs, radius 4) on N uniform 64-bit
       hashes with 1 % planted copies 0-7 bits away; the all-pairs search (the earlier method) timed where it
       takes under a minute, and checked equal there.

Prints one JSON line per size and a table with the fitted exponent between consecutive sizes (time ~ N^b); writes
bench/results/growth-<what>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
CLASSES = ("a", "b", "c")


def rchar() -> int:
    """Bytes this process has read through read() calls (page cache included), from /proc/self/io."""
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("rchar:"))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- the data set -------------------------------------------------------------------------------------------------

def write_images(root: Path, n: int, seed: int = 0) -> None:
    """``n`` 32 x 32 grey PNGs under root/img (kept between sizes: a larger N adds files)."""
    from PIL import Image

    (root / "img").mkdir(parents=True, exist_ok=True)
    have = len(list((root / "img").glob("*.png")))
    for i in range(have, n):
        g = np.random.default_rng(seed * 1_000_003 + i)
        if i % 100 == 99:  # a copy of an earlier image (filed under another class by the manifest)
            src = root / "img" / f"{i - 50:07d}.png"
            (root / "img" / f"{i:07d}.png").write_bytes(src.read_bytes())
            continue
        low = Image.fromarray((g.random((6, 6)) * 255).astype(np.uint8), mode="L").resize((32, 32), Image.BICUBIC)
        field = np.asarray(low, dtype=np.float64) / 255 + g.normal(0, 0.03, (32, 32))
        Image.fromarray((np.clip(field, 0, 1) * 255).astype(np.uint8), mode="L").save(
            root / "img" / f"{i:07d}.png", compress_level=1)


def write_setup(root: Path, n: int) -> Path:
    """Manifest and config of the first ``n`` images; the model's weights (random, seeded) once."""
    import torch
    from safetensors.torch import save_file

    from audit.demo.model import build

    write_images(root, n)
    manifest = root / f"manifest-{n}.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "site"])
        for i in range(n):
            w.writerow([f"img/{i:07d}.png", CLASSES[i % 3], "A" if (i * 7919) % 5 else "B"])
    weights = root / "weights.safetensors"
    if not weights.is_file():
        torch.manual_seed(0)
        model = build(num_classes=3, width=4)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    config = root / f"audit-{n}.toml"
    config.write_text(f"""name = "growth-{n}"
seed = 0
[model]
factory = "audit.demo.model:build"
weights = "weights.safetensors"
num_classes = 3
factory_kwargs = {{ width = 4 }}
[data]
manifest = "{manifest.name}"
classes = {json.dumps(list(CLASSES))}
image_size = [32, 32]
channels = 1
batch_size = 256
num_workers = 0
[explainers]
methods = ["gradcam"]
[rules]
pack = "default"
[views]
embeddings = []
probe_samples = 0
[report]
formats = ["json"]
""")
    return config


def image_bytes(root: Path, n: int) -> int:
    return sum((root / "img" / f"{i:07d}.png").stat().st_size for i in range(n))


# ---- children -----------------------------------------------------------------------------------------------------

def child_pass(config: Path) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from audit.config.read import load_config
    from audit.datachecks import check_data
    from audit.loading.listing import load_heldout

    cfg = load_config(config)
    base = rss_mb()
    t0 = time.perf_counter()
    hs = load_heldout(cfg)
    listed = time.perf_counter() - t0
    listing_mb = rss_mb() - base
    r0, w0, c0 = rchar(), time.perf_counter(), time.process_time()
    dc, fp = check_data(cfg, hs, CLASSES)
    wall, cpu, read = time.perf_counter() - w0, time.process_time() - c0, rchar() - r0
    assert dc is not None
    return {"n": len(hs.records), "listing_s": round(listed, 2), "listing_mb": round(listing_mb, 1),
            "pass_s": round(wall, 2), "pass_cpu_s": round(cpu, 2), "reduce_s": round(dc.seconds, 2),
            "peak_rss_mb": round(peak_mb(), 1), "rss_before_listing_mb": round(base, 1), "bytes_read": read,
            "n_cross_class": dc.n_cross_class_duplicates, "fingerprint": fp[:12]}


def child_audit(config: Path) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    import audit.api

    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as out:
        res = audit.api.run(config, overrides=["cache.enabled=false"], out=out)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    t = res.result.timings
    stages = {s["name"]: round(s["cpu_s"], 2) for s in t.as_json()["stages"]} if t is not None else {}
    return {"n": res.result.scored.predictions.n, "audit_s": round(wall, 2), "audit_cpu_s": round(cpu, 2), "peak_rss_mb": round(peak_mb(), 1),
            "verdict": res.verdict, "stages": stages}


def planted(n: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    h = g.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + g.integers(0, 2, n, dtype=np.uint64)
    k = n // 100
    src, dst = g.integers(0, n, k), g.integers(0, n, k)
    bits = g.integers(0, 64, (k, 7)).astype(np.uint64)
    use = np.arange(7)[None, :] < g.integers(0, 8, k)[:, None]
    flips = np.bitwise_or.reduce(np.where(use, np.uint64(1) << bits, np.uint64(0)), axis=1)
    h[dst] = h[src] ^ flips
    return h


def child_near(n: int) -> dict[str, Any]:
    from audit.datachecks.near import choose_blocks, near_pairs

    h = planted(n)
    base = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    i, j, _d = near_pairs(h, 4)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    out: dict[str, Any] = {"n": n, "blocks": choose_blocks(n, 4), "mih_s": round(secs, 3),
                           "mih_cpu_s": round(cpu, 3), "pairs": len(i),
                           "peak_rss_mb": round(peak_mb(), 1), "rss_hashes_mb": round(base, 1)}
    if n <= 30_000:  # all pairs (the earlier method), about 1 ns per pair here with numpy
        t0, c0 = time.perf_counter(), time.process_time()
        bi, bj = [], []
        for s in range(0, n, 1000):
            dd = np.bitwise_count(h[s:s + 1000, None] ^ h[None, :])
            a, b = np.nonzero(dd <= 4)
            keep = s + a < b
            bi.append(s + a[keep])
            bj.append(b[keep])
        out["all_pairs_s"] = round(time.perf_counter() - t0, 3)
        out["all_pairs_cpu_s"] = round(time.process_time() - c0, 3)
        bi_, bj_ = np.concatenate(bi), np.concatenate(bj)
        o = np.lexsort((bj_, bi_))
        out["equal_to_all_pairs"] = bool(np.array_equal(bi_[o], i) and np.array_equal(bj_[o], j))
    return out


# ---- the parent ----------------------------------------------------------------------------------------------------

def fitted(rows: list[dict[str, Any]], key: str) -> list[str]:
    out = []
    for a, b in itertools.pairwise(rows):
        if a.get(key) and b.get(key):
            out.append(f"{key} {a['n']:,} -> {b['n']:,}: x{b[key] / a[key]:.2f} for x{b['n'] / a['n']:.0f} N "
                       f"(exponent {math.log(b[key] / a[key]) / math.log(b['n'] / a['n']):.2f})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--what", choices=("pass", "audit", "near"), default="pass")
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "model-audit-growth-2")
    ap.add_argument("--child", default="")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    if a.child:
        doc = child_near(int(a.child)) if a.what == "near" else \
            (child_pass if a.what == "pass" else child_audit)(Path(a.child))
        print("RESULT " + json.dumps(doc))
        return
    rows = []
    for n in (int(float(s)) for s in a.sizes.split(",")):
        arg = str(n) if a.what == "near" else str(write_setup(a.workdir, n))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, __file__, "--what", a.what, "--child", arg], check=False,
                              capture_output=True,
                              text=True, env=env, cwd=a.workdir if a.what != "near" else None)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            raise SystemExit(f"size {n} failed:\n{proc.stderr[-3000:]}")
        doc = json.loads(line[7:])
        if a.what == "pass":
            doc["image_bytes"] = image_bytes(a.workdir, n)
        rows.append(doc)
        print(json.dumps(doc), flush=True)
    keys = {"pass": ("pass_cpu_s", "peak_rss_mb", "listing_mb", "bytes_read"), "audit": ("audit_cpu_s", "peak_rss_mb"),
            "near": ("mih_cpu_s", "all_pairs_cpu_s", "peak_rss_mb")}[a.what]
    for k in keys:
        for s in fitted(rows, k):
            print(s)
    out = a.out or HERE / "results" / f"growth-{a.what}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"what": a.what, "rows": rows, "loadavg": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
