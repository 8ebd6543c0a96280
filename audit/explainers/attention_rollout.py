"""Attention rollout (Abnar & Zuidema 2020) for torchvision VisionTransformer models."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torchvision.models import VisionTransformer

from ..errors import ExplainerError
from .base import Explainer, ExplainerParams
from .gradcam import upsample


class AttentionRolloutParams(ExplainerParams):
    head_fusion: Literal["mean", "max", "min"] = Field("mean", description="how the heads of a layer combine")


def find_vit(model: nn.Module) -> VisionTransformer:
    for m in model.modules():
        if isinstance(m, VisionTransformer):
            return m
    raise ExplainerError(
        f"attention rollout needs a torchvision VisionTransformer; this model ({type(model).__name__}) has none"
    )


def attention_maps(model: nn.Module, inputs: torch.Tensor) -> list[torch.Tensor]:
    """Per encoder block, the attention probabilities (B, heads, tokens, tokens) of one forward pass.

    torchvision's EncoderBlock asks its MultiheadAttention for no weights; a pre-hook switches the call
    to ``need_weights=True, average_attn_weights=False`` and a post-hook keeps them. Both are removed.
    """
    vit = find_vit(model)
    mhas = [m for m in vit.encoder.modules() if isinstance(m, nn.MultiheadAttention)]
    found: list[torch.Tensor] = []

    def pre(_m: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def post(_m: nn.Module, _args: tuple, out: tuple) -> None:
        found.append(out[1].detach())

    handles = []
    try:
        for m in mhas:
            handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(m.register_forward_hook(post))
        with torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
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
    title = "Attention rollout"
    signed = False
    legend = (
        "How much the class token draws on each patch when attention is followed through all layers "
        "(heads averaged, residual modelled as identity). Class-agnostic; shows information flow, not "
        "evidence for the predicted class."
    )
    Params = AttentionRolloutParams

    def check(self, model: nn.Module) -> None:
        find_vit(model)

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        vit = find_vit(model)
        rolled = rollout(attention_maps(model, inputs), self.params.head_fusion)
        g = vit.image_size // vit.patch_size
        cls = rolled[:, 0, 1:]
        if cls.shape[-1] != g * g:
            raise ExplainerError(f"attention rollout: {cls.shape[-1]} patch tokens do not form a {g}x{g} grid")
        return upsample(cls.reshape(-1, g, g).float(), tuple(inputs.shape[-2:])).float().cpu()
