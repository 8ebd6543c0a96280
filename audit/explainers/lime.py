"""LIME (Ribeiro et al. 2016) over superpixels or grid cells through captum's Lime."""

from __future__ import annotations

import torch
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import Lime as _Lime
from pydantic import Field
from torch import nn

from ._common import BaselineKind, make_baseline
from .base import Explainer, ExplainerParams
from .segments import Segmentation, attribute_per_segment


class LimeParams(ExplainerParams):
    n_samples: int = Field(100, ge=2, description="random on/off patterns of the segments per image")
    segmentation: Segmentation = Field("slic", description="slic superpixels or a square grid")
    n_segments: int = Field(50, ge=2, description="target number of SLIC superpixels")
    cell: int = Field(16, ge=1, description="grid cell side in pixels (segmentation=grid)")
    baseline: BaselineKind = Field("zeros", description="what an 'off' segment shows (see integrated_gradients)")
    blur_sigma: float = Field(5.0, gt=0)
    ridge_alpha: float = Field(1.0, ge=0, description="L2 penalty of the local linear surrogate")
    perturbations_per_eval: int = Field(16, ge=1)


class Lime(Explainer):
    """Signed: each pixel carries its segment's coefficient in a ridge surrogate fitted to the target logit
    on random segment on/off patterns (cosine-distance exponential kernel). The mask spans all channels,
    so channels are equal and the map is their mean. Sampling seeded by context.seed.
    """

    name = "lime"
    unit = "weight of the pixel's segment in a local linear model of the score"
    title = "LIME"
    signed = True
    legend = (
        "Coefficients of a local linear surrogate fitted to the class score on random subsets of "
        "superpixels turned off (set to the baseline). Model-agnostic; piecewise constant over segments; "
        "varies with the segmentation, the sample count and the seed."
    )
    Params = LimeParams

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        lime = _Lime(model, interpretable_model=SkLearnRidge(alpha=p.ridge_alpha))
        baselines = make_baseline(p.baseline, inputs, self.context, p.blur_sigma)
        return attribute_per_segment(lime, inputs, baselines, targets, p, self.context.seed)
