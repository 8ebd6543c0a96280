"""Guided Grad-CAM (Selvaraju et al. 2017): captum's guided backpropagation times the upsampled Grad-CAM."""

from __future__ import annotations

import torch
from captum.attr import GuidedBackprop
from torch import nn

from ._common import quiet_relu_hooks
from .gradcam import GradCAMParams, LayerTargeted, upsample
from .spatial import activation_and_gradient, grad_cam


class GuidedGradCAM(LayerTargeted):
    """Signed: guided backprop x bilinearly upsampled ReLU'd Grad-CAM, summed over channels.

    Equals the ``guided_backprop`` map times the ``gradcam`` map of the same layer, pixel by pixel.
    """

    name = "guided_gradcam"
    unit = "guided gradient × Grad-CAM, arbitrary units"
    title = "Guided Grad-CAM"
    signed = True
    legend = (
        "Guided backpropagation masked by the upsampled Grad-CAM of the target layer: fine detail inside "
        "the class-discriminative region. Inherits guided backprop's weak class sensitivity at fine scale."
    )
    Params = GradCAMParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        name, layer = self.target_layer(model, inputs)
        a, g = activation_and_gradient(model, name, layer, inputs, targets)
        cam = upsample(grad_cam(a, g), tuple(inputs.shape[-2:]))  # as captum's GuidedGradCam: ReLU'd, bilinear
        x = inputs.detach().requires_grad_(True)
        with torch.enable_grad(), quiet_relu_hooks():
            gb = GuidedBackprop(model).attribute(x, target=targets)
        return (gb.detach() * cam.unsqueeze(1)).sum(dim=1).float().cpu()
