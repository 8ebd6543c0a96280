"""The embedding slice discovery reads when scoring gathered none: a model without a final nn.Linear (a fully
convolutional segmentation or inspection net) is embedded by its last convolution's output averaged over space,
one extra forward pass over the held-out set through the engine (on its workers under Ray), in memory-bounded
chunks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..engine.base import BatchContext
from ..engine.probe import ModelProbe

CHUNK_VALUES = 1 << 25  # input floats decoded at once (128 MiB)


def last_conv(model: nn.Module) -> nn.Module | None:
    """The last nn.Conv2d registered in the model (the deepest in the usual definition order), or None."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


@dataclass(frozen=True)
class PooledFeatures:
    """The batch function: the last convolution's output, averaged over its spatial positions."""

    def __call__(self, ctx: BatchContext, x: Tensor, side: Tensor | None) -> dict[str, Any]:
        conv = last_conv(ctx.model)
        assert conv is not None
        captured: list[Tensor] = []
        hook = conv.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
        try:
            with torch.inference_mode(), ctx.compute.inference():
                ctx.model(x)
        finally:
            hook.remove()
        return {"features": captured[-1].float().mean(dim=(2, 3))}


def pooled_features(probe: ModelProbe) -> tuple[np.ndarray | None, str]:
    """(N, C) pooled features of the scored samples in row order and how they were read, or (None, why not)."""
    conv = last_conv(probe.engine.model)
    if conv is None:
        return None, "the model has neither a final nn.Linear nor an nn.Conv2d whose output could embed the samples"
    ids = [str(i) for i in probe.predictions.ids]
    c = probe.preprocess.channels
    h, w = probe.input_size
    per = max(1, CHUNK_VALUES // max(c * h * w, 1))
    parts = [probe.engine.map_batches(PooledFeatures(), probe.images(ids[s:s + per]))["features"]
             for s in range(0, len(ids), per)]
    name = next(n for n, m in probe.engine.model.named_modules() if m is conv)
    return np.concatenate(parts).astype(np.float64), f"the output of {name} averaged over space"
