"""Evidence over any small image set and model, at any size, without the runner: real photographs bundled with
scikit-image cut into crops, PNG files, records with ROI boxes, predictions, a probe (for the rules' tests that need
another size or another data family than the shape zoo of conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from skimage import data as skdata
from skimage.transform import resize
from torch import nn

from audit.engine.probe import ModelProbe
from audit.loading.listing import SampleRecord
from audit.loading.preprocess import Preprocess
from audit.products import Picks, Predictions
from audit.rules.evidence import Evidence
from audit.scoring.classification import score
from audit.tasks.multiclass import MulticlassTask

PHOTOS = ("chelsea", "coffee", "astronaut")  # one class each


def photo_crops(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random square crops (a third to a half of the photograph's shorter side) of the three photographs,
    resized to ``size`` px: uint8 (n, size, size, 3) and labels (n,) = which photograph."""
    rng = np.random.default_rng(seed)
    photos = [getattr(skdata, name)() for name in PHOTOS]
    labels = np.arange(n) % len(PHOTOS)
    out = np.empty((n, size, size, 3), np.uint8)
    for i, k in enumerate(labels):
        img = photos[k]
        side = int(rng.integers(min(img.shape[:2]) // 3, min(img.shape[:2]) // 2))
        y, x = (int(rng.integers(0, d - side)) for d in img.shape[:2])
        crop = resize(img[y:y + side, x:x + side], (size, size), anti_aliasing=True)
        out[i] = np.clip(crop * 255, 0, 255).round().astype(np.uint8)
    return out, labels.astype(np.int64)


def evidence(model: nn.Module, images: np.ndarray, labels: np.ndarray, boxes: np.ndarray | None, folder: Path,
             classes: tuple[str, ...], explainers: tuple[str, ...] = ("gradcam",), seed: int = 0) -> Evidence:
    """An Evidence for ``model`` on ``images`` (uint8, n × H × W × 3, inputs scaled to 0..1), ROI boxes optional."""
    folder.mkdir(parents=True, exist_ok=True)
    size = images.shape[1:3]
    ids = [f"p{i:04d}" for i in range(len(images))]
    records = []
    for i, sid in enumerate(ids):
        path = folder / f"{sid}.png"
        if not path.exists():
            Image.fromarray(images[i], mode="RGB").save(path)
        records.append(SampleRecord(id=sid, path=path, label=int(labels[i]), source=f"photo #{i}",
                                    roi_box=None if boxes is None else tuple(float(v) for v in boxes[i])))
    pre = Preprocess(size=(int(size[0]), int(size[1])), channels=3, mean=(0.0,) * 3, std=(1.0,) * 3)
    x = torch.from_numpy(images).float().permute(0, 3, 1, 2) / 255.0
    with torch.inference_mode():
        probs = torch.softmax(model(x).float(), 1).numpy().astype(np.float64)
    preds = Predictions(ids=np.array(ids, dtype=object), labels=labels.copy(), probs=probs,
                        metadata=pd.DataFrame(index=range(len(ids))))
    probe = ModelProbe.local(model, records, pre, preds, task=MulticlassTask(classes), seed=seed, batch_size=256,
                             explain_batch_size=64, dataset_mean=x.mean(0))
    return Evidence(classes=classes, predictions=preds, metrics=score(preds, classes, np.random.default_rng(seed)),
                    picks=Picks(overall={}, per_class={}), probe=probe, seed=seed, explainers=explainers,
                    n_listed=len(ids))
