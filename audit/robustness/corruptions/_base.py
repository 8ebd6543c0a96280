"""One corruption: a batched function of (images, parameter, generator) and its parameter at severities 1-5."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from audit.errors import ConfigError

from ._ops import check_images

Apply = Callable[[Tensor, Any, "torch.Generator | None"], Tensor]


@dataclass(frozen=True)
class Corruption:
    """A named corruption.

    ``apply(x, level, generator)`` maps a (B, C, H, W) batch in [0, 1] to a batch of the same shape, dtype and
    device, clipped to [0, 1]; ``levels[s - 1]`` is the parameter at severity ``s``. ``stochastic`` ones need a
    seeded ``torch.Generator`` (the same seed gives the same output). ``colour``: needs C in {1, 3}.
    ``source`` names the definition followed; ``note`` says where this implementation departs from it.
    """

    name: str
    family: str
    apply: Apply
    levels: tuple[Any, ...]
    stochastic: bool
    source: str
    colour: bool = False
    note: str = ""

    def __call__(self, x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
        if not 1 <= int(severity) <= len(self.levels) or int(severity) != severity:
            raise ConfigError(f"corruption {self.name}: severity must be an integer in 1..{len(self.levels)}, "
                              f"got {severity!r}")
        return self.at(x, self.levels[int(severity) - 1], generator)

    def at(self, x: Tensor, level: Any, generator: torch.Generator | None = None) -> Tensor:
        """Apply with an explicit parameter (e.g. a JPEG quality that is not one of the five levels)."""
        check_images(x, self.colour)
        if self.stochastic and generator is None:
            raise ValueError(f"corruption {self.name} is random: pass a seeded torch.Generator")
        out = self.apply(x.float(), level, generator)
        return out.clamp(0.0, 1.0).to(x.dtype)  # out of place: a user apply may return its input
