"""Guided backpropagation (Springenberg et al. 2015) through captum's GuidedBackprop."""

from __future__ import annotations

import torch
from captum.attr import GuidedBackprop as _GuidedBackprop
from torch import nn

from ._common import quiet_relu_hooks
from .base import Explainer, ExplainerParams
from .layers import require_hooks


class GuidedBackpropParams(ExplainerParams):
    pass


class GuidedBackprop(Explainer):
    """Signed: the guided gradient summed over channels. Only nn.ReLU modules get the guided rule."""

    name = "guided_backprop"
    unit = "guided gradient, arbitrary units"
    title = "Guided backpropagation"
    signed = True
    legend = (
        "Gradient where every ReLU (nn.ReLU modules only) passes back only positive gradients at positive "
        "inputs; summed over channels. Sharp edges, but known to be largely class-insensitive: it "
        "reconstructs the image more than it explains the decision."
    )
    Params = GuidedBackpropParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        require_hooks(model)  # the ReLU rule is a module hook: without hooks this would be the plain gradient
        x = inputs.detach().requires_grad_(True)
        with torch.enable_grad(), quiet_relu_hooks():
            attr = _GuidedBackprop(model).attribute(x, target=targets)
        return attr.detach().sum(dim=1).float().cpu()
