"""Occlusion sensitivity (Zeiler & Fergus 2014) through captum's Occlusion."""

from __future__ import annotations

import torch
from captum.attr import Occlusion as _Occlusion
from pydantic import Field
from torch import nn

from .base import Explainer, ExplainerParams


class OcclusionParams(ExplainerParams):
    window: int = Field(16, ge=1, description="side of the square occluding patch, pixels (clamped to the image)")
    stride: int = Field(8, ge=1, description="step between patch positions, pixels")
    baseline: float = Field(0.0, description="value of the occluding patch in normalised input space")
    perturbations_per_eval: int = Field(16, ge=1, description="occluded copies per forward pass")


class Occlusion(Explainer):
    """Signed: score(x) - score(x with a patch replaced by the baseline), averaged over the patches
    covering each pixel. Patches span all channels, so every channel carries the same value; the map is
    their mean (= that score drop; a channel sum would only multiply it by C).

    The equivalent of MATLAB's occlusionSensitivity (there: softmax score; here: the raw logit).
    """

    name = "occlusion"
    unit = "logit drop when a patch covering the pixel is occluded"
    title = "Occlusion sensitivity"
    signed = True
    legend = (
        "Drop in the class score when a square patch (all channels) is replaced by the baseline value, "
        "averaged over the patches covering each pixel. Model-agnostic; resolution set by patch and stride; "
        "an out-of-distribution patch can itself move the score."
    )
    Params = OcclusionParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        c, h, w = inputs.shape[1:]
        win = (c, min(p.window, h), min(p.window, w))
        stride = (c, min(p.stride, win[1]), min(p.stride, win[2]))
        with torch.no_grad():
            attr = _Occlusion(model).attribute(
                inputs, sliding_window_shapes=win, strides=stride, baselines=p.baseline, target=targets,
                perturbations_per_eval=p.perturbations_per_eval,
            )
        return attr.detach().mean(dim=1).float().cpu()
