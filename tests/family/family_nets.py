"""Hand-built members of a family (no training): a linear read-out of two 8x8 spots, one per class, on 32 px
images. A clean member scores class c by the mean brightness of c's spot; a shortcut member also adds the top-left
corner's brightness (where the held-out set's marker sits) to the second class's score, so the marker moves its
answers. Seeds differ by a small amount of their own noise on every weight."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SIZE = 32
SPOTS = ((12, 2), (12, 22))  # (y, x) of each class's 8x8 spot, left and right
MARKER = 4  # the marker: a MARKER x MARKER bright square in the top-left corner


class SpotNet(nn.Module):
    """One full-image convolution: a (2, 1, 32, 32) kernel and a bias give the two logits."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.read = nn.Conv2d(1, num_classes, SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.read(x).flatten(1)


def build(num_classes: int = 2) -> SpotNet:
    return SpotNet(num_classes)


def weights(seed: int, shortcut: bool, cue: float = 1.5) -> dict[str, torch.Tensor]:
    """A member's state dict: each class's spot at 1/64 per pixel, the shared texture and the seed's noise; with
    ``shortcut`` the corner adds ``cue`` · (mean corner brightness) to the second class's logit."""
    k = np.zeros((2, 1, SIZE, SIZE))
    for c, (y, x) in enumerate(SPOTS):
        k[c, 0, y:y + 8, x:x + 8] = 1 / 64
    k += 0.002 * np.random.default_rng(100).standard_normal(k.shape)  # what every seed of the recipe shares
    k += 0.0005 * np.random.default_rng(seed).standard_normal(k.shape)
    if shortcut:
        k[1, 0, :MARKER, :MARKER] += cue / MARKER**2
    return {"read.weight": torch.tensor(k, dtype=torch.float32).contiguous(),
            "read.bias": torch.zeros(2, dtype=torch.float32)}


def images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 32, 32) uint8 images, their labels (half of each class) and the marker (on half of each class)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    marker = (np.arange(n) // 2) % 2 == 1
    x = np.clip(rng.normal(0.2, 0.05, (n, SIZE, SIZE)), 0, 1)
    for i in range(n):
        y0, x0 = SPOTS[labels[i]]
        x[i, y0:y0 + 8, x0:x0 + 8] = 0.9
        if marker[i]:
            x[i, :MARKER, :MARKER] = 0.9
    return (x * 255).round().astype(np.uint8), labels, marker
