"""Grad-CAM (Selvaraju et al. 2017) on any layer layout: convolutional maps, channels-last maps, transformer tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import ExplainContext, Explainer, ExplainerParams
from .layers import LayerMemo
from .spatial import activation_and_gradient, grad_cam


class GradCAMParams(ExplainerParams):
    layer: str | None = None  # module name; default: the last Conv2d that runs, or for a vision transformer the
    # norm before its last attention block (tokens placed on the patch grid)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, h, w) or (B, h, w) -> (B, H, W), bilinear, align_corners=False."""
    if maps.dim() == 3:
        maps = maps.unsqueeze(1)
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps[:, 0]
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)[:, 0]


class LayerTargeted(Explainer):
    """An explainer of one target layer: ``params.layer``, or by default the layer ``layers.last_conv`` finds,
    found once per model and input shape."""

    def __init__(self, params: ExplainerParams | None = None, context: ExplainContext | None = None) -> None:
        super().__init__(params, context)
        self._layers = LayerMemo()

    def target_layer(self, model: nn.Module, inputs: torch.Tensor) -> tuple[str, nn.Module]:
        return self._layers.resolve(model, getattr(self.params, "layer", None), inputs)


class GradCAM(LayerTargeted):
    name = "gradcam"
    unit = "ReLU of gradient-weighted activations, arbitrary units"
    title = "Grad-CAM"
    signed = False
    legend = (
        "Class-discriminative regions at the target layer: channel activations weighted by the spatially "
        "averaged gradient of the class score, ReLU, upsampled bilinearly. Coarse (one cell per "
        "feature-map position); says where, not what; can look plausible even for a weak model."
    )
    Params = GradCAMParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        name, layer = self.target_layer(model, inputs)
        a, g = activation_and_gradient(model, name, layer, inputs, targets)
        return upsample(grad_cam(a, g), tuple(inputs.shape[-2:])).float().cpu()
