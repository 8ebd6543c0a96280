"""Class activation mapping (Zhou et al. 2016) for networks with a global-average-pooling + linear head."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from ..errors import ExplainerError
from .base import Explainer, ExplainerParams
from .gradcam import upsample
from .layers import last_linear, require_hooks


class CAMParams(ExplainerParams):
    relu: bool = Field(False, description="clip negative evidence to zero (Zhou et al. show the raw map)")


class CAM(Explainer):
    """Signed: CAM_c = sum_k w[c, k] A_k over the feature map A that feeds the global average pool.

    Raw (no ReLU unless ``relu``), no bias term, upsampled bilinearly; the class logit is mean(CAM) + bias.
    Only for heads that are exactly GAP + one nn.Linear; any other head is an ExplainerError.
    """

    name = "cam"
    unit = "classifier-weighted feature map, logit units (the map's mean is the logit minus the bias)"
    title = "CAM"
    signed = True
    legend = (
        "Class activation map: the final feature maps weighted by the classifier weights of the class. "
        "Exact decomposition of the logit for global-average-pool + linear heads (the logit is the map's "
        "mean plus the bias); negative = evidence against. Coarse, like Grad-CAM."
    )
    Params = CAMParams

    def check(self, model: nn.Module) -> None:
        require_hooks(model)
        last_linear(model)  # the rest (GAP feeding that Linear) is verified on the forward pass in explain()

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.check(model)
        feats, weight = self._gap_features(model, inputs)
        w = weight[targets.to(weight.device)]  # (B, K)
        cam = torch.einsum("bk,bkhw->bhw", w.to(feats.dtype), feats)
        if self.params.relu:
            cam = cam.clamp_min(0)
        return upsample(cam, tuple(inputs.shape[-2:])).float().cpu()

    @staticmethod
    def _gap_features(model: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (B, K, h, w) map whose spatial mean is the head's input, and the head's weight (C, K)."""
        fc_name, fc = last_linear(model)
        k = fc.in_features
        maps: list[torch.Tensor] = []
        head: dict[str, torch.Tensor] = {}

        def on_map(_m: nn.Module, _i: tuple, out: object) -> None:
            if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[1] == k:
                maps.append(out.detach().clone())

        def on_fc(_m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            head.setdefault("in", inp[0].detach().clone())
            head.setdefault("out", out.detach().clone())

        handles = [m.register_forward_hook(on_map) for m in model.modules()]
        handles.append(fc.register_forward_hook(on_fc))
        try:
            with torch.no_grad():
                logits = model(inputs)
        finally:
            for h in handles:
                h.remove()
        if "in" not in head or head["in"].shape != (inputs.shape[0], k):
            raise ExplainerError(f"CAM: the last Linear {fc_name!r} did not receive one {k}-vector per image")
        if not torch.allclose(logits, head["out"], rtol=1e-4, atol=1e-5):
            raise ExplainerError(f"CAM needs the last Linear {fc_name!r} to be the model output; layers follow it")
        # the last map the head averages; pooled (B, K, 1, 1) outputs match trivially (even max pools): skip them
        for m in reversed(maps):
            if m.shape[2] * m.shape[3] > 1 and torch.allclose(m.mean(dim=(2, 3)), head["in"], rtol=1e-4, atol=1e-5):
                return m, fc.weight.detach()
        raise ExplainerError(
            f"CAM needs a global-average-pooling + linear head: the input of the last Linear {fc_name!r} "
            f"is not the spatial mean of any (B, {k}, h, w) feature map with h * w > 1"
        )
