"""Finding layers by name or by type in a model."""

from __future__ import annotations

from torch import nn

from ..errors import ExplainerError


def named_module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        candidates = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
        raise ExplainerError(
            f"layer {name!r} not found in the model; convolution layers are: {', '.join(candidates[-8:])}"
        )
    return modules[name]


def last_conv(model: nn.Module) -> tuple[str, nn.Module]:
    """The last nn.Conv2d in registration order (the usual Grad-CAM target)."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not found:
        raise ExplainerError("the model has no nn.Conv2d layer; name a target layer in explainers.options")
    return found[-1]


def resolve_layer(model: nn.Module, name: str | None) -> tuple[str, nn.Module]:
    if name:
        return name, named_module(model, name)
    return last_conv(model)


def last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ExplainerError("the model has no nn.Linear layer (no classification head found)")
    return found[-1]
