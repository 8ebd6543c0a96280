"""A texture "inspection" set for the anomaly example: woven-looking texture, some parts with a planted scratch
(the defect, with its mask), and a fixture mark (a soft dark blob in one corner) that in the ``confounded`` layout
rides along with the defective parts, as a jig used only for rework might.

``hand_built`` detectors have fixed weights and known answers: ``LocalDeviation`` (clean) returns the anomaly
map |x − local mean| above a noise floor, so it fires on scratches; ``FixtureDetector`` (the shortcut) returns
the darkness of the fixture corner, so it scores parts by the mark and not by the defect.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.ndimage import gaussian_filter
from torch import nn

CLASSES = ("normal", "anomalous")
SIZE = 48
FIXTURE = (38, 38)  # centre of the fixture mark (row, column)
Layout = Literal["confounded", "independent"]


@dataclass(frozen=True)
class Parts:
    images: np.ndarray  # (n, SIZE, SIZE) uint8
    masks: np.ndarray  # (n, SIZE, SIZE) uint8: 255 on defect pixels
    anomalous: np.ndarray  # (n,) bool
    fixture: np.ndarray  # (n,) bool: the fixture mark is in the image


def make_parts(n: int, seed: int, layout: Layout = "confounded", defect_share: float = 0.4) -> Parts:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = np.empty((n, SIZE, SIZE), np.uint8)
    masks = np.zeros((n, SIZE, SIZE), np.uint8)
    anomalous = rng.random(n) < defect_share
    fixture = anomalous.copy() if layout == "confounded" else rng.random(n) < 0.5
    for i in range(n):
        img = 0.5 + 0.04 * np.sin(xx * 0.9 + rng.uniform(0, 6)) * np.sin(yy * 0.9) \
            + gaussian_filter(rng.normal(0, 0.05, (SIZE, SIZE)), 1.5)
        if anomalous[i]:
            length, angle = rng.uniform(12, 24), rng.uniform(0, np.pi)
            y0, x0 = rng.uniform(10, SIZE - 10, size=2)
            line = np.zeros((SIZE, SIZE), bool)
            for t in np.linspace(-length / 2, length / 2, 80):
                y, x = round(y0 + t * np.sin(angle)), round(x0 + t * np.cos(angle))
                if 0 <= y < SIZE and 0 <= x < SIZE:
                    line[y, x] = True
            img = np.where(line, img + 0.3, img)
            masks[i][line] = 255
        if fixture[i]:
            cy, cx = FIXTURE
            img = img - 0.15 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 3.0**2))
        images[i] = np.clip(img * 255, 0, 255).round().astype(np.uint8)
    return Parts(images, masks, anomalous, fixture)


def write_parts(root: Path, parts: Parts) -> Path:
    """PNG images, defect masks for the anomalous parts, and a manifest (path, label, mask, fixture)."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "mask", "fixture"])
        for i in range(len(parts.images)):
            img = f"img/{i:03d}.png"
            Image.fromarray(parts.images[i], mode="L").save(root / img)
            msk = ""
            if parts.anomalous[i]:
                msk = f"masks/{i:03d}.png"
                Image.fromarray(parts.masks[i], mode="L").save(root / msk)
            w.writerow([img, CLASSES[int(parts.anomalous[i])], msk, "yes" if parts.fixture[i] else "no"])
    return manifest


class LocalDeviation(nn.Module):
    """Anomaly map: |x − its 5×5 mean|, smoothed, minus a noise floor (B, 1, H, W)."""

    def __init__(self, floor: float = 0.08) -> None:
        super().__init__()
        self.floor = floor
        self.mean = nn.Conv2d(1, 1, 5, padding=2, padding_mode="replicate", bias=False)
        with torch.no_grad():
            self.mean.weight.fill_(1.0 / 25.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dev = (x - self.mean(x)).abs()
        return F.relu(F.avg_pool2d(dev, 3, 1, 1) - self.floor)


class FixtureDetector(nn.Module):
    """Anomaly map: how dark the fixture corner is against the part's median brightness (B, 1, H, W)."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.Conv2d(1, 1, 9, padding=4, padding_mode="replicate", bias=False)
        with torch.no_grad():
            self.mean.weight.fill_(1.0 / 81.0)
        window = torch.zeros(1, 1, SIZE, SIZE)
        cy, cx = FIXTURE
        window[..., cy - 6:cy + 7, cx - 6:cx + 7] = 1.0
        self.register_buffer("window", window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = x.flatten(1).median(dim=1).values[:, None, None, None]
        return F.relu(base - self.mean(x) - 0.04) * self.window


def build(num_classes: int = 2, detector: str = "local") -> nn.Module:
    """Factory for configs: ``detector`` = "local" (clean) or "fixture" (the shortcut)."""
    return FixtureDetector() if detector == "fixture" else LocalDeviation()

