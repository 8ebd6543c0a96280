"""Frost of ImageNet-C (Hendrycks & Dietterich 2019) as ``imagecorruptions`` 1.1.2 (Apache-2.0) defines it:
c1 x + c2 T, T a random crop of one of its frost photographs, rescaled by 1.1 x (the factor that makes it cover
the image, or 1) with bicubic interpolation (grey images: see ``frost_blend``).

The reference's photographs are not ours to ship. The registered ``frost`` therefore blends a synthetic
texture: five deterministic images (a diamond-square haze, ridged noise and motion-blurred ice needles) of the
reference photographs' sizes, each scaled to the per-channel mean and standard deviation of the photograph it
stands in for. The blending, rescaling and cropping follow the reference exactly, but the texture's shapes do
not: accuracy under the synthetic frost is not comparable with published ImageNet-C frost numbers. To use the
original photographs (or any other), load them with ``load_textures`` and build ``frost_corruption(textures)``.
(The reference draws among its first five photographs only; so does ``frost_corruption`` when given six.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ._base import Corruption
from ._ops import LUMA_IC, grey, randint, uniform
from .weather import plasma_fractal

SOURCE = "Hendrycks & Dietterich (2019), ImageNet-C; frost blend of imagecorruptions 1.1.2"
LEVELS = ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))
# (width, height), per-channel mean and std of imagecorruptions' frost1.png ... frost5.jpg (measured)
REFERENCE_STATS = (
    ((900, 600), (0.305, 0.585, 0.650), (0.106, 0.065, 0.060)),
    ((560, 315), (0.787, 0.805, 0.841), (0.084, 0.087, 0.089)),
    ((560, 315), (0.787, 0.805, 0.841), (0.084, 0.087, 0.089)),
    ((527, 350), (0.540, 0.599, 0.648), (0.112, 0.112, 0.117)),
    ((660, 495), (0.441, 0.484, 0.528), (0.174, 0.170, 0.163)),
)


def _standard(t: Tensor) -> Tensor:
    return (t - t.mean()) / t.std().clamp(min=1e-12)


def _pattern(h: int, w: int, g: torch.Generator) -> Tensor:
    """(h, w) zero-mean, unit-variance frost-like pattern."""
    like = torch.empty(0)
    haze = plasma_fractal(1, 256, 1.6, g, like)  # low-frequency: made small, then enlarged
    haze = F.interpolate(haze[None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    ridged = torch.zeros(h, w)
    for octave in (4, 8, 16, 32):
        n = uniform((1, 1, math.ceil(h / octave) + 1, math.ceil(w / octave) + 1), g, like)
        n = F.interpolate(n, scale_factor=octave, mode="bilinear", align_corners=False)[0, 0, :h, :w]
        ridged += (1 - (2 * n - 1).abs()) ** 6 * (octave / 32)
    seeds = torch.nonzero(uniform((h, w), g, like) < 0.004)  # ice needles: short Gaussian-weighted streaks
    angles = torch.tensor((-60.0, -15.0, 30.0, 75.0, 120.0)).deg2rad()[randint(5, (len(seeds),), g)]
    steps = torch.arange(-14, 15, dtype=torch.float32)
    rows = (seeds[:, :1] + torch.round(steps * angles.sin()[:, None])).long()
    cols = (seeds[:, 1:] + torch.round(steps * angles.cos()[:, None])).long()
    weight = torch.exp(-steps ** 2 / (2 * 7.0 ** 2)).expand_as(rows)
    keep = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    needles = torch.zeros(h * w).index_add_(0, (rows * w + cols)[keep], weight[keep]).view(h, w)
    return _standard(0.5 * _standard(haze) + 0.4 * _standard(ridged) + 0.8 * _standard(needles))


@lru_cache(maxsize=1)
def synthetic_textures() -> tuple[Tensor, ...]:
    """Five (3, H, W) synthetic frost textures in [0, 1] (deterministic; computed once per process)."""
    out = []
    for k, ((w, h), mean, std) in enumerate(REFERENCE_STATS):
        p = _pattern(h, w, torch.Generator().manual_seed(2019 + k))
        target_m, target_s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
        m, s = target_m.clone(), target_s.clone()
        for _ in range(4):  # offset and scale so that the statistics hold after clipping to [0, 1]
            t = (m + s * p[None]).clamp(0, 1)
            m = m + target_m - t.mean((1, 2), keepdim=True)
            s = s * target_s / t.std(dim=(1, 2), keepdim=True).clamp(min=1e-6)
        out.append((m + s * p[None]).clamp(0, 1))
    return tuple(out)


def load_textures(paths: Sequence[str | Path]) -> tuple[Tensor, ...]:
    """Frost textures from image files, as (3, H, W) RGB tensors in [0, 1]."""
    out = []
    for p in paths:
        with Image.open(p) as im:
            a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        out.append(torch.from_numpy(a).permute(2, 0, 1).contiguous())
    return tuple(out)


def rescaled(texture: Tensor, h: int, w: int) -> Tensor:
    """The texture rescaled as the reference does before cropping an h x w window (bicubic, a = -0.75)."""
    th, tw = texture.shape[-2:]
    scale = 1.0
    if th < h and tw < w:
        scale = max(h / th, w / tw)
    elif th < h:
        scale = h / th
    elif tw < w:
        scale = w / tw
    scale *= 1.1
    size = (int(np.ceil(th * scale)), int(np.ceil(tw * scale)))
    return F.interpolate(texture[None], size=size, mode="bicubic", align_corners=False)[0].clamp(0, 1)


def frost_blend(x: Tensor, c: tuple[float, float], crops: Tensor) -> Tensor:
    """c1 x + c2 crops, crops (B, 3, H, W) RGB texture windows. Grey images take the reference's grey texture:
    its luma weights applied to the channels in OpenCV's BGR order (0.2989 B + 0.587 G + 0.114 R)."""
    if x.shape[1] == 1:
        crops = grey(crops, LUMA_IC[::-1])
    return c[0] * x + c[1] * crops


def frost_with(x: Tensor, c: tuple[float, float], g: torch.Generator, scaled: Sequence[Tensor]) -> Tensor:
    """Frost from textures already ``rescaled`` to the batch's size (the reference draws among 5 at most)."""
    b, _, h, w = x.shape
    choice = randint(min(len(scaled), 5), (b,), g)
    crops = []
    for k in choice.tolist():
        t = scaled[k]
        top = int(randint(max(t.shape[1] - h, 1), (1,), g))
        left = int(randint(max(t.shape[2] - w, 1), (1,), g))
        crops.append(t[:, top:top + h, left:left + w])
    return frost_blend(x, c, torch.stack(crops).to(x))


@lru_cache(maxsize=8)
def _synthetic_scaled(h: int, w: int) -> tuple[Tensor, ...]:
    return tuple(rescaled(t, h, w) for t in synthetic_textures())


def frost(x: Tensor, c: tuple[float, float], g: torch.Generator) -> Tensor:
    return frost_with(x, c, g, _synthetic_scaled(*x.shape[-2:]))


def frost_corruption(textures: Sequence[Tensor], name: str = "frost_textured") -> Corruption:
    """A frost corruption that blends the given textures (e.g. imagecorruptions' photographs)."""
    texts = tuple(textures)

    @lru_cache(maxsize=8)
    def scaled(h: int, w: int) -> tuple[Tensor, ...]:
        return tuple(rescaled(t, h, w) for t in texts)

    def apply(x: Tensor, c: tuple[float, float], g: torch.Generator) -> Tensor:
        return frost_with(x, c, g, scaled(*x.shape[-2:]))

    return Corruption(name, "weather", apply, LEVELS, True, SOURCE, colour=True,
                      note="textures supplied by the caller")


CORRUPTIONS = (
    Corruption("frost", "weather", frost, LEVELS, True, SOURCE, colour=True,
               note="synthetic frost texture (the reference's photographs are not shipped): the blend follows "
                    "the reference, the texture does not; not comparable with published frost numbers"),
)
