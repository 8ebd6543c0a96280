"""Stage "perturbation": ModelProbe.map_over_perturbations with k perturbations (cycling through a zeroed corner
patch, a horizontal flip, halved intensity, a shift and a 3x3 blur) vs k raw forwards of the same images.

Target: speed >= 1/1.2 (time <= 1.2 x the k raw forwards).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from harness import make_row, measure
from pipeline import DataCache, probe_for
from workloads import TARGETS, Profile, Workload


def perturbations(k: int, size: int) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    patch = max(1, size // 8)

    def corner(b: torch.Tensor) -> torch.Tensor:
        out = b.clone()
        out[..., :patch, :patch] = 0.0
        return out

    pool: list[Callable[[torch.Tensor], torch.Tensor]] = [
        corner, lambda b: b.flip(-1), lambda b: b * 0.5, lambda b: b.roll(patch, dims=-1),
        lambda b: F.avg_pool2d(b, 3, stride=1, padding=1),
    ]
    return [pool[i % len(pool)] for i in range(k)]


def stage_perturbation(p: Profile, data: DataCache, device: torch.device) -> list[dict]:
    rows = []
    for w, n, k in p.perturb:
        rows += perturb_case(w, n, k, data.manifest(w, n), p.reps, device)
    return rows


def perturb_case(w: Workload, n: int, k: int, manifest: Path, reps: int, device: torch.device,
                 bs: int = 64) -> list[dict]:
    rows = []
    model, probe = probe_for(w, manifest, n, device, {}, bs)
    x = probe.images(list(probe.predictions.ids))
    fns = perturbations(k, w.size)

    def ours() -> None:
        for fn in fns:
            probe.map_over_perturbations(x, fn)

    def k_forwards() -> None:
        with torch.inference_mode():
            for _ in range(k):
                for s in range(0, n, bs):
                    model(x[s:s + bs].to(device))

    k_forwards()  # warm-up
    probe.map_over_perturbations(x[:2], fns[0])
    m = measure({"ours": ours, "raw": k_forwards}, reps, device)
    label = f"{w.name} N={n} k={k}"
    rows.append(make_row("perturbation", label, f"{k} x raw forward", n * k, m["raw"]))
    rows.append(make_row("perturbation", label, f"map_over_perturbations x{k}", n * k, m["ours"],
                         reference=f"{k} x raw forward", ref=m["raw"], target=TARGETS["perturbation"]))
    return rows
