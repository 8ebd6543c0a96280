"""Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019) for plain layer chains.

Written here rather than wrapping captum's LRP, which silently returns non-conserving maps on residual
networks. Every run checks conservation (input relevance sum vs the target logit) and raises instead of
returning a map that violates it.

Conventions (the "ignore bias" variant, zennit ``zero_params='bias'``, iNNvestigate ``...IgnoreBias``):
biases are left out of the rule denominators, so each conv/linear layer redistributes all the relevance
it receives and the input relevance adds up to the target logit (up to the epsilon stabiliser).
BatchNorm after a conv/linear layer is folded into its weights; ReLU, dropout, flatten and identity pass
relevance through unchanged; max pooling is winner-take-all, average pooling proportional.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from ..errors import ExplainerError
from .base import Explainer, ExplainerParams
from .lrp_chain import BATCHNORM, LINEAR, POOL, Step, check_supported, trace

LinearFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class LRPParams(ExplainerParams):
    rule: Literal["epsilon", "gamma", "alpha_beta"] = Field(
        "epsilon", description="rule for conv/linear layers; the first one (signed input) always uses epsilon "
        "under gamma"
    )
    epsilon: float = Field(1e-6, ge=0, description="stabiliser added to denominators; the relevance "
                           "it absorbs counts against conservation, so raise tolerance with it")
    gamma: float = Field(0.25, ge=0, description="weight on positive weights for the gamma rule")
    alpha: float = Field(1.0, ge=1, description="alpha of the alpha-beta rule (alpha - beta must be 1)")
    beta: float = Field(0.0, ge=0)
    tolerance: float = Field(0.05, gt=0, description="allowed |sum(R) - logit| / |logit| before refusing the map")
    abs_tolerance: float = Field(1e-4, ge=0, description="absolute slack for logits near zero")

    @model_validator(mode="after")
    def _alpha_beta(self) -> LRPParams:
        if abs(self.alpha - self.beta - 1.0) > 1e-9:
            raise ValueError("alpha - beta must equal 1 for relevance to be conserved")
        return self


def _stab(z: torch.Tensor, eps: float) -> torch.Tensor:
    return z + eps * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


def _prop(fn: LinearFn, a: torch.Tensor, w: torch.Tensor, r: torch.Tensor, eps: float) -> torch.Tensor:
    """R_in = a * d/da[ fn(a, w) . s ] with s = R / stab(fn(a, w)): the generic LRP step (gradient trick)."""
    a = a.detach().requires_grad_(True)
    z = fn(a, w)
    s = (r / _stab(z, eps)).detach()
    (c,) = torch.autograd.grad((z * s).sum(), a)
    return a.detach() * c


def _linear_fn(m: nn.Module) -> LinearFn:
    if isinstance(m, nn.Linear):
        return lambda a, w: F.linear(a, w)
    return lambda a, w: F.conv2d(a, w, None, m.stride, m.padding, m.dilation, m.groups)


def _pool_fn(m: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    if isinstance(m, nn.MaxPool2d):
        return lambda a: F.max_pool2d(a, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
    if isinstance(m, nn.AvgPool2d):
        return lambda a: F.avg_pool2d(a, m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                                      m.divisor_override)
    return lambda a: F.adaptive_avg_pool2d(a, m.output_size)


def _bn_scale(bn: nn.Module, dtype: torch.dtype) -> torch.Tensor:
    w = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
    return (w / torch.sqrt(bn.running_var + bn.eps)).detach().to(dtype)


class LRP(Explainer):
    """Signed: input relevance summed over channels; per image it adds up to the target logit.

    Supports plain chains of Conv2d / Linear / BatchNorm / ReLU / max and average pooling / Flatten /
    Dropout; anything else (residual blocks, reused modules, other layer types) raises ExplainerError
    naming the layer, as does a map whose relevance sum misses the logit by more than ``tolerance``.
    """

    name = "lrp"
    unit = "relevance, logit units (sums to the logit)"
    title = "LRP"
    signed = True
    legend = (
        "Layer-wise relevance propagation: the class logit redistributed backwards layer by layer in "
        "proportion to each input's contribution, so the map adds up to the logit (checked on every run). "
        "Plain conv/linear/ReLU/pool/batchnorm chains only; residual networks are refused."
    )
    Params = LRPParams

    def check(self, model: nn.Module) -> None:
        check_supported(model)

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        per_layer, logit = self.relevances(model, inputs, targets)
        rel = per_layer[-1][1]
        self._check_conservation(rel, logit)
        return rel.sum(dim=1).float().cpu()

    def relevances(
        self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[list[tuple[str, torch.Tensor]], torch.Tensor]:
        """[(layer name, relevance at that layer's input)] from the top layer down, and the target logits.

        The last entry is the relevance of the model input (B, C, H, W), computed in float64.
        """
        steps, logits = trace(model, inputs)
        idx = targets.to(logits.device).view(-1, 1)
        logit = logits.double().gather(1, idx).squeeze(1)
        r = torch.zeros_like(logits, dtype=torch.float64).scatter(1, idx, logit.view(-1, 1))
        first_linear = next((i for i, s in enumerate(steps) if isinstance(s.module, LINEAR)), -1)
        out: list[tuple[str, torch.Tensor]] = []
        i = len(steps) - 1
        with torch.enable_grad():
            while i >= 0:
                st = steps[i]
                r = r.reshape(st.output.shape)
                if isinstance(st.module, BATCHNORM) and i > 0 and isinstance(steps[i - 1].module, LINEAR):
                    lin = steps[i - 1]  # fold BN into the conv/linear feeding it; one step covers both
                    r = self._linear(lin, r, _bn_scale(st.module, torch.float64), i - 1 == first_linear)
                    out.append((f"{lin.name}+{st.name}", r))
                    i -= 2
                    continue
                r = self._step(st, r, i == first_linear)
                out.append((st.name, r))
                i -= 1
        out[-1] = (out[-1][0], out[-1][1].reshape(inputs.shape))
        return out, logit

    def _step(self, st: Step, r: torch.Tensor, first: bool) -> torch.Tensor:
        m = st.module
        if isinstance(m, LINEAR):
            return self._linear(st, r, None, first)
        if isinstance(m, POOL):
            fn = _pool_fn(m)
            return _prop(lambda a, _w: fn(a), st.input.double(), torch.empty(0), r, self.params.epsilon)
        return r.reshape(st.input.shape)  # BatchNorm alone, ReLU, Flatten, Dropout, Identity

    def _linear(self, st: Step, r: torch.Tensor, scale: torch.Tensor | None, first: bool) -> torch.Tensor:
        p = self.params
        w = st.module.weight.detach().double()
        if scale is not None:  # BN folding scales each output channel / unit
            w = w * scale.view(-1, *([1] * (w.dim() - 1)))
        fn, a = _linear_fn(st.module), st.input.double()
        if p.rule == "epsilon" or (p.rule == "gamma" and first):
            return _prop(fn, a, w, r, p.epsilon)
        if p.rule == "gamma":
            return _prop(fn, a, w + p.gamma * w.clamp_min(0), r, p.epsilon)
        return self._alpha_beta(fn, a, w, r)

    def _alpha_beta(self, fn: LinearFn, a: torch.Tensor, w: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """alpha * (share of positive contributions a_j w_jk > 0) - beta * (share of negative ones)."""
        p = self.params
        ap, an, wp, wn = a.clamp_min(0), a.clamp_max(0), w.clamp_min(0), w.clamp_max(0)
        pos = self._two_part(fn, (ap, wp), (an, wn), r, p.epsilon)
        if p.beta == 0:
            return p.alpha * pos
        neg = self._two_part(fn, (ap, wn), (an, wp), r, p.epsilon)
        return p.alpha * pos - p.beta * neg

    @staticmethod
    def _two_part(fn: LinearFn, x: tuple, y: tuple, r: torch.Tensor, eps: float) -> torch.Tensor:
        """Relevance for contributions fn(a1, w1) + fn(a2, w2), which all share one sign."""
        a1 = x[0].detach().requires_grad_(True)
        a2 = y[0].detach().requires_grad_(True)
        z = fn(a1, x[1]) + fn(a2, y[1])
        s = (r / _stab(z, eps)).detach()
        c1, c2 = torch.autograd.grad((z * s).sum(), (a1, a2))
        return a1.detach() * c1 + a2.detach() * c2

    def _check_conservation(self, rel: torch.Tensor, logit: torch.Tensor) -> None:
        total = rel.flatten(1).sum(dim=1)
        err = (total - logit).abs()
        bad = err > self.params.tolerance * logit.abs() + self.params.abs_tolerance
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ExplainerError(
                f"LRP: relevance not conserved for image {i} of the batch: input relevance sums to "
                f"{float(total[i]):.6g} but the target logit is {float(logit[i]):.6g} (tolerance "
                f"{self.params.tolerance:.0%}); the map is withheld"
            )
