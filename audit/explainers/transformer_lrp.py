"""Layer-wise relevance propagation for vision transformers in the Gradient×Input form: AttnLRP (Achtibat et al.
2024, ICML) and CP-LRP (Ali et al. 2022), as the ``lxt`` package computes them, on timm, torchvision and Hugging
Face ViTs and on any transformer whose attention blocks expose their query / key / value projections.

The forward pass is unchanged; hooks change only what flows backwards, so that input × gradient is the LRP
relevance (the rules of the AttnLRP paper):

- every ``LayerNorm``: the identity rule (the standard deviation is held constant in the backward pass);
- element-wise activations (GELU, SiLU, Mish): the identity rule (gradient out / in);
- attention: ``cp`` (CP-LRP, lxt's choice for ViTs) holds the attention probabilities constant (no relevance
  flows through the softmax into the queries and keys); ``attnlrp`` lets it flow and applies the uniform rule to
  the two matrix products (the gradient into queries and keys is divided by 4, into values by 2);
- linear layers, convolutions, residual sums: gradient × input (LRP-0; ReLU's gradient is its identity rule).

With every bias zero, CP-LRP conserves relevance exactly: the token relevances (prefix tokens included) add up to
the target logit (tests/explainers/test_transformer_lrp.py checks it and compares with ``lxt`` itself).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from ..errors import ExplainerError
from ._common import target_scores
from .base import Explainer, ExplainerParams
from .gradcam import upsample
from .layers import _is_norm, executed, is_attention, require_hooks
from .spatial import token_grid

PROJECTIONS = (("qkv",), ("q_proj", "k_proj", "v_proj"), ("query", "key", "value"), ("q", "k", "v"))
IDENTITY_ACTIVATIONS = (nn.GELU, nn.SiLU, nn.Mish)


class TransformerLRPParams(ExplainerParams):
    attention: Literal["cp", "attnlrp"] = Field(
        "cp", description="cp: attention probabilities held constant (CP-LRP, lxt's ViT default); attnlrp: relevance "
        "through the softmax, uniform rule on the matrix products")
    level: Literal["tokens", "input"] = Field(
        "tokens", description="tokens: relevance of the patch tokens entering the first block, spread over their "
        "patches; input: relevance of every input pixel (through the patch embedding, LRP-0)")


def scale_grad(t: torch.Tensor, s: float) -> torch.Tensor:
    """``t`` in the forward pass; its gradient multiplied by ``s`` in the backward pass (0: detached)."""
    if s == 0.0:
        return t.detach()
    return t * s + (t * (1.0 - s)).detach()


def _layer_norm(m: nn.LayerNorm, args: tuple, _out: torch.Tensor) -> torch.Tensor:
    x = args[0]
    dims = tuple(range(-len(m.normalized_shape), 0))
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    y = (x - mean) / (var + m.eps).sqrt().detach()
    if m.weight is not None:
        y = y * m.weight
    if m.bias is not None:
        y = y + m.bias
    return y


def _identity_rule(_m: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    x = args[0]
    safe = torch.where(x == 0, torch.ones_like(x), x)
    ratio = torch.where(x == 0, torch.zeros_like(x), out / safe)
    return x * ratio.detach()


def _is_identity_activation(m: nn.Module) -> bool:
    name = type(m).__name__.lower()
    return isinstance(m, IDENTITY_ACTIVATIONS) or (not isinstance(m, nn.ReLU) and any(
        k in name for k in ("gelu", "silu", "swish", "mish")) and not list(m.children()))


def _projections(m: nn.Module) -> tuple[str, ...] | None:
    children = dict(m.named_children())
    for names in PROJECTIONS:
        if all(isinstance(children.get(n), nn.Linear) for n in names):
            return names
    return None


Hook = tuple[nn.Module, Callable[..., object], bool]  # (module, hook, is a pre-hook taking kwargs)


def attention_hooks(model: nn.Module, mode: str) -> list[Hook]:
    """The attention rule's hooks on every attention block (ExplainerError naming a block whose query, key and
    value cannot be found)."""
    s_qk, s_v = (0.0, 1.0) if mode == "cp" else (0.25, 0.5)

    def mha(_m: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        qkv = [*args[:3], *(kwargs.pop(n) for n in ("query", "key", "value")[len(args[:3]):] if n in kwargs)]
        q, k, v = (scale_grad(t, s) for t, s in zip(qkv, (s_qk, s_qk, s_v), strict=True))
        return (q, k, v, *args[3:]), kwargs

    def packed(_m: nn.Module, _args: tuple, y: torch.Tensor) -> torch.Tensor:
        q, k, v = y.chunk(3, dim=-1)
        return torch.cat([scale_grad(q, s_qk), scale_grad(k, s_qk), scale_grad(v, s_v)], dim=-1)

    def scaled(s: float) -> Callable[[nn.Module, tuple, torch.Tensor], torch.Tensor]:
        return lambda _m, _args, y: scale_grad(y, s)

    out: list[Hook] = []
    for name, m in model.named_modules():
        if not is_attention(m):
            continue
        if isinstance(m, nn.MultiheadAttention):
            out.append((m, mha, True))
            continue
        names = _projections(m)
        if names is None:
            if any(is_attention(c) for c in m.modules() if c is not m):
                continue  # a wrapper (Hugging Face's ViTAttention of old): the inner block gets the rule
            raise ExplainerError(f"transformer LRP: attention block {name!r} ({type(m).__name__}) has no query / "
                                 "key / value projections it can find (qkv, q_proj/k_proj/v_proj, query/key/value)")
        if names == ("qkv",):
            out.append((m.qkv, packed, False))
        else:
            out.extend((getattr(m, proj), scaled(s), False) for proj, s in zip(names, (s_qk, s_qk, s_v), strict=True))
    return out


@contextmanager
def lrp_rules(model: nn.Module, mode: str) -> Iterator[None]:
    """The model with the backward pass of LRP (see the module doc); every hook removed on exit."""
    hooks = attention_hooks(model, mode)
    if not hooks:
        raise ExplainerError(f"transformer LRP needs a transformer; {type(model).__name__} has no attention block")
    with ExitStack() as stack:
        for m, hook, pre in hooks:
            handle = m.register_forward_pre_hook(hook, with_kwargs=True) if pre else m.register_forward_hook(hook)
            stack.callback(handle.remove)
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                stack.callback(m.register_forward_hook(_layer_norm).remove)
            elif _is_identity_activation(m):
                stack.callback(m.register_forward_hook(_identity_rule).remove)
        yield


def token_entry(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """The module whose input is the token sequence entering the first attention block: the norm that feeds it (a
    pre-norm transformer), else the attention block itself."""
    order = executed(model, inputs)
    first = next(i for i, (_, m, _) in enumerate(order) if is_attention(m))
    norms = [i for i in range(first) if _is_norm(order[i][1]) and len(order[i][2]) == 3]
    return order[norms[-1]][1] if norms else order[first][1]


class TransformerLRP(Explainer):
    """Signed: the LRP relevance of each patch token (or input pixel) for the target class."""

    name = "transformer_lrp"
    unit = "relevance, logit units (per pixel of a patch)"
    title = "Transformer LRP"
    signed = True
    legend = (
        "Layer-wise relevance propagation through the transformer (AttnLRP's rules: norms and activations pass "
        "relevance through, attention holds its weights constant under CP-LRP), read at the patch tokens entering "
        "the first block and spread over their patches. Red: evidence for the class; blue: against it. Vision "
        "transformers only."
    )
    Params = TransformerLRPParams

    def check(self, model: nn.Module) -> None:
        require_hooks(model)
        if not any(is_attention(m) for m in model.modules()):
            raise ExplainerError(f"transformer LRP needs a vision transformer; {type(model).__name__} has no "
                                 "attention block")
        attention_hooks(model, self.params.attention)

    def relevance(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor,
                                                                                                 torch.Tensor]:
        """(relevance, logits of the targets): relevance (B, tokens) at the first block's input with ``level =
        "tokens"``, else (B, C, H, W) at the input."""
        entry = token_entry(model, inputs) if self.params.level == "tokens" else None
        seen: list[torch.Tensor] = []
        with torch.enable_grad(), ExitStack() as stack:
            x = inputs.detach().requires_grad_(True)
            if entry is not None:
                def grab(_m: nn.Module, args: tuple, kwargs: dict) -> None:
                    if not seen:
                        seen.append(args[0] if args else next(iter(kwargs.values())))

                stack.callback(entry.register_forward_pre_hook(grab, with_kwargs=True).remove)
            stack.enter_context(lrp_rules(model, self.params.attention))
            logits = model(x)
            if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
                raise ExplainerError(f"the model output {getattr(logits, 'shape', None)} is not (batch, outputs)")
            score = target_scores(logits, targets)
            at = seen[0] if entry is not None else x
            (g,) = torch.autograd.grad(score.sum(), at)
        rel = (at.detach() * g).sum(-1) if entry is not None else x.detach() * g
        return rel, score.detach()

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        rel, _ = self.relevance(model, inputs, targets)
        size = (inputs.shape[-2], inputs.shape[-1])
        if self.params.level == "input":
            return rel.sum(1).float().cpu()
        grid = token_grid(rel.shape[1], size)
        if grid is None:
            raise ExplainerError(f"transformer LRP: {rel.shape[1]} tokens are not prefix tokens plus a patch grid on "
                                 f"the {size[0]}x{size[1]} input")
        prefix, (h, w) = grid
        density = rel[:, prefix:].reshape(-1, h, w) * (h * w) / (size[0] * size[1])
        return upsample(density.float(), size).cpu()
