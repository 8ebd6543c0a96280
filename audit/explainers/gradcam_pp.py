"""Grad-CAM++ (Chattopadhyay et al. 2018), written against a forward hook on the target layer (any layout)."""

from __future__ import annotations

import torch
from torch import nn

from .gradcam import GradCAMParams, LayerTargeted, upsample
from .spatial import activation_and_gradient


class GradCAMPlusPlus(LayerTargeted):
    """Unsigned: ReLU(sum_k w_k A_k) with w_k = sum_ij alpha_kij ReLU(dS/dA_kij), upsampled bilinearly.

    alpha uses the exp(score) closed form (paper eq. 19, as in pytorch-grad-cam):
    alpha = g^2 / (2 g^2 + sum_ij(A) g^3), zero where the gradient g is zero.
    """

    name = "gradcam_pp"
    unit = "ReLU of Grad-CAM++-weighted activations, arbitrary units"
    title = "Grad-CAM++"
    signed = False
    legend = (
        "Grad-CAM with per-position channel weights from second- and third-order gradient terms, which "
        "spreads the map over several instances of a class. Same resolution limit as Grad-CAM."
    )
    Params = GradCAMParams

    eps = 1e-6

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        name, layer = self.target_layer(model, inputs)
        a, g = activation_and_gradient(model, name, layer, inputs, targets)
        g2 = g * g
        alpha = g2 / (2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g2 * g + self.eps)
        alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
        weights = (alpha * g.clamp_min(0)).sum(dim=(2, 3), keepdim=True)
        cam = (weights * a).sum(dim=1, keepdim=True).clamp_min(0)
        return upsample(cam, tuple(inputs.shape[-2:])).float().cpu()
