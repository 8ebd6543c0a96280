"""A test-only explainer: this module and one line of entry_points.txt are all it takes."""

from __future__ import annotations

import torch
from torch import nn

from audit.explainers.base import Explainer


class InputTimesGradient(Explainer):
    """Signed: the input times the gradient of the target output, summed over channels."""

    name = "toy_input_x_gradient"
    title = "toy: input × gradient"
    signed = True
    legend = "The input times the gradient of the explained output, summed over channels (test-only)."
    unit = "toy unit: input × ∂ output / ∂ input"

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = inputs.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out = model(x)
            (grad,) = torch.autograd.grad(out.gather(1, targets[:, None].to(out.device)).sum(), x)
        return (grad * x).sum(dim=1).detach().float().cpu()
