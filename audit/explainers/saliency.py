"""Vanilla gradient saliency (Simonyan et al. 2014) through captum's Saliency."""

from __future__ import annotations

import torch
from captum.attr import Saliency as _Saliency
from torch import nn

from .base import Explainer, ExplainerParams


class SaliencyParams(ExplainerParams):
    pass


class Saliency(Explainer):
    """Unsigned: |d score / d input|, reduced over channels by max (Simonyan et al.)."""

    name = "saliency"
    unit = "|∂ logit / ∂ input|, logit per unit of normalised input"
    title = "Saliency (gradient)"
    signed = False
    legend = (
        "Absolute gradient of the class score with respect to each pixel, maximum over colour channels: "
        "which pixels would change the score most if nudged. Noisy and local; says sensitivity, not evidence."
    )
    Params = SaliencyParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = inputs.detach().requires_grad_(True)
        with torch.enable_grad():
            grads = _Saliency(model).attribute(x, target=targets, abs=True)
        return grads.detach().amax(dim=1).float().cpu()
