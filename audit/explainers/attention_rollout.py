"""Attention rollout (Abnar & Zuidema 2020) for vision transformers: torchvision, timm and Hugging Face."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from ..errors import ExplainerError
from .base import Explainer, ExplainerParams
from .gradcam import upsample
from .layers import is_attention, require_hooks
from .spatial import token_grid


class AttentionRolloutParams(ExplainerParams):
    head_fusion: Literal["mean", "max", "min"] = Field("mean", description="how the heads of a layer combine")


@contextmanager
def _unfused(m: nn.Module) -> Iterator[None]:
    """timm attention computes its probabilities only on the unfused path."""
    prev = m.fused_attn
    m.fused_attn = False
    try:
        yield
    finally:
        m.fused_attn = prev


def attention_maps(model: nn.Module, inputs: torch.Tensor) -> list[torch.Tensor]:
    """Per attention block, in the order they run, the attention probabilities (B, heads, tokens, tokens).

    torchvision's MultiheadAttention is asked for per-head weights through a pre-hook; timm's ``Attention`` runs
    unfused and its probabilities are read at the input of ``attn_drop``; a Hugging Face attention module returns
    them as the second element of its output (eager attention, as ``model.huggingface`` loads it)."""
    found: list[torch.Tensor] = []

    def pre_mha(_m: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def post_pair(_m: nn.Module, _args: tuple, out: object) -> None:
        if isinstance(out, tuple) and len(out) > 1 and isinstance(out[1], torch.Tensor) and out[1].dim() == 4:
            found.append(out[1].detach())

    def at_drop(_m: nn.Module, args: tuple) -> None:
        found.append(args[0].detach())

    mods = [m for m in model.modules() if is_attention(m)]
    if not mods:
        raise ExplainerError(f"attention rollout needs a vision transformer; {type(model).__name__} has no attention "
                             "block")
    with ExitStack() as stack:
        for m in mods:
            if isinstance(m, nn.MultiheadAttention):
                stack.callback(m.register_forward_pre_hook(pre_mha, with_kwargs=True).remove)
                stack.callback(m.register_forward_hook(post_pair).remove)
            elif hasattr(m, "fused_attn") and isinstance(getattr(m, "attn_drop", None), nn.Module):
                stack.enter_context(_unfused(m))
                stack.callback(m.attn_drop.register_forward_pre_hook(at_drop).remove)
            else:
                stack.callback(m.register_forward_hook(post_pair).remove)
        with torch.no_grad():
            model(inputs)
    if not found:
        raise ExplainerError("the attention blocks returned no attention probabilities (a fused or SDPA attention "
                             "implementation; load Hugging Face models with attn_implementation='eager')")
    return found


def rollout(attns: list[torch.Tensor], head_fusion: str = "mean") -> torch.Tensor:
    """Product over layers of row-normalised (fused heads + identity): (B, tokens, tokens), first layer right."""
    result = None
    for a in attns:
        fused = {"mean": a.mean(1), "max": a.amax(1), "min": a.amin(1)}[head_fusion].double()
        fused = fused + torch.eye(fused.shape[-1], dtype=fused.dtype, device=fused.device)
        fused = fused / fused.sum(dim=-1, keepdim=True)
        result = fused if result is None else fused @ result
    if result is None:
        raise ExplainerError("attention rollout: the model ran no attention layer")
    return result


class AttentionRollout(Explainer):
    """Unsigned: the class token's row of the attention rollout over the patch tokens, on the patch grid,
    upsampled bilinearly. Class-agnostic: the target is ignored.
    """

    name = "attention_rollout"
    unit = "attention flow to the patch, share 0–1"
    title = "Attention rollout"
    signed = False
    legend = (
        "How much the class token draws on each patch when attention is followed through all layers "
        "(heads averaged, residual modelled as identity). Class-agnostic; shows information flow, not "
        "evidence for the predicted class."
    )
    Params = AttentionRolloutParams

    def check(self, model: nn.Module) -> None:
        require_hooks(model)
        if not any(is_attention(m) for m in model.modules()):
            raise ExplainerError(f"attention rollout needs a vision transformer; {type(model).__name__} has no "
                                 "attention block")

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        attns = attention_maps(model, inputs)
        n = attns[-1].shape[-1]
        if any(a.shape[0] != inputs.shape[0] for a in attns):
            raise ExplainerError("attention rollout: the model attends within windows (a Swin-style transformer); "
                                 "rollout needs global attention over one token sequence")
        if any(a.shape[-1] != n for a in attns):
            raise ExplainerError("attention rollout: the blocks attend over different token counts (a hierarchical "
                                 "transformer such as Swin); rollout needs one token sequence")
        size = (inputs.shape[-2], inputs.shape[-1])
        grid = token_grid(n, size)
        if grid is None or grid[0] < 1:
            raise ExplainerError(f"attention rollout: {n} tokens are not a class token plus a patch grid on the "
                                 f"{size[0]}x{size[1]} input")
        prefix, (h, w) = grid
        rolled = rollout(attns, self.params.head_fusion)
        cls = rolled[:, 0, prefix:]
        return upsample(cls.reshape(-1, h, w).float(), size).float().cpu()
