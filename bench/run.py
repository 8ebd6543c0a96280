"""Speed-and-scale benchmark of the audit pipeline against references measured in the same process.

    .venv/bin/python bench/run.py --quick                       # small N (~6 min on 2 busy cores)
    .venv/bin/python bench/run.py [--out bench/results/run.json]  # the full sizes (the resnet18 N=2048 scoring
                                                                 # and explainer cases dominate: an idle box)
    .venv/bin/python bench/run.py --workloads demo_cnn@64        # full sizes, demo CNN only (~10 min)

Prints a table (one row per measured variant) and writes JSON (default bench/results/run.json, git-ignored).
tests/bench/test_bench_smoke.py runs every stage with the "tiny" profile (no timing assertion).

Targets, as speed = reference seconds / pipeline seconds: scoring >= 0.9 x raw forward; explain_tensor >= 0.9 x
the bare captum call; Grad-CAM >= 2.5 x pytorch-grad-cam; map_over_perturbations >= 1/1.2 x (time <= 1.2 x) k
raw forwards; memory: peak RSS at the large N <= 1.10 x that at the small N.

Stages (every pipeline timing is paired with a reference timed in the same process, interleaved: rep r runs
the variants in an order rotated by r; the fastest rep is kept, since load from other processes only ever
adds time; medians and rep-by-rep ratios are in the JSON too):

  scoring       audit.predict.predict over PNG files + manifest.csv (written once into a temp folder) vs raw
                model(x) under inference_mode over already-decoded tensors, and vs raw model(x) with a plain
                PIL decode in the loop (splits the decode cost). resnet18 (weights=None) at 224x224 and the
                demo CNN at 64x64.
  explainers    ModelProbe.explain_tensor (and .attributions, which also decodes) for Grad-CAM, saliency,
                Integrated Gradients and occlusion vs the bare captum call on the same batch, vs one raw
                forward + backward to the input, occlusion vs (positions + 1) raw forwards, and
                pytorch-grad-cam's batched GradCAM (PyPI grad-cam) as an outside reference.
  perturbation  ModelProbe.map_over_perturbations with k perturbations vs k raw forwards.
  memory        peak RSS of scoring N small vs N large demo-CNN images, each in a fresh subprocess.
  render        write_outputs (HTML + PDF + JSON + JUnit, and HTML alone) for an AuditResult with many picks
                (run_audit of an untrained demo CNN on synthetic images); skipped with --quick.
  quantus       Quantus PointingGame / ROAD as outside references for the ROI and faithfulness rules' own
                measurements, when quantus imports; otherwise recorded as not run, with the reason. Install it
                with `.venv/bin/pip install --no-deps quantus cachetools`: a plain `pip install quantus` also
                pulls opencv-python, whose cv2/ overwrites that of grad-cam's opencv-python-headless (and
                uninstalling either one later breaks the other). Its remaining dependencies are already here.

On a busy machine (load average >= CPUs) torch's thread pool thrashes (a tiny CNN ran ~100x slower with 2
threads than with 1 on a loaded 2-core box), so --threads auto drops to one thread; the JSON says why.

"speed" in the table = reference seconds / pipeline seconds for the same images (> 1: the pipeline is faster);
targets are written in that unit. Peak RSS is the process's high-water mark during that variant (reset
through /proc/self/clear_refs where Linux allows it, else the process-lifetime peak).
Timings on a shared machine are noisy: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gc
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "run.json"
STAGES = ("scoring", "explainers", "perturbation", "memory", "render", "quantus")

# ----------------------------------------------------------------------------------------------------------
# workloads and profiles


@dataclass(frozen=True)
class Workload:
    name: str
    arch: str  # "resnet18" | "demo_cnn"
    size: int
    channels: int
    width: int = 24  # demo CNN width
    num_classes: int = 10

    @property
    def mean(self) -> tuple[float, ...]:
        return (0.485, 0.456, 0.406) if self.channels == 3 else (0.25,)

    @property
    def std(self) -> tuple[float, ...]:
        return (0.229, 0.224, 0.225) if self.channels == 3 else (0.2,)

    def build(self) -> nn.Module:
        torch.manual_seed(0)
        if self.arch == "resnet18":
            from torchvision.models import resnet18

            return resnet18(weights=None, num_classes=self.num_classes).eval()
        from audit.demo.model import build

        return build(num_classes=self.num_classes, in_channels=self.channels, width=self.width).eval()


RESNET = Workload("resnet18@224", "resnet18", 224, 3)
DEMO = Workload("demo_cnn@64", "demo_cnn", 64, 1)
TINY = Workload("tiny_cnn@32", "demo_cnn", 32, 1, width=4)


@dataclass(frozen=True)
class ExplainCase:
    workload: Workload
    batch: int  # images explained, all in one batch (the probe's explain_batch_size is set to it)
    methods: tuple[str, ...] = ("gradcam", "saliency", "integrated_gradients", "occlusion")
    options: dict[str, dict] = field(default_factory=dict)  # identical for the pipeline and the bare call


@dataclass(frozen=True)
class Profile:
    name: str
    scoring: tuple[tuple[Workload, int, int], ...]  # (workload, N, batch size)
    explain: tuple[ExplainCase, ...]
    perturb: tuple[tuple[Workload, int, int], ...]  # (workload, N, k perturbations)
    memory: tuple[int, int]  # demo CNN images: small N, large N
    render_images: int  # 0: skip the render stage
    render_pdf: bool
    render_picks: tuple[int, int]  # selection.k, selection.per_class
    quantus_images: int
    reps: int


def _opts(ig_steps: int, window: int, stride: int) -> dict[str, dict]:
    return {"integrated_gradients": {"n_steps": ig_steps, "baseline": "zeros"},
            "occlusion": {"window": window, "stride": stride, "perturbations_per_eval": 16}}


PROFILES = {
    "full": Profile(
        "full",
        scoring=((RESNET, 256, 64), (RESNET, 2048, 64), (DEMO, 2048, 128)),
        explain=(ExplainCase(RESNET, 16, options=_opts(8, 32, 32)), ExplainCase(DEMO, 64, options=_opts(16, 16, 8))),
        perturb=((RESNET, 64, 4), (DEMO, 1024, 4)),
        memory=(1000, 10000), render_images=600, render_pdf=True, render_picks=(16, 5), quantus_images=16, reps=3,
    ),
    "quick": Profile(
        "quick",
        scoring=((RESNET, 64, 64), (RESNET, 128, 64), (DEMO, 512, 128)),
        explain=(ExplainCase(RESNET, 8, ("gradcam", "saliency")),
                 ExplainCase(DEMO, 16, options=_opts(8, 16, 16))),
        perturb=((RESNET, 32, 4), (DEMO, 256, 4)),
        memory=(200, 1000), render_images=0, render_pdf=True, render_picks=(16, 4), quantus_images=8, reps=3,
    ),
    # the CI smoke test: every stage, seconds in all
    "tiny": Profile(
        "tiny",
        scoring=((TINY, 16, 8),),
        explain=(ExplainCase(TINY, 4, options=_opts(4, 16, 16)),),
        perturb=((TINY, 16, 2),),
        memory=(20, 40), render_images=12, render_pdf=False, render_picks=(2, 1), quantus_images=2, reps=1,
    ),
}

TARGETS = {  # speed = reference seconds / pipeline seconds
    "scoring": 0.9,
    "captum": 0.9,
    "pytorch_grad_cam": 2.5,
    "perturbation": 1 / 1.2,
    "memory": 1.10,  # peak RSS ratio large / small, at most
    "render_s": 10.0,  # HTML + PDF (+ JSON, JUnit) for >= 100 picks x 4 explainers, seconds, at most
}

# ----------------------------------------------------------------------------------------------------------
# measurement helpers


def _read_status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return _read_status_kb("VmHWM") is not None
    except OSError:
        return False


RESETTABLE_PEAK = _can_reset_peak()


def reset_peak_rss() -> None:
    if RESETTABLE_PEAK:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")


def peak_rss_mb() -> float:
    kb = _read_status_kb("VmHWM")
    if kb is None:  # ru_maxrss is in kB on Linux, bytes on macOS
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":
            kb //= 1024
    return kb / 1024.0


def rss_mb() -> float:
    kb = _read_status_kb("VmRSS")
    return kb / 1024.0 if kb is not None else float("nan")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(variants: dict[str, Callable[[], object]], reps: int, device: torch.device,
            min_sample_s: float = 0.25) -> dict[str, dict]:
    """Time every variant ``reps`` times, interleaved in rotated order; fastest and median seconds per call.

    After the first rep, a variant that took under ``min_sample_s`` is called several times per sample
    (timeit's autorange), so that short calls are not timed at scheduler-tick granularity.
    """
    names = list(variants)
    secs: dict[str, list[float]] = {k: [] for k in names}
    peaks: dict[str, float] = dict.fromkeys(names, 0.0)
    number: dict[str, int] = dict.fromkeys(names, 1)
    gc.collect()
    gc.freeze()  # long-lived objects (modules, torch internals) out of the collector: later collects are cheap
    for r in range(reps):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            gc.collect()
            reset_peak_rss()
            sync(device)
            t0 = time.perf_counter()
            for _ in range(number[k]):
                variants[k]()
            sync(device)
            dt = (time.perf_counter() - t0) / number[k]
            secs[k].append(dt)
            peaks[k] = max(peaks[k], peak_rss_mb())
            if r == 0 and dt < min_sample_s:
                number[k] = min(50, math.ceil(min_sample_s / max(dt, 1e-6)))
    return {k: {"seconds": min(secs[k]), "median_seconds": statistics.median(secs[k]),
                "all_seconds": [round(s, 5) for s in secs[k]], "calls_per_sample": number[k],
                "peak_rss_mb": round(peaks[k], 1)} for k in names}


def make_row(stage: str, workload: str, variant: str, n: int, m: dict, *, reference: str | None = None,
             ref: dict | None = None, target: float | None = None, note: str = "", **extra: Any) -> dict:
    s = m["seconds"]
    row: dict[str, Any] = {
        "stage": stage, "workload": workload, "variant": variant, "n_images": n,
        "seconds": round(s, 4), "all_seconds": m.get("all_seconds", [round(s, 4)]),
        "images_per_s": round(n / s, 2) if s > 0 else None,
        "ms_per_image": round(1000 * s / n, 3) if n else None,
        "peak_rss_mb": m.get("peak_rss_mb"),
        "reference": reference, "speed_vs_reference": None, "target": target, "meets_target": None,
    }
    if ref is not None:
        speed = ref["seconds"] / s
        row["speed_vs_reference"] = round(speed, 3)
        if "median_seconds" in m and "median_seconds" in ref:
            row["speed_vs_reference_median"] = round(ref["median_seconds"] / m["median_seconds"], 3)
        if len(m.get("all_seconds", [])) == len(ref.get("all_seconds", [])) > 1:  # rep-by-rep (same rep = adjacent)
            row["speed_vs_reference_paired"] = [round(a / b, 3) for a, b in zip(ref["all_seconds"], m["all_seconds"])
                                                if b > 0]
        if target is not None:
            row["meets_target"] = bool(speed >= target)
    if note:
        row["note"] = note
    row.update(extra)
    return row


# ----------------------------------------------------------------------------------------------------------
# synthetic on-disk image sets


def _synthetic_image(rng: np.random.Generator, size: int, channels: int) -> np.ndarray:
    """Smooth random colour field plus mild pixel noise (compresses like a photo-ish PNG, not like white noise)."""
    low = rng.random((max(2, size // 16), max(2, size // 16), channels)) * 255
    img = np.asarray(Image.fromarray(low.astype(np.uint8).squeeze() if channels == 1 else low.astype(np.uint8))
                     .resize((size, size), Image.BILINEAR), dtype=np.float64)
    img = img + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_image_set(folder: Path, n: int, size: int, channels: int, num_classes: int = 10, seed: int = 0,
                    roi: bool = False) -> Path:
    """``n`` PNG files (at least one per class) and manifest.csv (path,label[,ROI box,marker]); returns the
    manifest path. Labels cycle through the classes (c0, c1, ...)."""
    n = max(n, num_classes)  # the reader rejects a listing with an empty class
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"] + (["roi_x0", "roi_y0", "roi_x1", "roi_y1", "marker"] if roi else []))
        for i in range(n):
            rel = f"images/{i:05d}.png"
            arr = _synthetic_image(rng, size, channels)
            Image.fromarray(arr, mode="L" if channels == 1 else "RGB").save(folder / rel, compress_level=1)
            extra = []
            if roi:
                x0, y0 = (int(v) for v in rng.integers(0, size // 2, 2))
                extra = [x0, y0, x0 + size // 2, y0 + size // 2, "yes" if rng.random() < 0.2 else "no"]
            w.writerow([rel, f"c{i % num_classes}"] + extra)
    return manifest


def data_config(w: Workload, manifest: Path, batch_size: int = 64) -> dict:
    return {"manifest": manifest.name, "classes": [f"c{i}" for i in range(w.num_classes)],
            "image_size": [w.size, w.size], "channels": w.channels, "mean": list(w.mean), "std": list(w.std),
            "batch_size": batch_size}


def load_set(w: Workload, manifest: Path, n: int | None = None):
    """The pipeline's own reader: (HeldOutSet limited to the first n records, Preprocess)."""
    from audit.config import config_from_dict
    from audit.loading.data import load_heldout, make_preprocess

    cfg = config_from_dict({"model": {"torchvision": "resnet18"}, "data": data_config(w, manifest)},
                           base_dir=manifest.parent)
    hs = load_heldout(cfg)
    if n is not None:
        hs = dataclasses.replace(hs, records=hs.records[:n])
    return hs, make_preprocess(cfg.data)


class DataCache:
    """One image set per (size, channels), written once at the largest N any stage asks for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sets: dict[tuple[int, int], tuple[Path, int]] = {}

    def manifest(self, w: Workload, n: int) -> Path:
        key = (w.size, w.channels)
        if key not in self.sets or self.sets[key][1] < n:
            folder = self.root / f"set_{w.size}_{w.channels}"
            shutil.rmtree(folder, ignore_errors=True)
            t0 = time.perf_counter()
            self.sets[key] = (write_image_set(folder, n, w.size, w.channels, w.num_classes), n)
            print(f"  (wrote {n} {w.size}x{w.size} PNGs in {time.perf_counter() - t0:.1f} s)", flush=True)
        return self.sets[key][0]


# ----------------------------------------------------------------------------------------------------------
# stage: scoring


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
    from audit.loading.data import ImageDataset
    from audit.predict import predict

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
        predict(model, hs, pre, device, batch_size=bs, progress=False)

    import copy

    from audit.compute import Compute

    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    fast = Compute(device, torch.float16 if device.type == "cuda" else None, channels_last=True)

    def raw_channels_last() -> None:
        with torch.inference_mode():
            for s in starts:
                idx = torch.arange(s, min(n, s + bs)) % uniq
                model_cl(decoded[idx].to(device).contiguous(memory_format=torch.channels_last))

    def pipeline_fast() -> None:  # what compute.channels_last = "on" (+ autocast = "auto" on CUDA) runs
        with torch.inference_mode():
            predict(model_cl, hs, pre, device, batch_size=bs, progress=False, compute=fast)

    with torch.inference_mode():
        model(decoded[:min(bs, uniq)].to(device))  # warm-up
    predict(model, dataclasses.replace(hs, records=hs.records[:2]), pre, device, batch_size=bs, progress=False)
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


# ----------------------------------------------------------------------------------------------------------
# stage: explainers


def _probe_for(w: Workload, manifest: Path, n: int, device: torch.device, options: dict, batch: int):
    from audit.predict import predict
    from audit.probe import ModelProbe

    model = w.build().to(device)
    hs, pre = load_set(w, manifest, n)
    out = predict(model, hs, pre, device, batch_size=batch, progress=False)
    probe = ModelProbe(model=model, records=[hs.records[i] for i in out.kept_rows], preprocess=pre,
                       predictions=out.predictions, device=device, seed=0, batch_size=batch,
                       explain_batch_size=batch, explainer_options=options)
    return model, probe


def occlusion_positions(size: int, window: int, stride: int) -> int:
    win = min(window, size)
    st = min(stride, win)
    per_side = (size - win + st - 1) // st + 1  # captum: ceil((size - window) / stride) + 1
    return per_side * per_side


def stage_explainers(p: Profile, data: DataCache, device: torch.device) -> list[dict]:
    rows = []
    for case in p.explain:
        rows += explain_case(case, data.manifest(case.workload, case.batch), p.reps, device)
    return rows


def explain_case(case: ExplainCase, manifest: Path, reps: int, device: torch.device) -> list[dict]:
    from captum.attr import IntegratedGradients, LayerGradCam, Occlusion, Saliency

    from audit.explainers.layers import last_conv

    rows: list[dict] = []
    w, b, methods, opts = case.workload, case.batch, case.methods, case.options
    model, probe = _probe_for(w, manifest, b, device, opts, b)
    ids = list(probe.predictions.ids)
    x = probe.images(ids).to(device)
    t_np = probe.targets_for(ids)
    t = torch.as_tensor(t_np, dtype=torch.long, device=device)
    layer_name, layer = last_conv(model)
    size = tuple(x.shape[-2:])
    c = x.shape[1]

    def fwd_bwd() -> None:
        xi = x.detach().clone().requires_grad_(True)
        out = model(xi)
        torch.autograd.grad(out.gather(1, t.view(-1, 1)).sum(), xi)

    def forward_only() -> None:
        with torch.inference_mode():
            model(x)

    def ours(name: str) -> Callable[[], object]:
        return lambda: probe.explain_tensor(name, x, t_np)

    variants: dict[str, Callable[[], object]] = {"fwd_bwd": fwd_bwd, "forward": forward_only}
    pgc = pgc_reason = None
    if "gradcam" in methods:
        def bare_gradcam() -> None:
            cam = LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=True)
            F.interpolate(cam.detach(), size=size, mode="bilinear", align_corners=False)[:, 0].cpu().numpy()

        def ours_attributions() -> None:
            probe._attr_cache.clear()
            probe.attributions("gradcam", ids)

        variants.update(gradcam=ours("gradcam"), bare_gradcam=bare_gradcam,
                        gradcam_attributions=ours_attributions)
        try:
            from pytorch_grad_cam import GradCAM as PGCGradCAM
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

            pgc = PGCGradCAM(model=model, target_layers=[layer])
            pgc_targets = [ClassifierOutputTarget(int(v)) for v in t_np]
            variants["pytorch_grad_cam"] = lambda: pgc(input_tensor=x, targets=pgc_targets)
            # what `audit run` uses by default: the model in channels-last memory format (compute.channels_last)
            import copy

            model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
            variants["gradcam_cl"] = lambda: probe.explain_tensor("gradcam", x, t_np, model=model_cl)
        except ImportError as e:
            pgc_reason = f"pytorch_grad_cam not importable ({e}); pip install grad-cam"
    if "saliency" in methods:
        def bare_saliency() -> None:
            g = Saliency(model).attribute(x.detach().requires_grad_(True), target=t, abs=True)
            g.detach().amax(dim=1).cpu().numpy()

        variants.update(saliency=ours("saliency"), bare_saliency=bare_saliency)
    ig = {"n_steps": 32, "internal_batch_size": 16, **opts.get("integrated_gradients", {})}
    if "integrated_gradients" in methods:
        assert ig.get("baseline", "zeros") == "zeros"

        def bare_ig() -> None:
            a = IntegratedGradients(model).attribute(
                x.detach().requires_grad_(True), baselines=torch.zeros_like(x), target=t, n_steps=ig["n_steps"],
                internal_batch_size=max(ig["internal_batch_size"], x.shape[0]))
            a.detach().sum(dim=1).cpu().numpy()

        variants.update(integrated_gradients=ours("integrated_gradients"), bare_ig=bare_ig)
    oc = {"window": 16, "stride": 8, "perturbations_per_eval": 16, **opts.get("occlusion", {})}
    win, st = min(oc["window"], size[0]), min(oc["stride"], min(oc["window"], size[0]))
    ppe = oc["perturbations_per_eval"]
    n_pos = occlusion_positions(size[0], oc["window"], oc["stride"])
    if "occlusion" in methods:
        def bare_occlusion() -> None:
            with torch.no_grad():
                a = Occlusion(model).attribute(x, sliding_window_shapes=(c, win, win), strides=(c, st, st),
                                               baselines=0.0, target=t, perturbations_per_eval=ppe)
            a.mean(dim=1).cpu().numpy()

        xr = x.repeat(ppe, 1, 1, 1)

        def n_forwards() -> None:  # captum: one forward of x, then ceil(n_pos / ppe) forwards of ppe copies
            with torch.inference_mode():
                model(x)
                for s in range(0, n_pos, ppe):
                    model(xr[: x.shape[0] * min(ppe, n_pos - s)])

        variants.update(occlusion=ours("occlusion"), bare_occlusion=bare_occlusion, n_forwards=n_forwards)
    fwd_bwd()  # warm-up: first calls (explainer construction, lazy imports, allocator) on one image
    forward_only()
    for name in methods:
        probe.explain_tensor(name, x[:1], t_np[:1])
    if pgc is not None:
        pgc(input_tensor=x[:1], targets=pgc_targets[:1])
    m = measure(variants, reps, device)
    if pgc is not None:
        pgc.__exit__(None, None, None)  # removes its hooks
    model.zero_grad(set_to_none=True)
    label = f"{w.name} B={b}"
    fb = m["fwd_bwd"]
    add = rows.append
    add(make_row("explainers", label, "raw forward + backward to input", b, fb))
    add(make_row("explainers", label, "raw forward (inference_mode)", b, m["forward"]))
    if "gradcam" in methods:
        add(make_row("explainers", label, f"bare captum LayerGradCam ({layer_name})", b, m["bare_gradcam"],
                     reference="raw forward + backward to input", ref=fb))
        add(make_row("explainers", label, "gradcam explain_tensor", b, m["gradcam"],
                     reference="bare captum LayerGradCam", ref=m["bare_gradcam"], target=TARGETS["captum"]))
        add(make_row("explainers", label, "gradcam explain_tensor vs raw forward", b, m["gradcam"],
                     reference="raw forward (inference_mode)", ref=m["forward"]))
        if pgc is not None:
            add(make_row("explainers", label, "pytorch-grad-cam GradCAM (outside ref)", b,
                         m["pytorch_grad_cam"], reference="raw forward (inference_mode)", ref=m["forward"],
                         note="speed vs forward < 1/2.5 would be needed for a 2.5x margin"))
            add(make_row("explainers", label, "gradcam explain_tensor vs pytorch-grad-cam", b, m["gradcam"],
                         reference="pytorch-grad-cam GradCAM", ref=m["pytorch_grad_cam"],
                         target=TARGETS["pytorch_grad_cam"],
                         bound_if_as_fast_as_raw_forward=round(
                             m["pytorch_grad_cam"]["seconds"] / m["forward"]["seconds"], 3)))
            add(make_row("explainers", label, "gradcam explain_tensor, channels-last model vs pytorch-grad-cam", b,
                         m["gradcam_cl"], reference="pytorch-grad-cam GradCAM", ref=m["pytorch_grad_cam"],
                         target=TARGETS["pytorch_grad_cam"], note="the memory format audit run picks by default"))
        else:
            add({"stage": "explainers", "workload": label, "variant": "pytorch-grad-cam GradCAM (outside ref)",
                 "not_run": pgc_reason})
        add(make_row("explainers", label, "gradcam attributions (decode + explain)", b,
                     m["gradcam_attributions"], reference="bare captum LayerGradCam", ref=m["bare_gradcam"]))
    if "saliency" in methods:
        add(make_row("explainers", label, "bare captum Saliency", b, m["bare_saliency"],
                     reference="raw forward + backward to input", ref=fb))
        add(make_row("explainers", label, "saliency explain_tensor", b, m["saliency"],
                     reference="bare captum Saliency", ref=m["bare_saliency"], target=TARGETS["captum"]))
    if "integrated_gradients" in methods:
        add(make_row("explainers", label, "bare captum IntegratedGradients", b, m["bare_ig"],
                     reference="raw forward + backward to input", ref=fb,
                     note=f"{ig['n_steps']} path points per image"))
        add(make_row("explainers", label, f"integrated_gradients explain_tensor (n_steps={ig['n_steps']})", b,
                     m["integrated_gradients"], reference="bare captum IntegratedGradients", ref=m["bare_ig"],
                     target=TARGETS["captum"]))
    if "occlusion" in methods:
        add(make_row("explainers", label, f"{n_pos + 1} raw forwards (occlusion positions + 1)", b,
                     m["n_forwards"]))
        add(make_row("explainers", label, "bare captum Occlusion", b, m["bare_occlusion"],
                     reference=f"{n_pos + 1} raw forwards", ref=m["n_forwards"]))
        add(make_row("explainers", label, f"occlusion explain_tensor ({n_pos} positions)", b, m["occlusion"],
                     reference="bare captum Occlusion", ref=m["bare_occlusion"], target=TARGETS["captum"]))
        add(make_row("explainers", label, f"occlusion explain_tensor vs {n_pos + 1} forwards", b,
                     m["occlusion"], reference=f"{n_pos + 1} raw forwards", ref=m["n_forwards"]))
    return rows


# ----------------------------------------------------------------------------------------------------------
# stage: perturbation probes


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
    model, probe = _probe_for(w, manifest, n, device, {}, bs)
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


# ----------------------------------------------------------------------------------------------------------
# stage: memory (fresh subprocess per N)


def child_rss(manifest: Path, n: int, batch_size: int) -> dict:
    """Run in a fresh process: score the first ``n`` images of the demo-CNN set; RSS before / peak after."""
    from audit.predict import predict

    torch.manual_seed(0)
    model = DEMO.build()
    hs, pre = load_set(DEMO, manifest, n)
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    out = predict(model, hs, pre, torch.device("cpu"), batch_size=batch_size, progress=False)
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
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child-rss", str(manifest), "--child-n", str(n),
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


# ----------------------------------------------------------------------------------------------------------
# stage: report rendering


RENDER_METHODS = ("gradcam", "saliency", "guided_backprop", "gradcam_pp")  # the issue's "4 explainers"


def build_render_result(folder: Path, n: int, picks: tuple[int, int] = (16, 4)):
    """run_audit of an untrained demo CNN on ``n`` synthetic images with ROI boxes; many picks."""
    from safetensors.torch import save_file

    from audit.config import config_from_dict
    from audit.runner import run_audit

    w = DEMO
    folder.mkdir(parents=True, exist_ok=True)
    manifest = write_image_set(folder, n, w.size, w.channels, w.num_classes, seed=1, roi=True)
    model = w.build()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "weights.safetensors"))
    tree = {
        "name": "bench-render", "seed": 0, "device": "cpu",
        "model": {"factory": "audit.demo.model:build", "weights": "weights.safetensors", "num_classes": 10,
                  "factory_kwargs": {"in_channels": 1}},
        "data": {**data_config(w, manifest, 128), "subgroups": ["marker"]},
        "selection": {"k": picks[0], "per_class": picks[1]},
        "explainers": {"methods": list(RENDER_METHODS)},
    }
    cfg = config_from_dict(tree, base_dir=folder)
    t0 = time.perf_counter()
    result = run_audit(cfg)
    return result, time.perf_counter() - t0


def stage_render(p: Profile, data: DataCache, device: torch.device) -> list[dict]:
    if p.render_images <= 0:
        return [{"stage": "render", "workload": "-", "variant": "write_outputs", "not_run": "skipped with --quick"}]
    from audit.report.output import write_outputs

    folder = data.root / "render"
    result, audit_s = build_render_result(folder / "inputs", p.render_images, p.render_picks)
    n_picks = len(list(result.picks.all_ids()))
    n_maps = sum(len(e.maps.ids) for e in result.explanations if e.maps is not None)
    formats = ["html", "pdf", "json", "junit"] if p.render_pdf else ["html", "json", "junit"]
    variants = {"all": lambda: write_outputs(result, folder / "out_all", formats)}
    if p.render_pdf:
        variants["html"] = lambda: write_outputs(result, folder / "out_html", ["html"])
    m = measure(variants, max(1, min(p.reps, 2)), device)
    sizes = {f.name: f.stat().st_size for f in (folder / "out_all").iterdir()}
    label = f"{p.render_images} images, {n_picks} picks"
    return [
        make_row("render", label, "run_audit (whole pipeline, untrained demo CNN)", p.render_images,
                 {"seconds": audit_s}, note="one run, not interleaved"),
        make_row("render", label, f"write_outputs {'+'.join(formats)} (per pick)", n_picks, m["all"],
                 maps=n_maps, explainers=len(RENDER_METHODS), file_bytes=sizes,
                 target_max_seconds=TARGETS["render_s"] if n_picks >= 100 else None,
                 meets_target=bool(m["all"]["seconds"] <= TARGETS["render_s"]) if n_picks >= 100 else None),
    ] + ([make_row("render", label, "write_outputs html only (per pick)", n_picks, m["html"])] if "html" in m else [])


# ----------------------------------------------------------------------------------------------------------
# stage: Quantus outside references


def stage_quantus(p: Profile, data: DataCache, device: torch.device) -> list[dict]:
    try:
        import quantus
    except Exception as e:  # noqa: BLE001 - any import failure means "not run"
        return [{"stage": "quantus", "workload": "-", "variant": "PointingGame / ROAD",
                 "not_run": f"quantus is not importable ({type(e).__name__}: {e}); install with "
                            "`pip install --no-deps quantus cachetools` (a plain install pulls opencv-python, "
                            "which shares cv2/ with grad-cam's opencv-python-headless)"}]
    from scipy.ndimage import distance_transform_edt

    from audit.rules import faithfulness as fa  # the rule's own helpers (names may move: looked up softly)

    ranks_fn = getattr(fa, "_ranks", None) or getattr(fa, "pixel_ranks", None)
    curves_fn = getattr(fa, "perturbation_curves", None)
    if ranks_fn is None or curves_fn is None:
        return [{"stage": "quantus", "workload": "-", "variant": "PointingGame / ROAD",
                 "not_run": "audit.rules.faithfulness no longer has _ranks / perturbation_curves"}]

    w, n = DEMO, p.quantus_images
    manifest = write_image_set(data.root / "quantus", n, w.size, w.channels, w.num_classes, seed=2, roi=True)
    model = w.build().to(device)
    from audit.predict import predict
    from audit.probe import ModelProbe

    hs, pre = load_set(w, manifest, n)
    out = predict(model, hs, pre, device, batch_size=64, progress=False)
    probe = ModelProbe(model=model, records=list(hs.records), preprocess=pre, predictions=out.predictions,
                       device=device, explain_batch_size=64)
    ids = list(out.predictions.ids)
    x = probe.images(ids)
    t = probe.targets_for(ids)
    maps = probe.attributions("gradcam", ids).maps
    rois = np.stack([probe.roi(s) for s in ids])
    steps = 10

    def ours_pointing() -> None:
        pos = np.clip(maps, 0, None)
        for i in range(n):
            _ = pos[i][rois[i]].sum() / max(pos[i].sum(), 1e-12)
            r, c = np.unravel_index(int(np.argmax(pos[i])), pos[i].shape)
            _ = bool(rois[i][r, c]) or float(distance_transform_edt(~rois[i])[r, c]) <= 15.0

    def ours_deletion() -> None:
        ranks = ranks_fn(maps, np.random.default_rng(0))
        from audit.explainers._common import gaussian_blur

        curves_fn(probe, x, gaussian_blur(x, 5.0), ranks, t, steps)

    xb, yb = x.numpy(), t.astype(int)
    ab = maps[:, None].astype(np.float32)
    sb = rois[:, None].astype(np.float32)

    def q_pointing() -> None:
        quantus.PointingGame(disable_warnings=True, display_progressbar=False)(
            model=model, x_batch=xb, y_batch=yb, a_batch=ab, s_batch=sb, device=str(device))

    pct = list(range(100 // steps, 100, 100 // steps))  # 0 % would leave the input unchanged (quantus warns)

    def q_road() -> None:
        quantus.ROAD(percentages=pct, noise=0.01, disable_warnings=True, display_progressbar=False)(
            model=model, x_batch=xb, y_batch=yb, a_batch=ab, device=str(device))

    rows = []
    for name, ours, theirs, ref_name in (
        ("pointing game", ours_pointing, q_pointing, "quantus.PointingGame"),
        (f"deletion+insertion curves ({steps} steps)", ours_deletion, q_road, f"quantus.ROAD ({len(pct)} pct)"),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # quantus' parameter notices
                m = measure({"ours": ours, "theirs": theirs}, max(1, min(p.reps, 2)), device)
        except Exception as e:  # noqa: BLE001
            rows.append({"stage": "quantus", "workload": f"{w.name} N={n}", "variant": ref_name,
                         "not_run": f"{type(e).__name__}: {str(e)[:200]}"})
            continue
        rows.append(make_row("quantus", f"{w.name} N={n}", ref_name + " (outside ref)", n, m["theirs"]))
        rows.append(make_row("quantus", f"{w.name} N={n}", f"ours: {name}", n, m["ours"], reference=ref_name,
                             ref=m["theirs"], note="different algorithms; speed reference only"))
    return rows


# ----------------------------------------------------------------------------------------------------------
# driver


STAGE_FNS = {"scoring": stage_scoring, "explainers": stage_explainers, "perturbation": stage_perturbation,
             "memory": stage_memory, "render": stage_render, "quantus": stage_quantus}


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def format_table(rows: list[dict]) -> str:
    head = (f"{'stage':12s} {'workload':26s} {'variant':52s} {'img/s':>9s} {'ms/img':>9s} {'peakRSS MB':>10s} "
            f"{'speed':>7s} {'target':>7s}  ok")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "not_run" in r or "error" in r:
            what = f"not run: {r['not_run']}" if "not_run" in r else f"ERROR: {r['error']}"
            lines.append(f"{r['stage']:12s} {r['workload'][:26]:26s} {r['variant'][:52]:52s} {what}")
            continue
        target = r.get("target")
        ok = r.get("meets_target")
        if r["stage"] == "memory" and "peak_rss_ratio_vs_small" in r:
            speed, target = f"{r['peak_rss_ratio_vs_small']:.3f}r", f"<={r['target_max_ratio']:.2f}"
        else:
            speed = _fmt(r.get("speed_vs_reference"), ".3f")
            target = _fmt(target, ".2f") if target is None else f">={target:.2f}"
        lines.append(
            f"{r['stage']:12s} {r['workload'][:26]:26s} {r['variant'][:52]:52s} {_fmt(r['images_per_s'], '9.1f')} "
            f"{_fmt(r['ms_per_image'], '9.2f')} {_fmt(r['peak_rss_mb'], '10.0f')} {speed:>7s} {target:>7s}  "
            f"{'' if ok is None else ('yes' if ok else 'NO')}")
    return "\n".join(lines)


def _loadavg() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def set_threads(spec: str | int) -> str:
    """Apply ``--threads`` (a number or auto); return why that count was chosen."""
    if str(spec) != "auto":
        torch.set_num_threads(int(spec))
        return "--threads"
    load, cpus = _loadavg(), os.cpu_count() or 1
    if cpus > 1 and load is not None and load[0] >= cpus - 0.5:
        torch.set_num_threads(1)
        return f"auto: load average {load[0]:.1f} on {cpus} CPUs"
    return "auto: torch default"


def run(profile: str = "quick", out: Path | None = DEFAULT_OUT, stages: tuple[str, ...] = STAGES,
        data_dir: Path | None = None, device: str = "cpu", verbose: bool = True, raise_errors: bool = False,
        workloads: tuple[str, ...] | None = None, reps: int | None = None) -> dict:
    """Run the chosen stages; return (and write to ``out`` unless None) the JSON report.

    ``workloads`` (names such as "demo_cnn@64") keeps only those in the scoring / explainer / perturbation stages.
    """
    p = PROFILES[profile]
    if reps is not None:
        p = dataclasses.replace(p, reps=reps)
    if workloads:
        p = dataclasses.replace(
            p, scoring=tuple(e for e in p.scoring if e[0].name in workloads),
            explain=tuple(c for c in p.explain if c.workload.name in workloads),
            perturb=tuple(e for e in p.perturb if e[0].name in workloads))
    dev = torch.device(device)
    root = data_dir or Path(tempfile.mkdtemp(prefix="audit-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    data = DataCache(root)
    report: dict[str, Any] = {
        "profile": profile, "device": str(dev), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "loadavg_start": _loadavg(), "peak_rss_resettable": RESETTABLE_PEAK, "reps": p.reps,
        "workloads_filter": list(workloads) if workloads else None,
        "targets": {"scoring_speed_min": TARGETS["scoring"], "captum_speed_min": TARGETS["captum"],
                    "gradcam_vs_pytorch_grad_cam_min": TARGETS["pytorch_grad_cam"],
                    "perturbation_speed_min": round(TARGETS["perturbation"], 4),
                    "memory_peak_ratio_max": TARGETS["memory"]},
        "explain_cases": [{"workload": c.workload.name, "batch": c.batch, "methods": list(c.methods),
                           "options": c.options} for c in p.explain],
        "stages": {},
    }
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
    report["loadavg_end"] = _loadavg()
    report["wall_s"] = round(time.perf_counter() - t_all, 1)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
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
                         + ", ".join(w.name for w in (RESNET, DEMO, TINY)))
    ap.add_argument("--data-dir", type=Path, default=None, help="keep the synthetic images here (default: temp)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per variant (default: the profile's)")
    ap.add_argument("--threads", default="auto",
                    help="torch CPU threads; auto (default): 1 when the 1-minute load average shows the CPUs "
                         "busy (torch's thread pool collapses under oversubscription), else torch's choice")
    ap.add_argument("--child-rss", type=Path, default=None, help=argparse.SUPPRESS)
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
          f"load average {_loadavg()}", flush=True)
    wl = tuple(x for x in args.workloads.split(",") if x) if args.workloads else None
    report = run(profile, args.out, stages, args.data_dir, args.device, workloads=wl, reps=args.reps)
    report["threads_reason"] = threads_why
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    rows = [r for st in report["stages"].values() for r in st]
    print("\n" + format_table(rows))
    print(f"\nwall {report['wall_s']} s, load average {report['loadavg_start']} -> {report['loadavg_end']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
