"""Stage "scoring": the scoring pass against raw forwards.

The pipeline's scoring pass (``LocalEngine.score`` over PNG files + manifest.csv, written once into a temp
folder; the rows keep their historical label "audit.predict") vs raw model(x) under inference_mode over
already-decoded tensors, and vs raw model(x) with a plain PIL decode in the loop (splits the decode cost).
Also raw model(x) in channels-last memory format vs contiguous, and the scoring pass with the compute settings
``compute.channels_last = "on"`` and ``compute.autocast = "auto"`` resolve to (fp16 autocast on CUDA only) vs
the defaults. resnet18 (weights=None) at 224x224 and the demo CNN at 64x64.

Target: speed >= 0.9 x raw forward (both references).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import torch
from harness import make_row, measure
from PIL import Image
from pipeline import DataCache, load_set, local_engine, score
from workloads import TARGETS, Profile, Workload


def _decode_plain(path: Path, channels: int, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    with Image.open(path) as im:
        img = im.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    t = torch.from_numpy(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
    return (t - mean) / std


def stage_scoring(p: Profile, data: DataCache, device: torch.device) -> list[dict]:
    rows = []
    for w, n, bs in p.scoring:
        manifest = data.manifest(w, max(n2 for w2, n2, _ in p.scoring if w2 == w))
        rows += scoring_case(w, n, bs, manifest, p.reps, device)
    return rows


def scoring_case(w: Workload, n: int, bs: int, manifest: Path, reps: int, device: torch.device) -> list[dict]:
    from audit.engine.compute import resolve_compute
    from audit.loading.dataset import ImageDataset

    rows = []
    model = w.build().to(device)
    hs, pre = load_set(w, manifest, n)
    # already-decoded inputs: the pipeline's own preprocessing, at most 256 distinct images reused cyclically
    uniq = min(n, 256)
    ds = ImageDataset(hs.records[:uniq], pre)
    decoded = torch.stack([ds[i][1] for i in range(uniq)])  # type: ignore[misc]
    starts = list(range(0, n, bs))
    mean = torch.tensor(w.mean).view(-1, 1, 1)
    std = torch.tensor(w.std).view(-1, 1, 1)
    paths = [r.path for r in hs.records]
    engine = local_engine(model, hs.classes, device, bs)

    def raw_decoded() -> None:
        with torch.inference_mode():
            for s in starts:
                idx = torch.arange(s, min(n, s + bs)) % uniq
                model(decoded[idx].to(device))

    def raw_with_decode() -> None:
        with torch.inference_mode():
            for s in starts:
                x = torch.stack([_decode_plain(pp, w.channels, mean, std) for pp in paths[s:s + bs]])
                model(x.to(device))

    def pipeline() -> None:
        score(engine, hs, pre, bs)

    # what compute.channels_last = "on" (+ autocast = "auto": fp16 on CUDA) resolves to; moves model_cl to
    # channels-last memory format
    model_cl = copy.deepcopy(model)
    fast = resolve_compute(device, "auto", "on", model_cl)
    engine_fast = local_engine(model_cl, hs.classes, device, bs, compute=fast)

    def raw_channels_last() -> None:
        with torch.inference_mode():
            for s in starts:
                idx = torch.arange(s, min(n, s + bs)) % uniq
                model_cl(decoded[idx].to(device).contiguous(memory_format=torch.channels_last))

    def pipeline_fast() -> None:
        with torch.inference_mode():
            score(engine_fast, hs, pre, bs)

    with torch.inference_mode():
        model(decoded[:min(bs, uniq)].to(device))  # warm-up
    score(engine, dataclasses.replace(hs, records=hs.records[:2]), pre, bs)
    m = measure({"pipeline": pipeline, "raw": raw_decoded, "raw_decode": raw_with_decode,
                 "raw_cl": raw_channels_last, "pipeline_fast": pipeline_fast}, reps, device)
    label = f"{w.name} N={n}"
    rows.append(make_row("scoring", label, "raw model(x), decoded tensors", n, m["raw"]))
    rows.append(make_row("scoring", label, "raw model(x) + PIL decode", n, m["raw_decode"]))
    rows.append(make_row("scoring", label, "audit.predict vs raw+decode", n, m["pipeline"],
                         reference="raw model(x) + PIL decode", ref=m["raw_decode"], target=TARGETS["scoring"]))
    rows.append(make_row("scoring", label, "audit.predict vs raw decoded", n, m["pipeline"],
                         reference="raw model(x), decoded tensors", ref=m["raw"], target=TARGETS["scoring"],
                         decode_share=round(1 - m["raw"]["seconds"] / m["raw_decode"]["seconds"], 3)))
    rows.append(make_row("scoring", label, "raw model(x) channels-last vs contiguous", n, m["raw_cl"],
                         reference="raw model(x), decoded tensors", ref=m["raw"],
                         note="> 1: channels-last helps on this device"))
    rows.append(make_row("scoring", label, f"audit.predict {fast.describe()['autocast']} autocast, channels-last",
                         n, m["pipeline_fast"], reference="audit.predict (defaults)", ref=m["pipeline"]))
    return rows
