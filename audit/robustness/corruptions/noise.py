"""Noise corruptions of ImageNet-C (Hendrycks & Dietterich 2019), parameters as ``imagecorruptions`` 1.1.2
(Apache-2.0) defines them; own batched code. Noise is drawn per pixel and per channel, as the reference does.

- gaussian_noise: x + N(0, c^2)
- shot_noise: Poisson(c x) / c
- impulse_noise: salt-and-pepper (``skimage.util.random_noise(mode='s&p', amount=c)``): each value is replaced
  with probability c, by 1 or 0 with equal odds
- speckle_noise: x + x N(0, c^2)
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import Corruption
from ._ops import normal, uniform

SOURCE = "Hendrycks & Dietterich (2019), ImageNet-C; parameters of imagecorruptions 1.1.2"


def gaussian_noise(x: Tensor, c: float, g: torch.Generator) -> Tensor:
    return x + normal(tuple(x.shape), g, x, std=c)


def shot_noise(x: Tensor, c: float, g: torch.Generator) -> Tensor:
    rates = (x * c).to(g.device)
    return (torch.poisson(rates, generator=g) / c).to(x.device)


def impulse_noise(x: Tensor, amount: float, g: torch.Generator) -> Tensor:
    u = uniform(tuple(x.shape), g, x)  # u < amount / 2: salt; amount / 2 <= u < amount: pepper
    out = torch.where(u < amount / 2, torch.ones_like(x), x)
    return torch.where((u >= amount / 2) & (u < amount), torch.zeros_like(x), out)


def speckle_noise(x: Tensor, c: float, g: torch.Generator) -> Tensor:
    return x + x * normal(tuple(x.shape), g, x, std=c)


CORRUPTIONS = (
    Corruption("gaussian_noise", "noise", gaussian_noise, (0.08, 0.12, 0.18, 0.26, 0.38), True, SOURCE),
    Corruption("shot_noise", "noise", shot_noise, (60, 25, 12, 5, 3), True, SOURCE),
    Corruption("impulse_noise", "noise", impulse_noise, (0.03, 0.06, 0.09, 0.17, 0.27), True, SOURCE),
    Corruption("speckle_noise", "noise", speckle_noise, (0.15, 0.2, 0.35, 0.45, 0.6), True, SOURCE),
)
