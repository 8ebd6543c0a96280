"""The inputs every stage reads and the audit package's entry points they time.

Synthetic image sets are PNG files plus manifest.csv, written once per (size, channels) into a temp folder and
read back through the pipeline's own listing and preprocessing. The scoring pass runs in the local engine
(``audit.engine.LocalEngine.score``) and the model probe is ``audit.engine.probe.ModelProbe.local``, exactly as
``audit run`` would reach them, without the runner around them.
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch import nn
from workloads import Workload

if TYPE_CHECKING:  # the package is imported where it is used: an API that moved fails its stage, not the run
    from audit.engine import LocalEngine, PredictOutput
    from audit.engine.compute import Compute
    from audit.engine.probe import ModelProbe
    from audit.loading.listing import HeldOutSet
    from audit.loading.preprocess import Preprocess

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
    return {"manifest": manifest.name, "classes": list(w.classes), "image_size": [w.size, w.size],
            "channels": w.channels, "mean": list(w.mean), "std": list(w.std), "batch_size": batch_size}


def load_set(w: Workload, manifest: Path, n: int | None = None) -> tuple[HeldOutSet, Preprocess]:
    """The pipeline's own reader: (HeldOutSet limited to the first n records, Preprocess)."""
    from audit.config import config_from_dict
    from audit.loading.listing import load_heldout
    from audit.loading.preprocess import make_preprocess

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
# the audit package's model passes


def local_engine(model: nn.Module, classes: tuple[str, ...], device: torch.device, batch_size: int,
                 compute: Compute | None = None) -> LocalEngine:
    """The engine ``audit run`` scores through (multiclass task), with default compute settings unless given."""
    from audit.engine import LocalEngine
    from audit.engine.compute import Compute
    from audit.tasks.multiclass import MulticlassTask

    return LocalEngine(model, MulticlassTask(classes), compute or Compute(device), batch_size=batch_size,
                       explain_batch_size=batch_size)


def score(engine: LocalEngine, hs: HeldOutSet, pre: Preprocess, batch_size: int) -> PredictOutput:
    """The scoring pass over every record of ``hs``, no progress bar."""
    from audit.engine import ScoringOptions

    return engine.score(hs, pre, ScoringOptions(batch_size=batch_size, progress=False))


def probe_for(w: Workload, manifest: Path, n: int, device: torch.device, options: dict,
              batch: int) -> tuple[nn.Module, ModelProbe]:
    """The workload's model and a probe over the first ``n`` images, scored first (as in ``audit run``)."""
    from audit.engine.probe import ModelProbe
    from audit.tasks.multiclass import MulticlassTask

    model = w.build().to(device)
    hs, pre = load_set(w, manifest, n)
    out = score(local_engine(model, hs.classes, device, batch), hs, pre, batch)
    probe = ModelProbe.local(model, [hs.records[i] for i in out.kept_rows], pre, out.predictions,
                             task=MulticlassTask(hs.classes), device=device, seed=0, batch_size=batch,
                             explain_batch_size=batch, explainer_options=options)
    return model, probe
