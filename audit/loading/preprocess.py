"""Image -> normalised model input tensor, and back for display."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..config import DataConfig


@dataclass(frozen=True)
class Preprocess:
    """Image -> normalised float tensor (C, H, W). Resizing stretches to image_size (no crop), so ROI
    boxes map to input pixels by scaling."""

    size: tuple[int, int] | None
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, img: Image.Image) -> torch.Tensor:
        if self.size is not None and (img.height, img.width) != self.size:
            img = img.resize((self.size[1], self.size[0]), Image.BILINEAR)
        arr = np.asarray(img, dtype=np.float32) / 255.0
        if arr.ndim == 2:
            arr = arr[:, :, None]
        t = torch.from_numpy(arr.transpose(2, 0, 1).copy())
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return (t - mean) / std

    def unnormalize(self, x: torch.Tensor) -> np.ndarray:
        """(C,H,W) tensor -> (H,W,3) float image in [0,1] for display."""
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        img = (x.detach().cpu().float() * std + mean).clamp(0, 1).numpy().transpose(1, 2, 0)
        return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def make_preprocess(d: DataConfig) -> Preprocess:
    c = d.channels
    mean = tuple(d.mean) if d.mean else (0.0,) * c
    std = tuple(d.std) if d.std else (1.0,) * c
    if len(mean) == 1:
        mean = mean * c
    if len(std) == 1:
        std = std * c
    return Preprocess(d.image_size, c, mean, std)
