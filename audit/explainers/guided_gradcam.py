"""Guided Grad-CAM (Selvaraju et al. 2017) through captum's GuidedGradCam."""

from __future__ import annotations

import torch
from captum.attr import GuidedGradCam as _GuidedGradCam
from torch import nn

from ._common import quiet_relu_hooks
from .base import Explainer
from .gradcam import GradCAMParams
from .layers import resolve_layer


class GuidedGradCAM(Explainer):
    """Signed: guided backprop x bilinearly upsampled ReLU'd Grad-CAM, summed over channels.

    Equals the ``guided_backprop`` map times the ``gradcam`` map of the same layer, pixel by pixel.
    """

    name = "guided_gradcam"
    title = "Guided Grad-CAM"
    signed = True
    legend = (
        "Guided backpropagation masked by the upsampled Grad-CAM of the target layer: fine detail inside "
        "the class-discriminative region. Inherits guided backprop's weak class sensitivity at fine scale."
    )
    Params = GradCAMParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        _, layer = resolve_layer(model, self.params.layer)
        x = inputs.detach().requires_grad_(True)
        with torch.enable_grad(), quiet_relu_hooks():
            attr = _GuidedGradCam(model, layer).attribute(x, target=targets, interpolate_mode="bilinear")
        return attr.detach().sum(dim=1).float().cpu()
