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

from ..errors import ConfigError

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


def _channels_last_works(model: nn.Module, device: torch.device, input_shape: tuple[int, int, int]) -> bool:
    """One small forward both ways: channels-last is kept only when it runs and gives the same logits (a model
    that calls ``.view`` on conv features fails in channels-last; the audited model must not change)."""
    x = torch.zeros(2, *input_shape, device=device)
    x[1].normal_(generator=torch.Generator(device=device).manual_seed(0))
    try:
        # no_grad, not inference_mode: parameters converted under inference_mode could not take part in the
        # explainers' backward passes later
        with torch.no_grad():
            ref = model(x)
        model.to(memory_format=torch.channels_last)
        with torch.no_grad():
            got = model(x.contiguous(memory_format=torch.channels_last))
        ok = isinstance(ref, torch.Tensor) and isinstance(got, torch.Tensor) and ref.shape == got.shape and bool(
            torch.allclose(ref.float(), got.float(), rtol=1e-3, atol=1e-4))
    except Exception:  # noqa: BLE001 - any failure means "keep the default memory format"
        ok = False
    if not ok:
        model.to(memory_format=torch.contiguous_format)
    return ok


def resolve_compute(device: torch.device, autocast: str, channels_last: str, model: nn.Module,
                    input_shape: tuple[int, int, int] | None = None) -> Compute:
    """``autocast``: off | auto (fp16 on CUDA, off elsewhere) | fp16 | bf16; ``channels_last``: auto (models
    with 2-D convolutions, checked with one small forward on ``input_shape``) | on | off. Moves ``model`` to
    channels-last memory format when chosen (measured on this 2-core CPU: resnet18 forward 1.34-1.42x, the demo
    CNN 1.62x; on GPUs it is the format tensor cores want)."""
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
    eligible = _has_conv2d(model) and not isinstance(model, torch.jit.ScriptModule)
    if channels_last == "on":
        cl = eligible
        if cl:
            model.to(memory_format=torch.channels_last)
    elif channels_last == "auto":
        cl = eligible and input_shape is not None and _channels_last_works(model, device, input_shape)
    else:
        cl = False
    return Compute(device=device, autocast=dtype, channels_last=cl)
