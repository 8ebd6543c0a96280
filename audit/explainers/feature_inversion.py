"""Feature inversion (Mahendran & Vedaldi 2015): an input whose layer features match the image's."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from ._common import capture
from .base import Explainer, ExplainerParams
from .layers import last_conv, named_module


class FeatureInversionParams(ExplainerParams):
    layers: list[str] | None = Field(None, description="module names to invert; default: the last Conv2d. "
                                     "explain() shows the first one listed")
    steps: int = Field(100, ge=1, description="Adam steps per layer")
    lr: float = Field(0.05, gt=0, description="Adam learning rate (normalised input units)")
    tv_weight: float = Field(1e-3, ge=0, description="weight of the total-variation prior")
    init_std: float = Field(0.1, gt=0, description="std of the seeded random start image")


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels, per image: (B,)."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).flatten(1).mean(1)
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).flatten(1).mean(1)
    return dh + dw


def _rel_dist(f: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
    return (f - f0).flatten(1).norm(dim=1) / f0.flatten(1).norm(dim=1).clamp_min(1e-12)


class FeatureInversion(Explainer):
    """Signed: channel mean of the reconstructed input (normalised space) for the first configured layer.

    Minimises ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 + tv_weight * TV(x) with Adam from a seeded noise
    image; the target class is ignored. Model parameters get no gradients.
    """

    name = "feature_inversion"
    unit = "reconstructed intensity"
    attribution = False  # shows the input's content, not class evidence
    layer_view = "inversions"
    title = "Feature inversion"
    signed = True
    legend = (
        "An image reconstructed from the layer's features alone (gradient descent with a smoothness "
        "prior): what information about the input the layer keeps. Not an attribution; depends on the "
        "prior, the step count and the seed."
    )
    Params = FeatureInversionParams

    def layer_names(self, model: nn.Module, inputs: torch.Tensor | None = None) -> list[str]:
        """The configured layers, else the last convolution that runs on ``inputs``."""
        return list(self.params.layers) if self.params.layers else [last_conv(model, inputs)[0]]

    def check(self, model: nn.Module) -> None:
        for n in self.params.layers or []:
            named_module(model, n)

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        name = self.layer_names(model, inputs)[0]
        recon, _, _ = self.invert(model, inputs, name)
        return recon.mean(dim=1).float().cpu()

    def reconstructions(
        self, model: nn.Module, inputs: torch.Tensor
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """{layer: (reconstruction (B, C, H, W) on CPU, relative feature distance at start, at end (B,))}."""
        out = {}
        for name in self.layer_names(model, inputs):
            recon, d0, d1 = self.invert(model, inputs, name)
            out[name] = (recon.float().cpu(), d0.cpu(), d1.cpu())
        return out

    def invert(self, model: nn.Module, inputs: torch.Tensor, name: str) -> tuple[torch.Tensor, ...]:
        p = self.params
        layer = {name: named_module(model, name)}

        def feats(x: torch.Tensor) -> torch.Tensor:
            return capture(model, layer, x, stop_early=True)[1][name]

        with torch.no_grad():
            target = feats(inputs).detach()
        gen = torch.Generator(device=inputs.device).manual_seed(self.context.seed)
        x = (p.init_std * torch.randn(inputs.shape, generator=gen, device=inputs.device)).to(inputs.dtype)
        x.requires_grad_(True)
        opt = torch.optim.Adam([x], lr=p.lr)
        norm = target.flatten(1).pow(2).sum(1).clamp_min(1e-12)
        with torch.enable_grad():
            with torch.no_grad():
                d0 = _rel_dist(feats(x), target)
            for _ in range(p.steps):
                loss = ((feats(x) - target).flatten(1).pow(2).sum(1) / norm + p.tv_weight * total_variation(x)).sum()
                (g,) = torch.autograd.grad(loss, x)  # never .backward(): parameters must not collect .grad
                x.grad = g
                opt.step()
        with torch.no_grad():
            d1 = _rel_dist(feats(x), target)
        return x.detach(), d0, d1
