"""Sanity checks that expose gradient masking, and robust accuracy that is only reported when they pass.

A gradient attack's accuracy is an upper bound on robust accuracy; it is a useful one only when the attack
works. Following Carlini et al. (2019, "On evaluating adversarial robustness") and Athalye et al. (2018,
"Obfuscated gradients give a false sense of security"), four checks, each with a slack of a few samples:

- ``monotone_in_eps``: accuracy does not rise as eps grows (clean accuracy first);
- ``unbounded_attack``: an attack whose ball covers the whole [0, 1] box (eps 1 for L-inf, the box diagonal for
  L2) brings accuracy to about 0 (at most ``max_unbounded_accuracy``);
- ``more_steps``: five times the steps never leave the model more accurate;
- ``nonzero_gradients``: the loss gradient is not exactly zero (or non-finite) at the correctly classified
  inputs (a quantiser, a saturated softmax or a non-differentiable layer gives zero gradients).

A model that fails any check is "robustness not measurable": its attacked accuracy is kept as an upper bound
only, never reported as its robust accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audit.scoring.ranking import wilson

from .attacks import AttackOutcome, Norm, PGDConfig, eval_mode, pgd


@dataclass(frozen=True)
class MaskingConfig:
    norm: Norm = "linf"
    eps_grid: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
    steps: int = 10
    more_steps_factor: int = 5
    unbounded_steps: int = 50
    max_unbounded_accuracy: float = 0.02
    slack_samples: int = 2
    max_zero_gradient_share: float = 0.01


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class MaskingVerdict:
    """The checks, the accuracy curve they measured (eps 0 first) and the conclusion."""

    checks: tuple[Check, ...]
    eps: tuple[float, ...]
    accuracy: tuple[float, ...]
    n: int

    @property
    def measurable(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def status(self) -> Literal["measurable", "not_measurable"]:
        return "measurable" if self.measurable else "not_measurable"

    @property
    def reason(self) -> str:
        failed = [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]
        return "; ".join(failed) if failed else "all gradient-masking checks passed"


def _accuracy(outcome: AttackOutcome) -> float:
    return float(outcome.robust_correct.float().mean())


def zero_gradient_share(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Share of correctly classified samples whose input gradient of the cross-entropy is all zero or
    non-finite."""
    with eval_mode(model):
        xg = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = model(xg)
            grad, = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), xg)
    ok = logits.detach().argmax(1) == y
    if not ok.any():
        return 0.0
    flat = grad[ok].flatten(1)
    dead = (flat == 0).all(1) | ~torch.isfinite(flat).all(1)
    return float(dead.float().mean())


def gradient_masking_checks(model: nn.Module, x: Tensor, y: Tensor, cfg: MaskingConfig,
                            generator: torch.Generator) -> MaskingVerdict:
    """Run the four checks with PGD on one batch (x in [0, 1])."""
    n = len(y)
    slack = cfg.slack_samples / max(n, 1)
    with eval_mode(model), torch.no_grad():
        clean = float((model(x).argmax(1) == y).float().mean())
    grid = sorted(cfg.eps_grid)
    accs = [clean] + [_accuracy(pgd(model, x, y, PGDConfig(e, cfg.norm, cfg.steps), generator)) for e in grid]
    rises = [(grid[i - 1] if i > 1 else 0.0, grid[i - 1], accs[i - 1], accs[i]) for i in range(1, len(accs))
             if accs[i] > accs[i - 1] + slack]
    checks = [Check("monotone_in_eps", not rises,
                    "accuracy never rises with eps" if not rises else
                    "; ".join(f"accuracy {a:.3f} -> {b:.3f} as eps grows to {e:.4g}" for _, e, a, b in rises))]
    box = 1.0 if cfg.norm == "linf" else math.sqrt(x[0].numel())
    unb = _accuracy(pgd(model, x, y, PGDConfig(box, cfg.norm, cfg.unbounded_steps), generator))
    checks.append(Check("unbounded_attack", unb <= cfg.max_unbounded_accuracy,
                        f"accuracy {unb:.3f} with eps covering the whole image box "
                        f"(must be <= {cfg.max_unbounded_accuracy:.3f})"))
    top = grid[-1]
    many = _accuracy(pgd(model, x, y, PGDConfig(top, cfg.norm, cfg.steps * cfg.more_steps_factor), generator))
    checks.append(Check("more_steps", many <= accs[-1] + slack,
                        f"accuracy {accs[-1]:.3f} with {cfg.steps} steps, {many:.3f} with "
                        f"{cfg.steps * cfg.more_steps_factor} at eps {top:.4g}"))
    zero = zero_gradient_share(model, x, y)
    checks.append(Check("nonzero_gradients", zero <= cfg.max_zero_gradient_share,
                        f"{zero:.1%} of correctly classified inputs have an all-zero or non-finite loss gradient"))
    return MaskingVerdict(tuple(checks), (0.0, *grid), tuple(accs), n)


@dataclass(frozen=True)
class RobustAccuracy:
    """Accuracy under an attack at ``eps`` with its Wilson 95 % interval, or "not_measurable" (then
    ``accuracy`` and ``interval`` are None and ``attacked_accuracy`` is only an upper bound)."""

    attack: str
    norm: Norm
    eps: float
    n: int
    clean_correct: int
    robust_correct: int
    status: Literal["measured", "not_measurable"]
    reason: str
    attacked_accuracy: float
    accuracy: float | None
    interval: tuple[float, float] | None


def robust_accuracy(outcome: AttackOutcome, attack: str, norm: Norm, eps: float, verdict: MaskingVerdict
                    ) -> RobustAccuracy:
    n = int(outcome.clean_correct.numel())
    k = int(outcome.robust_correct.sum())
    attacked = k / n if n else float("nan")
    measured = verdict.measurable
    return RobustAccuracy(attack, norm, eps, n, int(outcome.clean_correct.sum()), k,
                          "measured" if measured else "not_measurable", verdict.reason, attacked,
                          attacked if measured else None, wilson(k, n) if measured else None)
