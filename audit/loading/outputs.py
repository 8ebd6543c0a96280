"""One output adapter for every stage: whatever forward returns, the audit sees one tensor of logits.

``model.output`` names the part that holds them (a key of a dict, an attribute of an object such as a Hugging
Face ``ModelOutput``, or an index into a tuple). By default a tensor is taken as is, a ``ModelOutput`` or dict
gives its ``logits``, and a tuple or list gives its first tensor; anything else is refused with a message naming
the type received. The adapter is a forward hook on the model itself, so scoring, every explainer, the
counterfactual probes and the layer views all call the same adapted model, and module names (the layers users
name in the config) stay as the model defines them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ModelError

Extract = Callable[[object], object]


def _describe(out: object) -> str:
    if isinstance(out, torch.Tensor):
        return f"a tensor {tuple(out.shape)}"
    if isinstance(out, (tuple, list)):
        parts = ", ".join(type(x).__name__ for x in out[:4])
        return f"a {type(out).__name__} of {len(out)} ({parts}{', …' if len(out) > 4 else ''})"
    if isinstance(out, Mapping):
        return f"{type(out).__name__} with keys {', '.join(map(str, list(out)[:6]))}"
    return type(out).__name__


def _extractor(out: object, spec: str | int | None) -> tuple[Extract, str]:
    """The function that takes the logits out of ``out`` (one forward's result), and how it reads."""
    if spec is None:
        if isinstance(out, torch.Tensor):
            return (lambda o: o), "the tensor forward returns"
        if isinstance(out, Mapping) and "logits" in out:  # ModelOutput is a Mapping too
            return (lambda o: o["logits"]), f"'logits' of {type(out).__name__}"
        if hasattr(out, "logits") and isinstance(out.logits, torch.Tensor):
            return (lambda o: o.logits), f".logits of {type(out).__name__}"
        if isinstance(out, (tuple, list)):
            first = next((i for i, x in enumerate(out) if isinstance(x, torch.Tensor)), None)
            if first is not None:
                return (lambda o, i=first: o[i]), f"element {first} of the {type(out).__name__} forward returns"
        raise ModelError(f"the model returned {_describe(out)}, not a tensor of logits; set model.output to the key, "
                         "attribute or index that holds them")
    if isinstance(spec, int):
        if not isinstance(out, (tuple, list)) or not -len(out) <= spec < len(out):
            raise ModelError(f"model.output = {spec}: the model returned {_describe(out)}, which has no index {spec}")
        return (lambda o: o[spec]), f"element {spec} of the {type(out).__name__} forward returns"
    if isinstance(out, Mapping) and spec in out:
        return (lambda o: o[spec]), f"{spec!r} of {type(out).__name__}"
    if hasattr(out, spec):
        return (lambda o: getattr(o, spec)), f".{spec} of {type(out).__name__}"
    raise ModelError(f"model.output = {spec!r}: the model returned {_describe(out)}, which has no such key or "
                     "attribute")


class _Adapted(nn.Module):
    """For modules that take no Python hooks (TorchScript): the adapter as a wrapper (names gain 'model.')."""

    def __init__(self, model: nn.Module, extract: Extract) -> None:
        super().__init__()
        self.model = model
        self._extract = extract

    def forward(self, x: torch.Tensor) -> object:
        return self._extract(self.model(x))


@dataclass(frozen=True)
class AdaptedModel:
    module: nn.Module  # call this: its output is the logits tensor
    description: str  # e.g. ".logits of ImageClassifierOutput"


def adapt_outputs(model: nn.Module, spec: str | int | None, example: torch.Tensor) -> AdaptedModel:
    """Run one forward on ``example`` (1, C, H, W) to see the output's structure and attach the adapter."""
    try:
        with torch.no_grad():
            out = model(example)
    except Exception as e:  # noqa: BLE001 - the user's forward fails in its own ways: a model problem, named
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ModelError(f"the model failed on a {tuple(example.shape)} input (check data.image_size and "
                         f"data.channels): {type(e).__name__}: {first}") from None
    extract, how = _extractor(out, spec)
    got = extract(out)
    if not isinstance(got, torch.Tensor):
        raise ModelError(f"model.output: {how} is {type(got).__name__}, not a tensor")
    if isinstance(out, torch.Tensor) and spec is None:
        return AdaptedModel(model, how)
    if isinstance(model, torch.jit.ScriptModule):
        return AdaptedModel(_Adapted(model, extract).eval(), how)
    model.register_forward_hook(lambda _m, _args, o: extract(o))
    return AdaptedModel(model, how)
