"""Feature maps of named layers, summed over channels (what the layer responds to, not class evidence)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from ._common import capture
from .base import Explainer, ExplainerParams
from .gradcam import upsample
from .layers import last_conv, named_module
from .spatial import to_spatial


class LayerActivationsParams(ExplainerParams):
    layers: list[str] | None = Field(None, description="module names; default: the last Conv2d. explain() "
                                     "shows the first one listed")


class LayerActivations(Explainer):
    """Signed: the layer's output summed over channels, upsampled bilinearly; the target is ignored.

    Non-negative when the named layer is (or ends in) a ReLU; raw conv outputs can be negative.
    """

    name = "layer_activations"
    unit = "channel-summed activation, arbitrary units (not class evidence)"
    attribution = False  # shows the input's content, not class evidence
    layer_view = "activations"
    title = "Layer activations"
    signed = True
    legend = (
        "Channel-summed output of a layer, upsampled to the image: where the layer fires, whatever the "
        "class. Not an attribution; useful to see what a layer attends to and to spot dead layers."
    )
    Params = LayerActivationsParams

    def layer_names(self, model: nn.Module, inputs: torch.Tensor | None = None) -> list[str]:
        """The configured layers, else the last convolution that runs on ``inputs``."""
        return list(self.params.layers) if self.params.layers else [last_conv(model, inputs)[0]]

    def check(self, model: nn.Module) -> None:
        for n in self.params.layers or []:
            named_module(model, n)

    def maps(self, model: nn.Module, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """{layer: (B, H, W) channel-summed map at input resolution} for every configured layer."""
        names = self.layer_names(model, inputs)
        with torch.no_grad():
            _, acts = capture(model, {n: named_module(model, n) for n in names}, inputs, stop_early=True)
        out = {}
        size = (inputs.shape[-2], inputs.shape[-1])
        for n in names:
            a = to_spatial(acts[n], size)  # tokens and channels-last maps placed on the image
            out[n] = upsample(a.sum(dim=1), size).float().cpu()
        return out

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.maps(model, inputs)[self.layer_names(model, inputs)[0]]
