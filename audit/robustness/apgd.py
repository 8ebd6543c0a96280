"""APGD-CE (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", Algorithm 1), L-inf and L2, batched; own code after the paper (torchattacks' ``APGD``,
MIT, a port of the authors' code, is the test reference).

Per sample: step size eta starts at 2 eps; x1 = P(x0 + eta d(x0)); then z = P(x_k + eta d(x_k)) and
x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1})). At checkpoints w_j (first after 0.22 N iterations,
each next window 0.03 N shorter, at least 0.06 N) eta is halved and the search restarts from the best point
when (1) the loss rose in fewer than rho = 0.75 of the window's steps, or (2) neither eta nor the best loss
changed since the previous checkpoint. d is sign(grad) (L-inf) or grad / ||grad|| (L2); P projects onto the
eps-ball and [0, 1]. Random start: a uniform point of the L-inf ball's surface direction scaled to eps (as the
authors' code), or eps times a Gaussian direction (L2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .attacks import (
    AttackOutcome,
    Norm,
    Tracker,
    ascent_direction,
    draw,
    flat_norm,
    loss_and_grad,
    project,
    run_attack,
)


@dataclass(frozen=True)
class APGDConfig:
    eps: float
    norm: Norm = "linf"
    steps: int = 100
    restarts: int = 1
    rho: float = 0.75


def checkpoints(steps: int) -> list[int]:
    """Iterations at which the step size is reviewed."""
    first = max(math.ceil(0.22 * steps), 1)
    shrink, least = max(math.ceil(0.03 * steps), 1), max(math.ceil(0.06 * steps), 1)
    out, k, w = [], first, first
    while w < steps:
        out.append(w)
        k = max(k - shrink, least)
        w += k
    return out


def _start(x: Tensor, eps: float, norm: Norm, g: torch.Generator | None) -> Tensor:
    if norm == "linf":
        t = 2 * draw(tuple(x.shape), g, x, "uniform") - 1
        t = t / t.flatten(1).abs().amax(1).clamp(min=1e-12).view(-1, 1, 1, 1)
    else:
        t = draw(tuple(x.shape), g, x, "normal")
        t = t / flat_norm(t).clamp(min=1e-12)
    return (x + eps * t).clamp(0, 1)


def _apgd_run(model: nn.Module, x: Tensor, y: Tensor, cfg: APGDConfig, g: torch.Generator | None, idx: Tensor,
              track: Tracker) -> None:
    b = x.shape[0]
    view = (-1, *([1] * (x.ndim - 1)))
    eta = torch.full((b,), 2.0 * cfg.eps, device=x.device, dtype=x.dtype)
    x_k = _start(x, cfg.eps, cfg.norm, g)
    loss, grad, logits = loss_and_grad(model, x_k, y)
    track.update(idx, x_k, logits, y)
    best_loss, best_x, best_grad = loss.clone(), x_k.clone(), grad.clone()
    x_prev = x_k.clone()
    increases = torch.zeros(b, device=x.device)
    eta_last, best_last = eta.clone(), best_loss.clone()
    marks = set(checkpoints(cfg.steps))
    start = 0
    for k in range(cfg.steps):
        z = project(x, x_k + eta.view(view) * ascent_direction(grad, cfg.norm), cfg.eps, cfg.norm)
        a = 0.75 if k > 0 else 1.0
        x_new = project(x, x_k + a * (z - x_k) + (1 - a) * (x_k - x_prev), cfg.eps, cfg.norm)
        new_loss, new_grad, logits = loss_and_grad(model, x_new, y)
        track.update(idx, x_new, logits, y)
        increases += (new_loss > loss).float()
        better = new_loss > best_loss
        best_loss = torch.where(better, new_loss, best_loss)
        best_x[better], best_grad[better] = x_new[better], new_grad[better]
        x_prev, x_k, loss, grad = x_k, x_new, new_loss, new_grad
        if k + 1 in marks:
            window = k + 1 - start
            cond1 = increases < cfg.rho * window
            cond2 = (eta == eta_last) & (best_loss == best_last)
            cut = cond1 | cond2
            eta_last, best_last = eta.clone(), best_loss.clone()
            eta = torch.where(cut, eta / 2, eta)
            x_k[cut], grad[cut] = best_x[cut], best_grad[cut]
            x_prev[cut] = best_x[cut]
            increases.zero_()
            start = k + 1


def apgd(model: nn.Module, x: Tensor, y: Tensor, cfg: APGDConfig, generator: torch.Generator | None = None,
         clean_correct: Tensor | None = None) -> AttackOutcome:
    """APGD-CE on a batch (x in [0, 1], integer labels y); restarts attack the samples still standing;
    ``clean_correct`` as for ``pgd``."""
    if generator is None:
        raise ValueError("APGD starts at a random point: pass a seeded torch.Generator")
    return run_attack(model, x, y, cfg.restarts,
                      lambda xs, ys, idx, track: _apgd_run(model, xs, ys, cfg, generator, idx, track), clean_correct)
