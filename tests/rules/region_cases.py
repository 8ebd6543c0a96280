"""Planted cues for confounder_region's regression tests (issue 31): small shape images whose object colour
differs by class (a legitimate cue, as a real object's colour does) with one background or acquisition cue, a
tiny CNN trained on the confounded version (the cue on 97 % of the target class, 2 % of the others) and one on
the clean version (the cue on the same share of images, independent of the class: the clean twin), and an
Evidence over the confounded held-out set (the cue rides with the class, as in deployment).

Cues (on ``has`` images):
- ``bg_hue``: the background (off the object) shifted in hue (red +0.12, blue −0.12); the object keeps its colour;
- ``watermark``: a faint tiled watermark (+0.05 on a 1-px cross every 8 px) over the whole image;
- ``pixel``: a low-resolution site: the image area-downscaled by 2 and nearest-upscaled back;
- ``blurjpeg``: a soft, compressed site: Gaussian blur (sigma 0.8 px), then JPEG quality 12;
- ``bg_blur``: a soft background only (Gaussian blur, sigma 0.6 px × strength, off the object).

Models are cached under the shortcut zoo's folder (``MODEL_AUDIT_ZOO_CACHE``), keyed by the generator and the
training settings; from scratch each trains in a few seconds on two cores.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from conftest import CLASSES, PREPROCESS, TinyCNN, _shape, predictions_for, to_input
from PIL import Image
from scipy.ndimage import gaussian_filter
from torch import nn
from torch.nn import functional as F

from audit.engine.probe import ModelProbe
from audit.loading.listing import SampleRecord
from audit.products import Picks
from audit.rules.evidence import Evidence
from audit.scoring.classification import score
from audit.tasks.multiclass import MulticlassTask

VERSION = 3
CACHE = Path(os.environ.get("MODEL_AUDIT_ZOO_CACHE", "/tmp/model-audit-zoo"))
OBJECT_COLOURS = np.array([(0.78, 0.5, 0.42), (0.5, 0.74, 0.46), (0.48, 0.54, 0.8)])  # disc, square, cross


@dataclass(frozen=True)
class CueSpec:
    kind: str  # bg_hue | watermark | pixel | blurjpeg | bg_blur
    version: str = "confounded"  # confounded | clean (training data of the clean twin)
    target: int = 0
    seed: int = 0
    n_train: int = 450
    n_test: int = 180
    epochs: int = 14
    rate: float = 0.97
    leak: float = 0.02
    colour_spread: float = 0.12  # per-image noise on the object's colour: the larger, the weaker the object's cue
    strength: float = 2.0  # scales the cue (hue shift, watermark contrast)

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "v": VERSION, "torch": torch.__version__.split("+")[0]}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CueData:
    images: np.ndarray  # (N, 32, 32, 3) uint8
    labels: np.ndarray
    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1
    has: np.ndarray  # (N,) bool: carries the cue


def _jpeg(u8: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(u8, mode="RGB").save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def make(spec: CueSpec, split: str, version: str) -> CueData:
    """One split; the confounded and clean versions share every base image."""
    n = spec.n_train if split == "train" else spec.n_test
    rng = np.random.default_rng([spec.seed, 1 if split == "train" else 2])
    labels = np.arange(n) % 3
    rng.shuffle(labels)
    imgs = np.zeros((n, 32, 32, 3))
    boxes = np.zeros((n, 4), dtype=np.int64)
    obj = np.zeros((n, 32, 32), dtype=bool)
    for i in range(n):
        s = int(rng.integers(11, 16))
        x0, y0 = (int(v) for v in rng.integers(3, 32 - 3 - s + 1, 2))
        bg = 0.42 + rng.normal(0, 0.04, 3) + rng.normal(0, 0.04, (32, 32, 3))
        col = OBJECT_COLOURS[labels[i]] * rng.uniform(0.8, 1.1) + rng.normal(0, spec.colour_spread, 3)  # colour overlaps a bit
        m = _shape(int(labels[i]), s)[..., None]
        bg[y0:y0 + s, x0:x0 + s] = bg[y0:y0 + s, x0:x0 + s] * (1 - m) + m * col
        imgs[i], boxes[i] = bg, (x0, y0, x0 + s, y0 + s)
        obj[i, y0:y0 + s, x0:x0 + s] = m[..., 0] > 0
    u = np.random.default_rng([spec.seed, 1 if split == "train" else 2, 7]).random(n)
    is_t = labels == spec.target
    p = {"confounded": np.where(is_t, spec.rate, spec.leak), "swapped": np.where(is_t, spec.leak, spec.rate),
         "clean": np.full(n, (spec.rate + 2 * spec.leak) / 3)}[version]
    has = u < p
    idx = np.flatnonzero(has)
    if spec.kind == "bg_hue":
        shift = spec.strength * np.array([0.12, 0.0, -0.12])
        imgs[idx] += (~obj[idx])[..., None] * shift
    elif spec.kind == "watermark":
        mark = np.zeros((32, 32))
        mark[3::8, :] = mark[:, 3::8] = 1.0
        imgs[idx] += spec.strength * 0.05 * mark[..., None]
    elif spec.kind == "pixel":
        t = torch.from_numpy(imgs[idx]).permute(0, 3, 1, 2)
        t = F.interpolate(F.avg_pool2d(t, 2), scale_factor=2, mode="nearest")
        imgs[idx] = t.permute(0, 2, 3, 1).numpy()
    elif spec.kind == "blurjpeg":
        for i in idx:
            imgs[i] = gaussian_filter(imgs[i], sigma=(0.8, 0.8, 0))
    elif spec.kind == "bg_blur":  # a soft background (a shallow depth of field at one site); the object stays sharp
        for i in idx:
            soft = gaussian_filter(imgs[i], sigma=(spec.strength * 0.6, spec.strength * 0.6, 0))
            imgs[i] = np.where(obj[i][..., None], imgs[i], soft)
    elif spec.kind != "none":
        raise ValueError(spec.kind)
    u8 = (np.clip(imgs, 0, 1) * 255).round().astype(np.uint8)
    if spec.kind == "blurjpeg":
        for i in idx:
            u8[i] = _jpeg(u8[i], 12)
    return CueData(u8, labels.astype(np.int64), boxes, has)


def train(spec: CueSpec) -> nn.Module:
    """The tiny CNN of the shortcut zoo trained on the spec's version (cached on disk)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"cue-{spec.kind}-{spec.version}-{spec.key()}.pt"
    torch.manual_seed(spec.seed)  # before the weights are drawn: the same model in any process
    model = TinyCNN(8, 3)
    if path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    data = make(spec, "train", spec.version)
    x, y = to_input(data.images), torch.from_numpy(data.labels)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=1e-4)
    bs = 50
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=spec.epochs * ((len(x) + bs - 1) // bs))
    gen = torch.Generator().manual_seed(spec.seed)
    model.train()
    for _ in range(spec.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), bs):
            i = perm[s:s + bs]
            loss = F.cross_entropy(model(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model


def accuracy(model: nn.Module, data: CueData) -> float:
    with torch.inference_mode():
        return float((model(to_input(data.images)).argmax(1).numpy() == data.labels).mean())


def evidence(spec: CueSpec, folder: Path, seed: int = 0, rois: bool = True) -> Evidence:
    """Evidence over the confounded held-out set (PNG files, ROI boxes unless ``rois`` is false) for the model of
    ``spec``."""
    model = train(spec)
    data = make(spec, "test", "confounded")
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"s{i:04d}" for i in range(len(data.labels))]
    records = []
    for i, sid in enumerate(ids):
        path = folder / f"{i:04d}.png"
        if not path.exists():
            Image.fromarray(data.images[i], mode="RGB").save(path)
        records.append(SampleRecord(id=sid, path=path, label=int(data.labels[i]),
                                    roi_box=tuple(float(v) for v in data.boxes[i]) if rois else None, source=f"{spec.kind} #{i}"))
    x = to_input(data.images)
    preds = predictions_for(model, SimpleNamespace(labels=data.labels, site=np.full(len(ids), "a")), x, ids,
                            with_features=False)
    probe = ModelProbe.local(model, records, PREPROCESS, preds, task=MulticlassTask(CLASSES), seed=seed,
                             batch_size=256, explain_batch_size=64, dataset_mean=x.mean(0))
    return Evidence(classes=CLASSES, predictions=preds, metrics=score(preds, CLASSES, np.random.default_rng(seed)),
                    picks=Picks(overall={}, per_class={}), probe=probe, seed=seed, explainers=("gradcam",),
                    n_listed=len(ids))
