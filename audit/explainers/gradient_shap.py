"""GradientSHAP (Lundberg & Lee 2017, expected gradients) through captum's GradientShap."""

from __future__ import annotations

from typing import Literal

import torch
from captum.attr import GradientShap as _GradientShap
from pydantic import Field
from torch import nn

from ._common import make_baseline, seeded
from .base import Explainer, ExplainerParams


class GradientShapParams(ExplainerParams):
    n_samples: int = Field(16, ge=1, description="random (baseline, path point) draws per image")
    baseline: Literal["zeros", "mean"] = Field("zeros", description="centre of the reference distribution")
    n_baselines: int = Field(8, ge=1, description="references drawn around the centre")
    baseline_noise: float = Field(0.1, ge=0, description="std of the Gaussian noise around the centre")
    stdevs: float = Field(0.0, ge=0, description="std of extra noise on the input (SmoothGrad-style)")


class GradientShap(Explainer):
    """Signed: E[(x - x') * grad f(x' + u(x - x'))] over references x' and u ~ U(0, 1), summed over
    channels. References: the zeros or mean input plus Gaussian noise. Seeded by context.seed.
    """

    name = "gradient_shap"
    unit = "expected logit contribution per pixel (SHAP values)"
    title = "GradientSHAP"
    signed = True
    legend = (
        "Expected gradients times (input - reference) over random references (the baseline plus noise) "
        "and random points on the path: a sampled Integrated Gradients averaged over references. The map "
        "adds up to about E[score(x) - score(reference)]; sampling noise falls with n_samples."
    )
    Params = GradientShapParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        centre = make_baseline(p.baseline, inputs[:1], self.context, 1.0)
        gen = torch.Generator(device=inputs.device).manual_seed(self.context.seed)
        noise = torch.randn((p.n_baselines, *inputs.shape[1:]), generator=gen, device=inputs.device)
        refs = centre + p.baseline_noise * noise.to(inputs.dtype)
        with seeded(self.context.seed, inputs.device), torch.enable_grad():
            attr = _GradientShap(model).attribute(
                inputs.detach().requires_grad_(True), baselines=refs, target=targets, n_samples=p.n_samples,
                stdevs=p.stdevs,
            )
        return attr.detach().sum(dim=1).float().cpu()
