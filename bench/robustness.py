"""Robustness primitives (issue 26) against their references, timed in one process, interleaved (harness.measure).

1. Corruptions: ``audit.robustness`` on a batch vs ``imagecorruptions`` image by image (its native uint8 HxWxC
   arrays through its corruption functions, truncated to uint8 as its ``corrupt()`` does), severity 3, CPU.
   The reference is loaded through tests/robustness/references.py (it needs three names that newer NumPy,
   scikit-image and setuptools dropped). Target: total speed >= 5x.
2. PGD (L-inf, 10 steps) vs torchattacks.PGD on resnet18 (torchvision, random weights) at 224 px, labels = the
   model's own clean predictions (so both attack every sample). Both produce robust accuracy: torchattacks'
   adversarial images then one forward pass on them; ours is given the clean predictions (the audit's scoring
   pass has them) and reads each iterate's prediction from its own forward passes. Target: speed >= 0.9x.
3. Per-image cost on resnet18 at 224 px: forward, forward + input gradient, a corruption (mean over the 19),
   PGD-10, APGD-CE-10, and the OOD pass (logits + penultimate features).

On a machine other jobs load, wall-clock ratios swing by +-30 %; ``--clock cpu`` times each variant by this
process's CPU time instead (one thread, so CPU time is the work done), interleaved and min-of-reps as
harness.measure does.

Usage: python bench/robustness.py [--quick] [--size 224] [--n 16] [--reps 3] [--threads auto] [--clock wall|cpu]
       [--stages corruptions,pgd,cost] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchattacks
import torchvision
from harness import format_table, make_row, measure, set_threads
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "robustness"))
from references import corruptions as reference_corruptions
from references import frost_files

from audit.robustness import APGDConfig, PGDConfig, apgd, model_outputs, pgd
from audit.robustness.corruptions import CORRUPTIONS, IMAGENET_C, IMAGENET_C_EXTRA, frost

TARGET_CORRUPTIONS = 5.0
TARGET_PGD = 0.9
CLOCK = {"cpu": False}


def timed(variants: dict[str, Callable[[], object]], reps: int, device: torch.device) -> dict[str, dict]:
    """harness.measure, or with ``--clock cpu`` the same rotation timed by process CPU time."""
    if not CLOCK["cpu"]:
        return measure(variants, reps, device)
    secs: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(reps):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.process_time()
            variants[k]()
            secs[k].append(time.process_time() - t0)
    return {k: {"seconds": min(v), "median_seconds": statistics.median(v), "all_seconds": [round(t, 5) for t in v],
                "peak_rss_mb": None} for k, v in secs.items()}


def photos(n: int, size: int) -> np.ndarray:
    """n uint8 (size, size, 3) crops of scikit-image's photographs."""
    from skimage import data, transform  # bench-only

    srcs = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    out = []
    for k in range(n):
        p = srcs[k % len(srcs)]
        h, w = p.shape[:2]
        side = min(h, w) - 40
        y0, x0 = (k * 13) % (h - side), (k * 29) % (w - side)
        out.append((transform.resize(p[y0:y0 + side, x0:x0 + side], (size, size), anti_aliasing=True) * 255)
                   .astype(np.uint8))
    return np.stack(out)


def corruption_rows(n: int, size: int, reps: int) -> list[dict]:
    ic = reference_corruptions()
    imgs = photos(n, size)
    pils = [Image.fromarray(a) for a in imgs]
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    textured = frost.frost_corruption(frost.load_textures(frost_files()))
    frost.synthetic_textures()  # built once per process, outside the timing
    rows, ours_total, ref_total = [], 0.0, 0.0
    for name in IMAGENET_C + IMAGENET_C_EXTRA:
        c = textured if name == "frost" else CORRUPTIONS[name]
        fn = getattr(ic, name)

        def ours(c=c) -> None:
            c(x, 3, torch.Generator().manual_seed(0))

        def ref(fn=fn) -> None:
            for p in pils:
                np.uint8(np.clip(np.asarray(fn(p, 3), dtype=np.float64), 0, 255))

        m = timed({"ours": ours, "ref": ref}, reps, torch.device("cpu"))
        ours_total += m["ours"]["seconds"]
        ref_total += m["ref"]["seconds"]
        rows.append(make_row("corruption", f"{name} {size}px", "audit.robustness (batched)", n, m["ours"],
                             reference="imagecorruptions per image", ref=m["ref"], target=TARGET_CORRUPTIONS))
    total = {"seconds": ours_total}
    rows.append(make_row("corruption", f"all 19 {size}px", "audit.robustness (batched)", n * 19, total,
                         reference="imagecorruptions per image", ref={"seconds": ref_total},
                         target=TARGET_CORRUPTIONS))
    return rows


def resnet(device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval().to(device)


def pgd_rows(n: int, reps: int, device: torch.device) -> list[dict]:
    model = resnet(device)
    x = torch.rand(n, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        y = model(x).argmax(1)
    eps, steps = 4 / 255, 10
    cfg = PGDConfig(eps, "linf", steps)
    ta = torchattacks.PGD(model, eps=eps, alpha=cfg.alpha, steps=steps)

    correct = torch.ones_like(y, dtype=torch.bool)

    def ours() -> None:
        pgd(model, x, y, cfg, torch.Generator().manual_seed(0), clean_correct=correct)

    def ref() -> None:
        adv = ta(x, y)
        with torch.no_grad():
            (model(adv).argmax(1) == y).float().mean()

    m = timed({"ours": ours, "ref": ref}, reps, device)
    return [make_row("pgd", "resnet18 224px", f"audit.robustness.pgd linf {steps} steps", n, m["ours"],
                     reference="torchattacks.PGD", ref=m["ref"], target=TARGET_PGD)]


def cost_rows(n: int, reps: int, device: torch.device, corruption_ms: float) -> list[dict]:
    model = resnet(device)
    x = torch.rand(n, 3, 224, 224, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.no_grad():
        y = model(x).argmax(1)
    correct = torch.ones_like(y, dtype=torch.bool)  # labels are the clean predictions

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def forward_backward() -> None:
        xg = x.clone().requires_grad_(True)
        torch.autograd.grad(torch.nn.functional.cross_entropy(model(xg), y), xg)

    variants = {
        "forward": forward,
        "forward + input gradient": forward_backward,
        "PGD linf 10 steps": lambda: pgd(model, x, y, PGDConfig(4 / 255, "linf", 10), torch.Generator().manual_seed(0),
                                         clean_correct=correct),
        "APGD-CE linf 10 steps": lambda: apgd(model, x, y, APGDConfig(4 / 255, "linf", 10),
                                              torch.Generator().manual_seed(0), clean_correct=correct),
        "OOD pass (logits + features)": lambda: model_outputs(model, model.fc, x, batch_size=n),
    }
    m = timed(variants, reps, device)
    rows = [make_row("cost", "resnet18 224px", k, n, v) for k, v in m.items()]
    rows.append({"stage": "cost", "workload": "resnet18 224px", "variant": "corruption (mean of 19, batched)",
                 "n_images": n, "ms_per_image": round(corruption_ms, 3), "images_per_s": round(1000 / corruption_ms, 2),
                 "seconds": None, "peak_rss_mb": None, "speed_vs_reference": None, "target": None,
                 "meets_target": None})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="64 px corruptions, 8 images, 2 reps")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pgd-n", type=int, default=8)
    ap.add_argument("--threads", default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--stages", default="corruptions,pgd,cost", help="comma-separated subset")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    if a.quick:
        a.size, a.n, a.reps, a.pgd_n = 64, 8, 2, 4
    CLOCK["cpu"] = a.clock == "cpu"
    why = set_threads(1 if CLOCK["cpu"] else a.threads)
    device = torch.device(a.device)
    print(f"threads {torch.get_num_threads()} ({why}); clock {a.clock}; corruptions {a.n} x {a.size}px; "
          f"device {device}")
    stages = set(a.stages.split(","))
    rows: list[dict] = []
    per_image_224 = float("nan")
    if "corruptions" in stages:
        rows += corruption_rows(a.n, a.size, a.reps)
        if a.size == 224:
            per_image_224 = statistics.mean(r["ms_per_image"] for r in rows[:-1])
    if "pgd" in stages:
        rows += pgd_rows(a.pgd_n, a.reps, device)
    if "cost" in stages:
        rows += cost_rows(a.pgd_n, a.reps, device, per_image_224)
    print(format_table(rows))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"threads": torch.get_num_threads(), "clock": a.clock, "rows": rows}, indent=2)
                         + "\n")


if __name__ == "__main__":
    main()
