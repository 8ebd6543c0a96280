"""Deconvnet (Zeiler & Fergus 2014) through captum's Deconvolution."""

from __future__ import annotations

import torch
from captum.attr import Deconvolution
from torch import nn

from ._common import quiet_relu_hooks
from .base import Explainer, ExplainerParams
from .layers import require_hooks


class DeconvnetParams(ExplainerParams):
    pass


class Deconvnet(Explainer):
    """Signed: the deconvnet signal summed over channels. Only nn.ReLU modules get the deconvnet rule."""

    name = "deconvnet"
    unit = "deconvnet signal, arbitrary units"
    title = "Deconvnet"
    signed = True
    legend = (
        "Backward pass where every ReLU (nn.ReLU modules only) applies a ReLU to the incoming gradient, "
        "ignoring the forward activation; summed over channels. Mostly shows image structure that excites "
        "the network, weakly tied to the class."
    )
    Params = DeconvnetParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        require_hooks(model)  # the ReLU rule is a module hook: without hooks this would be the plain gradient
        x = inputs.detach().requires_grad_(True)
        with torch.enable_grad(), quiet_relu_hooks():
            attr = Deconvolution(model).attribute(x, target=targets)
        return attr.detach().sum(dim=1).float().cpu()
