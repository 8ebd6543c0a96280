"""PGD and APGD against torchattacks 3.3 on the same model, subset and eps (robust accuracy within 1 point);
the attack contract (budget, box, eval mode, seeding); gradient-masking checks on a clean model and on two
deliberately masked twins (an input quantiser, a saturated softmax)."""

from __future__ import annotations

import pytest
import torch
import torchattacks
from torch import nn

from audit.robustness import (
    APGDConfig,
    MaskingConfig,
    Normalised,
    PGDConfig,
    apgd,
    gradient_masking_checks,
    pgd,
    robust_accuracy,
)

N = 200


@pytest.fixture(scope="module")
def batch(digits):
    return digits.x_test[:N], digits.y_test[:N]


def _ta_accuracy(model: nn.Module, attack, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> float:
    torch.manual_seed(seed)  # torchattacks draws its random start from torch's global generator
    adv = attack(x, y)
    with torch.no_grad():
        return float((model(adv).argmax(1) == y).float().mean())


def _ours(outcome) -> float:
    return float(outcome.robust_correct.float().mean())


@pytest.mark.parametrize("norm,eps", [("linf", 2 / 255), ("linf", 8 / 255), ("l2", 0.25), ("l2", 1.0)])
def test_pgd_agrees_with_torchattacks(digit_model, batch, norm: str, eps: float) -> None:
    x, y = batch
    cfg = PGDConfig(eps, norm, steps=10)
    ours = _ours(pgd(digit_model, x, y, cfg, torch.Generator().manual_seed(0)))
    cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    ref = _ta_accuracy(digit_model, cls(digit_model, eps=eps, alpha=cfg.alpha, steps=10), x, y)
    assert abs(ours - ref) <= 0.01
    with torch.no_grad():
        clean = float((digit_model(x).argmax(1) == y).float().mean())
    assert ours < clean - 0.02 or eps < 0.01  # the attack bites


@pytest.mark.parametrize("norm,eps", [("linf", 8 / 255), ("l2", 0.5)])
def test_apgd_agrees_with_torchattacks(digit_model, batch, norm: str, eps: float) -> None:
    x, y = batch
    ours = _ours(apgd(digit_model, x, y, APGDConfig(eps, norm, steps=20), torch.Generator().manual_seed(0)))
    ta_norm = "Linf" if norm == "linf" else "L2"
    ref = _ta_accuracy(digit_model, torchattacks.APGD(digit_model, norm=ta_norm, eps=eps, steps=20, seed=0), x, y)
    assert abs(ours - ref) <= 0.01


def test_attack_contract(digit_model, batch) -> None:
    x, y = batch[0][:64], batch[1][:64]
    for norm, eps in (("linf", 4 / 255), ("l2", 0.5)):
        for attack, cfg in ((pgd, PGDConfig(eps, norm, 5, restarts=2)), (apgd, APGDConfig(eps, norm, 10))):
            out = attack(digit_model, x, y, cfg, torch.Generator().manual_seed(5))
            delta = (out.x_adv - x).flatten(1)
            size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
            assert float(size.max()) <= eps * (1 + 1e-5) + 1e-6
            assert float(out.x_adv.min()) >= 0 and float(out.x_adv.max()) <= 1
            with torch.no_grad():  # every broken sample's stored example is misclassified
                assert (digit_model(out.x_adv[out.broken]).argmax(1) != y[out.broken]).all()
            assert torch.equal(out.x_adv, attack(digit_model, x, y, cfg, torch.Generator().manual_seed(5)).x_adv)
    more = pgd(digit_model, x, y, PGDConfig(4 / 255, "linf", 5, restarts=3), torch.Generator().manual_seed(5))
    one = pgd(digit_model, x, y, PGDConfig(4 / 255, "linf", 5, restarts=1), torch.Generator().manual_seed(5))
    assert _ours(more) <= _ours(one)  # restarts only add chances (the first restart is the same run)


def test_attacks_run_in_eval_mode_and_restore_the_mode(batch) -> None:
    x, y = batch[0][:32], batch[1][:32]
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * 32 * 32, 10))
    model.train()
    a = pgd(model, x, y, PGDConfig(4 / 255, "linf", 3), torch.Generator().manual_seed(0))
    b = pgd(model, x, y, PGDConfig(4 / 255, "linf", 3), torch.Generator().manual_seed(0))
    assert torch.equal(a.x_adv, b.x_adv)  # dropout off during the attack, else the runs would differ
    assert model.training


def test_a_wrapped_model_keeps_each_layers_own_mode(batch) -> None:
    """The stage wraps the audited (eval-mode) model in a fresh Normalised, whose own flag says training: every
    layer must get its own mode back, or batch norm would update its statistics on every later pass."""
    x, y = batch[0][:8], batch[1][:8]
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Dropout(0.5), nn.LazyLinear(10))
    model(x)
    model.eval()
    model[3].train()  # a layer the user left in training mode keeps it too
    net = Normalised(model, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert net.training
    pgd(net, x, y, PGDConfig(4 / 255, "linf", 2), torch.Generator().manual_seed(0))
    assert [m.training for m in model.modules()] == [False, False, False, False, True, False]
    assert net.training


def test_normalisation_lives_inside_the_model(digit_model, batch) -> None:
    x = batch[0][:8]
    mean, std = (0.2, 0.3, 0.4), (0.5, 0.6, 0.7)
    inner = nn.Sequential(nn.Conv2d(3, 3, 1), digit_model)
    wrapped = Normalised(inner, mean, std)
    manual = inner((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    assert torch.allclose(wrapped(x), manual)


class Quantised(nn.Module):
    """Input rounded to 5 levels: zero gradients almost everywhere (gradient masking by a non-differentiable
    layer)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * 4) / 4)


class Saturated(nn.Module):
    """Log of a softmax of logits x 1000: in float32 the loss saturates and its gradient vanishes."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.softmax(self.inner(x) * 1000, 1).clamp(min=1e-30))


FAST = MaskingConfig(eps_grid=(2 / 255, 8 / 255), steps=5, more_steps_factor=3, unbounded_steps=20)


def test_gradient_masking_checks_pass_the_clean_model_and_flag_masked_twins(digit_model, batch) -> None:
    x, y = batch[0][:100], batch[1][:100]
    clean = gradient_masking_checks(digit_model, x, y, FAST, torch.Generator().manual_seed(0))
    assert clean.measurable, clean.reason
    assert clean.accuracy[0] > clean.accuracy[-1] + 0.1  # the attack works on the clean model
    outcome = pgd(digit_model, x, y, PGDConfig(8 / 255, "linf", 5), torch.Generator().manual_seed(1))
    ra = robust_accuracy(outcome, "pgd", "linf", 8 / 255, clean)
    assert ra.status == "measured" and ra.accuracy is not None and ra.interval[0] <= ra.accuracy <= ra.interval[1]

    for masked in (Quantised(digit_model), Saturated(digit_model)):
        verdict = gradient_masking_checks(masked, x, y, FAST, torch.Generator().manual_seed(0))
        failed = {c.name for c in verdict.checks if not c.passed}
        assert not verdict.measurable and {"unbounded_attack", "nonzero_gradients"} <= failed, verdict.reason
        outcome = pgd(masked, x, y, PGDConfig(8 / 255, "linf", 5), torch.Generator().manual_seed(1))
        ra = robust_accuracy(outcome, "pgd", "linf", 8 / 255, verdict)
        # the masked model looks more robust than the clean one, and is never reported as robust
        assert ra.attacked_accuracy > clean.accuracy[-1] + 0.2
        assert ra.status == "not_measurable" and ra.accuracy is None and ra.interval is None
