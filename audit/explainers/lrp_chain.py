"""Recording a model's forward pass as a plain chain of leaf modules, for LRP.

LRP needs to know how every value was computed. Here that is known only when the forward pass applies
leaf modules one after another, each once, each consuming exactly the previous one's output (up to a
reshape such as ``torch.flatten``). Residual additions, concatenations, functional activations between
modules and modules reused within one pass break that and are reported with the layer's name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ExplainerError
from .layers import require_hooks

LINEAR = (nn.Conv2d, nn.Linear)
POOL = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)
PASS = (nn.ReLU, nn.Flatten, nn.Dropout, nn.Dropout2d, nn.Identity)
SUPPORTED = LINEAR + POOL + BATCHNORM + PASS


@dataclass(frozen=True)
class Step:
    """One leaf module call: its name, the module, and copies of its input and output."""

    name: str
    module: nn.Module
    input: torch.Tensor
    output: torch.Tensor


def leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]


def check_supported(model: nn.Module) -> None:
    """Static check: every leaf has a rule, no known residual block, no padded convolutions but zero padding."""
    require_hooks(model)
    for name, m in model.named_modules():
        if type(m).__name__ in {"BasicBlock", "Bottleneck", "InvertedResidual"}:
            raise ExplainerError(
                f"LRP: layer {name!r} is a residual block ({type(m).__name__}); the skip addition has no "
                "LRP rule here (only plain chains of conv/linear/ReLU/pool/batchnorm layers)"
            )
    for name, m in leaves(model):
        if not isinstance(m, SUPPORTED):
            raise ExplainerError(
                f"LRP: layer {name!r} ({type(m).__name__}) has no LRP rule here; supported: "
                + ", ".join(t.__name__ for t in SUPPORTED)
            )
        if isinstance(m, nn.Conv2d) and m.padding_mode != "zeros":
            raise ExplainerError(f"LRP: convolution {name!r} pads with {m.padding_mode!r}; only zero padding")


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.numel() == b.numel() and torch.equal(a.reshape(-1), b.reshape(-1))


def trace(model: nn.Module, inputs: torch.Tensor) -> tuple[list[Step], torch.Tensor]:
    """Run the model once, recording each leaf call; raise ExplainerError unless it is a plain chain."""
    check_supported(model)
    records: list[list] = []
    handles = []

    def pre(name: str):
        def hook(m: nn.Module, args: tuple) -> None:
            records.append([name, m, args[0].detach().clone() if args else None, None])

        return hook

    def post(_m: nn.Module, _args: tuple, out: torch.Tensor) -> None:
        records[-1][3] = out.detach().clone() if isinstance(out, torch.Tensor) else None

    try:
        for name, m in leaves(model):
            handles.append(m.register_forward_pre_hook(pre(name)))
            handles.append(m.register_forward_hook(post))
        with torch.no_grad():
            logits = model(inputs)
    finally:
        for h in handles:
            h.remove()
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise ExplainerError("LRP: the model output is not one (B, classes) tensor")
    return _validate(records, inputs, logits), logits


def _validate(records: list[list], inputs: torch.Tensor, logits: torch.Tensor) -> list[Step]:
    if not records:
        raise ExplainerError("LRP: the forward pass called no module")
    calls: Counter[str] = Counter()
    prev_name, prev_out = "the model input", inputs
    for name, _m, inp, out in records:
        calls[name] += 1
        if calls[name] > 1:
            raise ExplainerError(
                f"LRP: layer {name!r} runs more than once in one forward pass (a reused module, as in "
                "residual blocks); LRP here needs each layer applied once in a plain chain"
            )
        if inp is None or out is None:
            raise ExplainerError(f"LRP: layer {name!r} does not map one tensor to one tensor")
        if not _same(inp, prev_out):
            raise ExplainerError(
                f"LRP: the input of layer {name!r} is not the output of {prev_name!r}: the forward applies "
                "an operation outside modules there (residual addition, concatenation, functional "
                "activation); LRP here needs a plain chain of modules"
            )
        prev_name, prev_out = name, out
    if not _same(prev_out, logits):
        raise ExplainerError(f"LRP: the model output is not the output of its last layer {prev_name!r}")
    return [Step(n, m, i, o) for n, m, i, o in records]
