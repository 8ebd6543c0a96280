"""The planted-slice benchmark's models: a small CNN trained on a problem's training set, cached on disk, and
its penultimate features (the embedding slice discovery reads) and softmax outputs on the evaluation sets.

    SliceCNN   four 3x3 conv blocks (16 / 32 / 48 / 64 channels, batch norm, ReLU, two max-pools), global average
               pooling to a 64-dim feature vector, one linear layer

Training: AdamW, one-cycle schedule, batch 64, random horizontal flips only (none of the planted changes).
A trained model is cached as ``bench/results/slices/models/<source>-<kind>-<mode>-s<seed>-<key>.pt`` (the key
hashes the data spec, the training settings, this file and slices_data.py, and torch's version).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from slices_data import SliceSpec, make_set
from torch import nn

CACHE = Path(__file__).resolve().parent / "results" / "slices" / "models"
MEAN, STD = 0.5, 0.25


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 8
    lr: float = 4e-3
    batch: int = 64
    weight_decay: float = 5e-4


class SliceCNN(nn.Module):
    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2),
                                      *block(32, 48), *block(48, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def to_input(u8: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(u8).float().permute(0, 3, 1, 2) / 255.0 - MEAN) / STD


_SOURCE = hashlib.sha1(b"".join((Path(__file__).resolve().parent / f).read_bytes()
                                for f in ("slices_models.py", "slices_data.py"))).hexdigest()


def model_path(spec: SliceSpec, ts: TrainSettings) -> Path:
    blob = json.dumps({"data": asdict(spec), "train": asdict(ts), "src": _SOURCE,
                       "torch": torch.__version__.split("+")[0]}, sort_keys=True)
    key = hashlib.sha1(blob.encode()).hexdigest()[:12]
    return CACHE / f"{spec.source}-{spec.kind}-{spec.mode}-s{spec.seed}-{key}.pt"


def train(spec: SliceSpec, ts: TrainSettings) -> SliceCNN:
    data = make_set(spec, "train")
    torch.manual_seed(spec.seed)
    model = SliceCNN()
    x, y = to_input(data.images), torch.from_numpy(data.labels)
    steps = ts.epochs * ((len(x) + ts.batch - 1) // ts.batch)
    opt = torch.optim.AdamW(model.parameters(), lr=ts.lr, weight_decay=ts.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=ts.lr, total_steps=steps)
    gen = torch.Generator().manual_seed(spec.seed)
    model.train()
    for _ in range(ts.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), ts.batch):
            idx = perm[s:s + ts.batch]
            xb = x[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def load_or_train(spec: SliceSpec, ts: TrainSettings = TrainSettings()) -> tuple[SliceCNN, bool]:
    """The trained model (from the cache when there) and whether it was trained now."""
    path = model_path(spec, ts)
    if path.is_file():
        model = SliceCNN()
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval(), False
        except Exception:  # noqa: BLE001, S110 - a stale or corrupt cache entry is retrained
            pass
    model = train(spec, ts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model, True


@torch.inference_mode()
def embed(model: SliceCNN, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (N, 64) and softmax probabilities (N, 4)."""
    feats = torch.cat([model.features(to_input(images[s:s + 256])) for s in range(0, len(images), 256)])
    return feats.numpy().astype(np.float64), torch.softmax(model.fc(feats), 1).numpy().astype(np.float64)
