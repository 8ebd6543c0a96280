"""Integrated Gradients (Sundararajan et al. 2017) through captum's IntegratedGradients."""

from __future__ import annotations

import torch
from captum.attr import IntegratedGradients as _IntegratedGradients
from pydantic import Field
from torch import nn

from ._common import BaselineKind, make_baseline
from .base import Explainer, ExplainerParams


class IntegratedGradientsParams(ExplainerParams):
    n_steps: int = Field(32, ge=2, description="points on the path (Gauss-Legendre)")
    baseline: BaselineKind = Field(
        "zeros",
        description="zeros: all-zero normalised input (the mean colour); blur: Gaussian-blurred input; "
        "mean: the dataset mean input",
    )
    blur_sigma: float = Field(5.0, gt=0, description="std in pixels of the blur baseline")
    internal_batch_size: int = Field(16, ge=1, description="path points x images per forward pass (raised to the "
                                     "batch size when smaller)")


class IntegratedGradients(Explainer):
    """Signed: path-integrated gradient x (input - baseline), summed over channels.

    Completeness: the map sums to f(x) - f(baseline) for the target logit, up to the path quadrature error.
    """

    name = "integrated_gradients"
    unit = "logit contribution per pixel (the map sums to logit(input) − logit(baseline))"
    title = "Integrated Gradients"
    signed = True
    legend = (
        "Gradients integrated along a straight path from a baseline image to the input, times the "
        "difference; the map adds up to the score change from baseline to input. Depends on the baseline "
        "(shown in the options): features equal to the baseline get no credit."
    )
    Params = IntegratedGradientsParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        baseline = make_baseline(p.baseline, inputs, self.context, p.blur_sigma)
        with torch.enable_grad():
            attr = _IntegratedGradients(model).attribute(
                inputs.detach().requires_grad_(True), baselines=baseline, target=targets, n_steps=p.n_steps,
                internal_batch_size=max(p.internal_batch_size, inputs.shape[0]),
            )
        return attr.detach().sum(dim=1).float().cpu()
