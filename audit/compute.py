"""How inference runs on the device: autocast and memory format, resolved once per audit.

Only inference-mode forward passes (scoring, counterfactual probes, deletion curves) use autocast; explainers
always run in float32, because gradients in half precision are unreliable. Autocast changes probabilities in
the third or fourth decimal and can flip a borderline prediction, so it is off unless asked for; the report
records what was used.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ConfigError

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Compute:
    device: torch.device
    autocast: torch.dtype | None = None
    channels_last: bool = False

    def inference(self) -> AbstractContextManager:
        """Context for inference forward passes (autocast when configured)."""
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def describe(self) -> dict[str, object]:
        return {"device": str(self.device), "autocast": str(self.autocast).removeprefix("torch.") if self.autocast
                else "off", "channels_last": self.channels_last}


def _has_conv2d(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def resolve_compute(device: torch.device, autocast: str, channels_last: str, model: nn.Module) -> Compute:
    """``autocast``: off | auto (fp16 on CUDA, off elsewhere) | fp16 | bf16; ``channels_last``: auto (CUDA and
    a model with 2-D convolutions) | on | off. Moves ``model`` to channels-last memory format when chosen."""
    if autocast == "auto":
        dtype = torch.float16 if device.type == "cuda" else None
    elif autocast == "off":
        dtype = None
    elif autocast in _DTYPES:
        dtype = _DTYPES[autocast]
        if device.type == "cpu" and dtype == torch.float16:
            raise ConfigError("compute.autocast: 'fp16' autocast is not supported on the CPU; use 'bf16' or 'off'")
    else:
        raise ConfigError(f"compute.autocast: unknown value {autocast!r}")
    is_script = isinstance(model, torch.jit.ScriptModule)
    cl = (channels_last == "on" or (channels_last == "auto" and device.type == "cuda")) and _has_conv2d(model) \
        and not is_script
    if cl:
        model.to(memory_format=torch.channels_last)
    return Compute(device=device, autocast=dtype, channels_last=cl)
