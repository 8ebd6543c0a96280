"""Image corruptions as batched tensor operations: the registry (name -> ``Corruption``) and ``corrupt``.

Inputs are (B, C, H, W) float batches in [0, 1] (before mean/std normalisation), on any device; outputs keep
shape, dtype and device and are clipped to [0, 1]. Random corruptions take an explicit ``torch.Generator``
(drawn on the generator's device, so one CPU generator gives the same output on CPU and CUDA).

Families: ImageNet-C's 15 (``IMAGENET_C``) and 4 extra (``IMAGENET_C_EXTRA``) corruptions (Hendrycks &
Dietterich 2019, as ``imagecorruptions`` defines them), acquisition ones (exposure, gamma, resolution, JPEG at
stated qualities) and TorchIO's MRI artefacts. The registry is a ``plugins.Registry`` of ``Corruption`` instances:
a new corruption is one entry in a family module's ``CORRUPTIONS`` (or a new module added to ``_FAMILIES``), one
entry point in the group ``model_audit.corruptions`` naming a ``Corruption``, or a caller's own passed as ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import torch
from torch import Tensor

from audit.plugins import Registry

from . import blur, digital, extra, frost, geometric, medical, noise, spatter, weather
from ._base import Corruption
from .frost import frost_corruption, load_textures, synthetic_textures

_FAMILIES = (noise, blur, weather, frost, digital, geometric, spatter, extra, medical)

IMAGENET_C = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
              "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
              "jpeg_compression")
IMAGENET_C_EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")

_BUILTIN: tuple[Corruption, ...] = tuple(c for module in _FAMILIES for c in module.CORRUPTIONS)
if len({c.name for c in _BUILTIN}) != len(_BUILTIN):
    raise RuntimeError("a corruption name is registered twice")

ENTRY_POINT_GROUP = "model_audit.corruptions"
REGISTRY: Registry[Corruption] = Registry(_BUILTIN, ENTRY_POINT_GROUP, "name", "robustness.corruptions.names",
                                          "corruption")
#: the built-in corruptions by name (read-only; ``registry()`` adds those of entry points)
CORRUPTIONS: Mapping[str, Corruption] = MappingProxyType({c.name: c for c in _BUILTIN})


def registry(extra: Mapping[str, Corruption] | None = None) -> dict[str, Corruption]:
    """Built-in corruptions, those third parties expose through the entry-point group, then ``extra``."""
    return REGISTRY.all(extra)


def get(name: str, extra: Mapping[str, Corruption] | None = None) -> Corruption:
    """The corruption called ``name`` (ConfigError naming ``robustness.corruptions.names`` and the known names)."""
    if not extra and name in CORRUPTIONS:  # a built-in name wins over entry points: no need to scan them
        return CORRUPTIONS[name]
    return REGISTRY.get(name, extra)


def corrupt(x: Tensor, name: str, severity: int, generator: torch.Generator | None = None,
            extra: Mapping[str, Corruption] | None = None) -> Tensor:
    """``x`` corrupted by the named corruption at ``severity`` (1-5)."""
    return get(name, extra)(x, severity, generator)


__all__ = ["CORRUPTIONS", "ENTRY_POINT_GROUP", "IMAGENET_C", "IMAGENET_C_EXTRA", "REGISTRY", "Corruption", "corrupt",
           "frost_corruption", "get", "load_textures", "registry", "synthetic_textures"]
