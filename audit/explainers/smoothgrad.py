"""SmoothGrad (Smilkov et al. 2017): saliency averaged over noisy copies, captum NoiseTunnel over Saliency."""

from __future__ import annotations

import torch
from captum.attr import NoiseTunnel, Saliency
from pydantic import Field
from torch import nn

from ._common import seeded
from .base import Explainer, ExplainerParams


class SmoothGradParams(ExplainerParams):
    n_samples: int = Field(16, ge=1, description="noisy copies per image")
    stdev_fraction: float = Field(0.15, gt=0, description="noise std as a fraction of each image's value range")
    batch_size: int = Field(16, ge=1, description="noisy copies per forward pass")


class SmoothGrad(Explainer):
    """Unsigned: mean over noisy copies of |gradient|, reduced over channels by max; noise seeded by context.seed."""

    name = "smoothgrad"
    unit = "mean |∂ logit / ∂ input| over noisy copies, logit per unit of normalised input"
    title = "SmoothGrad"
    signed = False
    legend = (
        "Saliency averaged over copies of the image with Gaussian noise added (std a fixed fraction of the "
        "image's value range): less speckle than plain saliency. Absolute values, maximum over channels."
    )
    Params = SmoothGradParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        tunnel = NoiseTunnel(Saliency(model))
        maps = []
        with seeded(self.context.seed, inputs.device), torch.enable_grad():
            for x, t in zip(inputs, targets, strict=True):  # per image: the noise scale follows that image's range
                x = x.unsqueeze(0)
                sigma = float(p.stdev_fraction * (x.max() - x.min()).clamp_min(1e-12))
                attr = tunnel.attribute(
                    x, nt_type="smoothgrad", nt_samples=p.n_samples, nt_samples_batch_size=p.batch_size,
                    stdevs=sigma, target=t.view(1), abs=True,
                )
                maps.append(attr.detach().amax(dim=1))
        return torch.cat(maps).float().cpu()
