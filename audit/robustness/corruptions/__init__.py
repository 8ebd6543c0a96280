"""Image corruptions as batched tensor operations: the registry (name -> ``Corruption``) and ``corrupt``.

Inputs are (B, C, H, W) float batches in [0, 1] (before mean/std normalisation), on any device; outputs keep
shape, dtype and device and are clipped to [0, 1]. Random corruptions take an explicit ``torch.Generator``
(drawn on the generator's device, so one CPU generator gives the same output on CPU and CUDA).

Families: ImageNet-C's 15 (``IMAGENET_C``) and 4 extra (``IMAGENET_C_EXTRA``) corruptions (Hendrycks &
Dietterich 2019, as ``imagecorruptions`` defines them), acquisition ones (exposure, gamma, resolution, JPEG at
stated qualities) and TorchIO's MRI artefacts. A new corruption is one entry in a family module's
``CORRUPTIONS`` (or a new module added to ``_FAMILIES``), or ``register(Corruption(...))`` at run time.
"""

from __future__ import annotations

import torch
from torch import Tensor

from audit.errors import ConfigError

from . import blur, digital, extra, frost, geometric, medical, noise, spatter, weather
from ._base import Corruption
from .frost import frost_corruption, load_textures, synthetic_textures

_FAMILIES = (noise, blur, weather, frost, digital, geometric, spatter, extra, medical)

IMAGENET_C = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
              "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
              "jpeg_compression")
IMAGENET_C_EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")


def _collect() -> dict[str, Corruption]:
    out: dict[str, Corruption] = {}
    for module in _FAMILIES:
        for c in module.CORRUPTIONS:
            if c.name in out:
                raise RuntimeError(f"corruption {c.name} registered twice")
            out[c.name] = c
    return out


CORRUPTIONS: dict[str, Corruption] = _collect()


def register(c: Corruption) -> Corruption:
    """Add a corruption to the registry (a name may be registered once)."""
    if c.name in CORRUPTIONS:
        raise ConfigError(f"corruption {c.name} is already registered")
    CORRUPTIONS[c.name] = c
    return c


def get(name: str) -> Corruption:
    try:
        return CORRUPTIONS[name]
    except KeyError:
        raise ConfigError(f"unknown corruption {name!r}; known: {', '.join(sorted(CORRUPTIONS))}") from None


def corrupt(x: Tensor, name: str, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """``x`` corrupted by the named corruption at ``severity`` (1-5)."""
    return get(name)(x, severity, generator)


__all__ = ["CORRUPTIONS", "IMAGENET_C", "IMAGENET_C_EXTRA", "Corruption", "corrupt", "frost_corruption", "get",
           "load_textures", "register", "synthetic_textures"]
