"""Finding layers by name, or the default target layer by what actually runs in a forward pass."""

from __future__ import annotations

import difflib
import weakref
from typing import Any

import torch
from torch import nn

from ..errors import ExplainerError
from .graph_layers import script_layer_outputs
from .spatial import layout_of

HOOKLESS = "TorchScript modules do not support hooks; give the eager model (e.g. model.factory)"


def hookless(model: nn.Module) -> bool:
    """True when the model is or contains a TorchScript module, whose layers cannot carry forward/backward hooks
    (the layer-based explainers, layer views and concept activations all need them)."""
    return any(isinstance(m, torch.jit.ScriptModule) for m in model.modules())


def require_hooks(model: nn.Module) -> None:
    """ExplainerError with the true reason when the model's layers cannot be hooked."""
    if hookless(model):
        raise ExplainerError(HOOKLESS)


def named_module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        close = difflib.get_close_matches(name, [n for n in modules if n], n=4, cutoff=0.5)
        convs = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ExplainerError(
            f"layer {name!r} not found in the model; {hint}convolution layers are: {', '.join(convs[-8:]) or 'none'}"
        )
    return modules[name]


def is_attention(m: nn.Module) -> bool:
    name = type(m).__name__.lower()
    return isinstance(m, nn.MultiheadAttention) or name.endswith("attention") or name in ("attention", "attn")


def _is_norm(m: nn.Module) -> bool:
    return isinstance(m, nn.LayerNorm) or type(m).__name__.lower().endswith(("layernorm", "layernorm2d"))


def executed(model: nn.Module, inputs: torch.Tensor) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """(name, module, output shape) of every Conv2d, norm and attention module in the order they run on one sample.

    Registration order is not execution order: auxiliary heads (GoogLeNet, Inception) are registered last and
    never run in eval mode, and a ViT's only convolution is its patch embedding at the input."""
    require_hooks(model)
    order: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    handles = []

    def hook_for(name: str):
        def hook(m: nn.Module, _args: tuple, out: object) -> None:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
            order.append((name, m, shape))

        return hook

    try:
        for n, m in model.named_modules():
            if isinstance(m, nn.Conv2d) or is_attention(m) or _is_norm(m):
                handles.append(m.register_forward_hook(hook_for(n)))
        with torch.no_grad():
            model(inputs[:1])
    finally:
        for h in handles:
            h.remove()
    return order


def last_conv(model: nn.Module, inputs: torch.Tensor | None = None) -> tuple[str, nn.Module]:
    """The default target layer. For a convolutional network: the last nn.Conv2d that runs on ``inputs`` with a
    (B, C, h, w) output larger than 1x1 (without inputs: the last one registered). For a vision transformer (attention blocks run
    after the last convolution, which is then only the patch embedding): the norm that feeds its last attention
    block, whose tokens are placed on the patch grid (pytorch-grad-cam's choice, ``blocks[-1].norm1``)."""
    require_hooks(model)
    if inputs is None:
        found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        if not found:
            raise ExplainerError("the model has no nn.Conv2d layer; name a target layer in explainers.options")
        return found[-1]
    order = executed(model, inputs)
    # a convolution whose output is 1x1 on this input (a deep network on a small image) has no map to show
    convs = [i for i, (_, m, shape) in enumerate(order)
             if isinstance(m, nn.Conv2d) and len(shape) == 4 and shape[2] * shape[3] > 1]
    attns = [i for i, (_, m, _) in enumerate(order) if is_attention(m)]
    if attns and (not convs or attns[-1] > convs[-1]):
        norms = [i for i in range(attns[-1]) if _is_norm(order[i][1]) and len(order[i][2]) in (3, 4)]
        if not norms:
            raise ExplainerError(f"no norm layer feeds the last attention block {order[attns[-1]][0]!r}; name a "
                                 "target layer in explainers.options.<method>.layer")
        return order[norms[-1]][0], order[norms[-1]][1]
    if not convs:
        raise ExplainerError("no nn.Conv2d layer with a spatial (larger than 1x1) output runs in the model's forward "
                             "pass; name a target layer in explainers.options")
    return order[convs[-1]][0], order[convs[-1]][1]


def block_layers(model: nn.Module, inputs: torch.Tensor) -> list[str]:
    """Layers from input to output for per-layer views: the convolutions that run, or for a transformer the norms
    that feed each attention block (the block inputs). None for a model that takes no hooks (TorchScript): the
    views and explainers that would read them say why they are unavailable."""
    if hookless(model):
        return []
    order = executed(model, inputs)
    attns = [i for i, (_, m, _) in enumerate(order) if is_attention(m)]
    if attns:
        feeds = [max((j for j in range(i) if _is_norm(order[j][1])), default=-1) for i in attns]
        return list(dict.fromkeys(order[j][0] for j in feeds if j >= 0))
    return list(dict.fromkeys(n for n, m, shape in order if isinstance(m, nn.Conv2d) and len(shape) == 4))


def resolve_layer(model: nn.Module, name: str | None, inputs: torch.Tensor | None = None) -> tuple[str, nn.Module]:
    if name:
        require_hooks(model)
        return name, named_module(model, name)
    return last_conv(model, inputs)


class LayerMemo:
    """The target layer each model resolves to, found once per model, configured name and input shape (an
    explainer keeps one): finding the default layer takes a forward pass of one input with a hook on every
    convolution, which per batch cost Grad-CAM 10-20 % against the bare captum call. Travels (to a Ray worker)
    empty."""

    def __init__(self) -> None:
        self._found: weakref.WeakKeyDictionary[nn.Module, dict[Any, tuple[str, nn.Module]]] = \
            weakref.WeakKeyDictionary()

    def __reduce__(self) -> tuple[type[LayerMemo], tuple[()]]:
        return LayerMemo, ()

    def resolve(self, model: nn.Module, name: str | None, inputs: torch.Tensor | None = None
                ) -> tuple[str, nn.Module]:
        """``resolve_layer``, remembered."""
        key = (name, None if inputs is None else (tuple(inputs.shape[1:]), inputs.dtype, inputs.device))
        per = self._found.get(model)
        if per is None:
            per = self._found[model] = {}
        if key not in per:
            per[key] = resolve_layer(model, name, inputs)
        return per[key]


def last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ExplainerError("the model has no nn.Linear layer (no classification head found)")
    return found[-1]


def candidate_layers(model: nn.Module, inputs: torch.Tensor) -> list[tuple[str, str, tuple[int, ...], str]]:
    """(name, class, output shape, layout) of every module whose output can be placed on the image (a Grad-CAM
    target), in the order they first run on one sample. A TorchScript module (no hooks) is read from its graph
    instead, in the order its layers finish."""
    size = (inputs.shape[-2], inputs.shape[-1])
    if hookless(model):
        return [(n, kind, tuple(out.shape[1:]), layout_of(out, size)[0])
                for n, kind, out in script_layer_outputs(model, inputs) if _placeable(out, size)]
    seen: dict[str, tuple[str, tuple[int, ...], str]] = {}
    handles = []

    def hook_for(name: str):
        def hook(m: nn.Module, _args: tuple, out: object) -> None:
            if name in seen or not isinstance(out, torch.Tensor):
                return
            try:
                layout = layout_of(out, size)[0]
            except ExplainerError:
                return
            seen[name] = (type(m).__name__, tuple(out.shape[1:]), layout)

        return hook

    try:
        for n, m in model.named_modules():
            if n:
                handles.append(m.register_forward_hook(hook_for(n)))
        with torch.no_grad():
            model(inputs[:1])
    finally:
        for h in handles:
            h.remove()
    return [(n, *v) for n, v in seen.items()]


def _placeable(out: torch.Tensor, size: tuple[int, int]) -> bool:
    try:
        layout_of(out, size)
    except ExplainerError:
        return False
    return True
