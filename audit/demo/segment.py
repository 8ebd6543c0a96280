"""Shapes-on-texture scenes for the segmentation example: discs and squares on a plain or a striped background,
with their class-index masks.

``context`` ties the background to the class (squares only on stripes, discs only on plain ground: the planted
context shortcut); ``independent`` draws the background at random (the clean twin's training set and a swapped
held-out copy). ``SceneNet`` is a small fully convolutional network (``train_scenenet`` trains it in about a
minute on equally bright discs and squares, so only shape or context can tell them apart); ``hand_built`` returns two
networks with fixed weights whose answers are known: one reads each pixel's brightness (clean), one decides
disc against square from the background stripes of the whole image (the context shortcut).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import nn

CLASSES = ("background", "disc", "square")
SIZE = 48
DISC_LEVEL, SQUARE_LEVEL = 0.6, 0.9  # object brightness (the clean hand-built net reads these)
Layout = Literal["context", "independent", "swapped"]


@dataclass(frozen=True)
class Scenes:
    images: np.ndarray  # (n, SIZE, SIZE) uint8
    masks: np.ndarray  # (n, SIZE, SIZE) uint8 class indices
    striped: np.ndarray  # (n,) bool: the background has stripes


def make_scenes(n: int, seed: int, layout: Layout = "context", same_level: bool = False) -> Scenes:
    """``n`` scenes of one or two objects of one class. ``same_level``: discs and squares equally bright (only
    their shape tells them apart, the harder cue the trained example must learn)."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, SIZE, SIZE), np.uint8)
    masks = np.zeros((n, SIZE, SIZE), np.uint8)
    striped = np.empty(n, bool)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for i in range(n):
        cls = 1 + i % 2
        stripes = {"context": cls == 2, "swapped": cls == 1, "independent": bool(rng.random() < 0.5)}[layout]
        ground = 0.3 + rng.normal(0, 0.02, (SIZE, SIZE))
        if stripes:
            ground += np.where((xx // 2) % 2 == 0, -0.1, 0.1)
        level = 0.75 if same_level else (DISC_LEVEL if cls == 1 else SQUARE_LEVEL)
        for _ in range(int(rng.integers(1, 3))):
            r = int(rng.integers(5, 9))
            cy, cx = (int(v) for v in rng.integers(r + 1, SIZE - r - 1, size=2))
            shape = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) if cls == 1 else \
                ((np.abs(yy - cy) <= r - 1) & (np.abs(xx - cx) <= r - 1))
            ground = np.where(shape, level + rng.normal(0, 0.02, (SIZE, SIZE)), ground)
            masks[i][shape] = cls
        images[i] = np.clip(ground * 255, 0, 255).round().astype(np.uint8)
        striped[i] = stripes
    return Scenes(images, masks, striped)


def write_scenes(root: Path, scenes: Scenes, stem: str = "img") -> Path:
    """PNG images and masks under ``root`` and a manifest (path, mask, background); returns the manifest."""
    (root / stem).mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "mask", "background"])
        for i in range(len(scenes.images)):
            img, msk = f"{stem}/{i:03d}.png", f"masks/{i:03d}.png"
            Image.fromarray(scenes.images[i], mode="L").save(root / img)
            Image.fromarray(scenes.masks[i], mode="L").save(root / msk)
            w.writerow([img, msk, "stripes" if scenes.striped[i] else "plain"])
    return manifest


class SceneNet(nn.Module):
    """A small fully convolutional network: per-pixel logits (B, 3, H, W) at the input resolution."""

    def __init__(self, num_classes: int = 3, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=4, dilation=4), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=8, dilation=8), nn.ReLU(),
        )
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_scenenet(scenes: Scenes, seed: int = 0, epochs: int = 40, width: int = 24, batch_size: int = 16,
                   lr: float = 3e-3) -> SceneNet:
    """A ``SceneNet`` trained on ``scenes`` (images scaled to 0..1 as the audit feeds them), seeded: Adam on a
    cross-entropy that weighs the ground a fifth (it outnumbers the objects about ten to one)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(scenes.images).float().div(255.0).unsqueeze(1)
    y = torch.from_numpy(scenes.masks).long()
    net = SceneNet(len(CLASSES), width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    weight = torch.tensor([0.2] + [1.0] * (len(CLASSES) - 1))
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), batch_size):
            idx = order[s:s + batch_size]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx], weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


class HandBuilt(nn.Module):
    """Fixed weights whose answer is known. ``local`` (the pixel) and ``edges`` (a horizontal difference) form
    the first layer. Clean: every class logit is linear in the pixel's brightness (background below 0.5, disc up
    to 0.75, square above), so each class's evidence is its own pixels. Context: a pixel is an object when it is
    brighter than 0.5; disc or square is decided by the mean stripe energy of the whole image, so the objects'
    evidence lies on the ground around them."""

    def __init__(self, context: bool = False, k: float = 60.0) -> None:
        super().__init__()
        self.context, self.k = context, k
        self.conv = nn.Conv2d(1, 2, 3, padding=1, padding_mode="replicate", bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0, 1, 1] = 1.0  # the pixel itself
            self.conv.weight[1, 0, 1, 1], self.conv.weight[1, 0, 1, 2] = -1.0, 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv(x)
        local = f[:, :1]
        bg = 10 - 20 * local  # background below 0.5, object above
        if not self.context:
            return torch.cat([bg, 20 * local - 10, 60 * local - 40], dim=1)  # square above 0.75
        c = f[:, 1:].abs().mean(dim=(2, 3), keepdim=True) - 0.06  # > 0 on stripes
        side = self.k * c
        obj = 20 * local - 10
        return torch.cat([bg + side.abs(), obj - side, obj + side], dim=1)


def build(num_classes: int = len(CLASSES), context: bool = False, width: int = 16, hand_built: bool = False
          ) -> nn.Module:
    """Factory for configs: ``hand_built`` gives the fixed-weight nets (three classes), else a ``SceneNet``."""
    return HandBuilt(context) if hand_built else SceneNet(num_classes, width)

