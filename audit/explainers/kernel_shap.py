"""Kernel SHAP (Lundberg & Lee 2017) over superpixels or grid cells through captum's KernelShap."""

from __future__ import annotations

import torch
from captum.attr import KernelShap as _KernelShap
from pydantic import Field
from torch import nn

from ._common import BaselineKind, make_baseline
from .base import Explainer, ExplainerParams
from .segments import Segmentation, attribute_per_segment


class KernelShapParams(ExplainerParams):
    n_samples: int = Field(100, ge=2, description="coalitions sampled per image (more than the segment count)")
    segmentation: Segmentation = Field("slic", description="slic superpixels or a square grid")
    n_segments: int = Field(50, ge=2, description="target number of SLIC superpixels")
    cell: int = Field(16, ge=1, description="grid cell side in pixels (segmentation=grid)")
    baseline: BaselineKind = Field("zeros", description="what an absent segment shows (see integrated_gradients)")
    blur_sigma: float = Field(5.0, gt=0)
    perturbations_per_eval: int = Field(16, ge=1)


class KernelShap(Explainer):
    """Signed: each pixel carries its segment's estimated Shapley value for the target logit (absent
    segments set to the baseline). The mask spans all channels, so the map is the channel mean.
    Sampling seeded by context.seed.
    """

    name = "kernel_shap"
    unit = "Shapley value of the pixel's segment, score units"
    title = "Kernel SHAP"
    signed = True
    legend = (
        "Shapley values of superpixels, estimated by a weighted linear regression over random coalitions "
        "(absent segments set to the baseline); the values add up to score(image) - score(baseline). "
        "Estimation noise falls with the sample count."
    )
    Params = KernelShapParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        shap = _KernelShap(model)
        baselines = make_baseline(p.baseline, inputs, self.context, p.blur_sigma)
        return attribute_per_segment(shap, inputs, baselines, targets, p, self.context.seed)
