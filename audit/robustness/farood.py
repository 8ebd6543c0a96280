"""Built-in far-OOD image sets, generated offline from a seed: nothing is downloaded.

- ``uniform_noise``: every value U(0, 1)
- ``gaussian_noise``: N(0.5, 0.25^2) per value, clipped to [0, 1]
- ``blank``: constant images, one random level per image and channel (grey images: one level)
- ``photos``: random square crops (a quarter to all of the shorter side) of scikit-image's bundled photographs
  (``PHOTOS``), resized with antialiasing; grey images take the luma (ITU-R 601), RGB ones replicate grey
  sources. These are natural photographs: they are far from medical, document or inspection images, but not
  out-of-distribution for a model of everyday photographs; pick the sets that are truly foreign to the task.
"""

from __future__ import annotations

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
from torch import Tensor

from audit.errors import ConfigError

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "camera",
          "moon", "coins", "brick", "grass", "gravel", "clock", "page", "text")
SETS = ("uniform_noise", "gaussian_noise", "blank", "photos")


def _photo(name: str) -> Tensor:
    a = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0
    t = torch.from_numpy(a)
    return t[None] if t.ndim == 2 else t[..., :3].permute(2, 0, 1)


def photos(n: int, channels: int, size: tuple[int, int], g: torch.Generator) -> Tensor:
    sources = [_photo(p) for p in PHOTOS]
    out = []
    pick = torch.randint(len(sources), (n,), generator=g)
    for k in pick.tolist():
        src = sources[k]
        h, w = src.shape[-2:]
        side = int(min(h, w) * (0.25 + 0.75 * float(torch.rand(1, generator=g))))
        top = int(torch.randint(h - side + 1, (1,), generator=g))
        left = int(torch.randint(w - side + 1, (1,), generator=g))
        crop = F.interpolate(src[None, :, top:top + side, left:left + side], size=size, mode="bilinear",
                             antialias=True, align_corners=False)[0]
        if channels == 1 and crop.shape[0] == 3:
            crop = (crop * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
        elif channels == 3 and crop.shape[0] == 1:
            crop = crop.expand(3, -1, -1)
        out.append(crop)
    return torch.stack(out).clamp(0, 1)


def far_ood(name: str, n: int, channels: int, size: tuple[int, int], seed: int = 0) -> Tensor:
    """``n`` images (n, channels, H, W) in [0, 1] of the named set, reproducible from ``seed``."""
    if channels not in (1, 3) and name == "photos":
        raise ConfigError(f"far-OOD set photos has 1 or 3 channels, not {channels}")
    g = torch.Generator().manual_seed(seed)
    shape = (n, channels, *size)
    if name == "uniform_noise":
        return torch.rand(shape, generator=g)
    if name == "gaussian_noise":
        return (0.5 + 0.25 * torch.randn(shape, generator=g)).clamp(0, 1)
    if name == "blank":
        return torch.rand((n, channels, 1, 1), generator=g).expand(shape).contiguous()
    if name == "photos":
        return photos(n, channels, size, g)
    raise ConfigError(f"unknown far-OOD set {name!r}; known: {', '.join(SETS)}")
