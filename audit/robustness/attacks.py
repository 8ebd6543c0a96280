"""Projected gradient descent (Madry et al. 2018) under L-inf and L2 budgets, batched, on inputs in [0, 1].

The model sees [0, 1] images; put the mean/std normalisation inside it (``Normalised``). It runs in eval mode
(its mode is restored afterwards) and gradients are taken with respect to the input only. Every iterate's
prediction is recorded (each step's forward pass gives it for free); a sample counts as broken if any iterate
of any restart is misclassified, and its adversarial example is the first such iterate. Restarts attack only
the samples still standing. Random starts use an explicit ``torch.Generator`` (drawn on its device).

Definitions as in torchattacks 3.3 (MIT; ``PGD``, ``PGDL2``), own code: L-inf start U(-eps, eps), step
alpha sign(grad); L2 start a uniform-radius point along a Gaussian direction, step alpha grad / ||grad||;
each step projected onto the eps-ball around x and clipped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Norm = Literal["linf", "l2"]


class Normalised(nn.Module):
    """model((x - mean) / std): the attack's [0, 1] inputs, the model's normalised ones."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.model((x - self.mean) / self.std)


@dataclass(frozen=True)
class PGDConfig:
    """eps: budget in [0, 1] pixel units (L-inf) or the L2 norm of the whole perturbation. step_size: alpha
    (default 2.5 eps / steps, Madry et al.)."""

    eps: float
    norm: Norm = "linf"
    steps: int = 10
    step_size: float | None = None
    restarts: int = 1
    random_start: bool = True

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.eps / max(self.steps, 1)


@dataclass(frozen=True)
class AttackOutcome:
    """Per sample: prediction on the clean input, whether some tried perturbation broke it (only counted for
    samples correct on the clean input), and the adversarial input (the clean one where none was found)."""

    x_adv: Tensor
    clean_correct: Tensor
    broken: Tensor

    @property
    def robust_correct(self) -> Tensor:
        return self.clean_correct & ~self.broken


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Every submodule in eval mode while inside; each gets its own mode back afterwards. (Restoring the root's
    mode recursively would put a fresh wrapper's model, e.g. ``Normalised(audited_model)``, in training mode.)"""
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in was:
            m.training = training


def draw(shape: tuple[int, ...], g: torch.Generator | None, like: Tensor, kind: str) -> Tensor:
    dev = g.device if g is not None else like.device
    t = torch.rand(shape, generator=g, device=dev) if kind == "uniform" else torch.randn(shape, generator=g,
                                                                                        device=dev)
    return t.to(like.device, like.dtype)


def flat_norm(t: Tensor) -> Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.ndim - 1)))


def project(x: Tensor, x_adv: Tensor, eps: float, norm: Norm) -> Tensor:
    """Onto the eps-ball around x, then the [0, 1] box."""
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * (eps / flat_norm(delta).clamp(min=1e-12)).clamp(max=1.0)
    return (x + delta).clamp(0.0, 1.0)


def random_start(x: Tensor, eps: float, norm: Norm, g: torch.Generator | None) -> Tensor:
    if norm == "linf":
        return (x + (2 * draw(tuple(x.shape), g, x, "uniform") - 1) * eps).clamp(0, 1)
    d = draw(tuple(x.shape), g, x, "normal")
    r = draw((x.shape[0],), g, x, "uniform").view(-1, *([1] * (x.ndim - 1)))
    return (x + d / flat_norm(d).clamp(min=1e-12) * r * eps).clamp(0, 1)


def ascent_direction(grad: Tensor, norm: Norm) -> Tensor:
    return grad.sign() if norm == "linf" else grad / (flat_norm(grad) + 1e-10)


def loss_and_grad(model: nn.Module, x_adv: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample cross-entropy, its input gradient and the logits."""
    x_adv = x_adv.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x_adv)
        loss = F.cross_entropy(logits, y, reduction="none")
        grad, = torch.autograd.grad(loss.sum(), x_adv)
    return loss.detach(), grad.detach(), logits.detach()


class Tracker:
    """The first misclassified iterate of each sample of a batch."""

    def __init__(self, x: Tensor) -> None:
        self.x_adv = x.detach().clone()
        self.broken = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)

    def update(self, idx: Tensor, x_iter: Tensor, logits: Tensor, y: Tensor) -> None:
        new = (logits.argmax(1) != y) & ~self.broken[idx]
        if new.any():
            self.x_adv[idx[new]] = x_iter[new].detach()
            self.broken[idx[new]] = True


def _pgd_run(model: nn.Module, x: Tensor, y: Tensor, cfg: PGDConfig, g: torch.Generator | None,
             idx: Tensor, track: Tracker) -> None:
    x_adv = random_start(x, cfg.eps, cfg.norm, g) if cfg.random_start else x.clone()
    for _ in range(cfg.steps):
        _, grad, logits = loss_and_grad(model, x_adv, y)
        track.update(idx, x_adv, logits, y)
        x_adv = project(x, x_adv + cfg.alpha * ascent_direction(grad, cfg.norm), cfg.eps, cfg.norm)
    with torch.no_grad():
        track.update(idx, x_adv, model(x_adv), y)


def run_attack(model: nn.Module, x: Tensor, y: Tensor, restarts: int,
               one_run: Callable[[Tensor, Tensor, Tensor, Tracker], None],
               clean_correct: Tensor | None = None) -> AttackOutcome:
    """Clean predictions (unless given: the audit's scoring pass has them), then ``restarts`` runs of
    ``one_run(x_sub, y_sub, idx, tracker)`` on the samples that are correct and not yet broken."""
    with eval_mode(model):
        if clean_correct is None:
            with torch.no_grad():
                clean_correct = model(x).argmax(1) == y
        clean_correct = clean_correct.to(device=x.device, dtype=torch.bool)
        track = Tracker(x)
        for _ in range(restarts):
            idx = torch.nonzero(clean_correct & ~track.broken).flatten()
            if len(idx) == 0:
                break
            one_run(x[idx], y[idx], idx, track)
    return AttackOutcome(track.x_adv, clean_correct, track.broken & clean_correct)


def pgd(model: nn.Module, x: Tensor, y: Tensor, cfg: PGDConfig, generator: torch.Generator | None = None,
        clean_correct: Tensor | None = None) -> AttackOutcome:
    """PGD on a batch (x in [0, 1], integer labels y); ``clean_correct`` (bool per sample) saves the clean
    forward pass when the caller has the predictions."""
    if cfg.random_start and generator is None:
        raise ValueError("PGD with a random start needs a seeded torch.Generator")
    return run_attack(model, x, y, cfg.restarts,
                      lambda xs, ys, idx, track: _pgd_run(model, xs, ys, cfg, generator, idx, track), clean_correct)
