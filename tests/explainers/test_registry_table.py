"""Every registered explainer: output contract, determinism, no leftover hooks or state, registry completeness."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random

import numpy as np
import pytest
import torch
from torch import nn

import audit.explainers as pkg
from audit.errors import ConfigError
from audit.explainers import ExplainContext, Explainer, build_explainer, registry
from audit.tasks.anomaly import AnomalyTask

VIT_ONLY = {"attention_rollout", "transformer_lrp"}
# keep the sampling methods small so the table runs in seconds
FAST = {
    "smoothgrad": {"n_samples": 4},
    "lime": {"n_samples": 30, "n_segments": 8},
    "kernel_shap": {"n_samples": 30, "n_segments": 8},
    "feature_inversion": {"steps": 5},
    "occlusion": {"window": 4, "stride": 4},
}
NAMES = sorted(registry())


MAP_ONLY = {"anomaly_map"}  # reads the anomaly map a detector returns (under the anomaly task's explaining)


class MapDetector(nn.Module):
    """An anomaly detector returning a map (B, 1, H, W): a fixed conv of the input, squared."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.conv = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) ** 2


def model_for(name: str, cnn: nn.Module, vit: nn.Module) -> nn.Module:
    if name in MAP_ONLY:
        return MapDetector().eval()
    return vit if name in VIT_ONLY else cnn


def run(name: str, model: nn.Module, x: torch.Tensor, t: torch.Tensor, seed: int = 0) -> torch.Tensor:
    ex = build_explainer(name, FAST.get(name), ExplainContext(seed=seed, dataset_mean=torch.zeros(3, 16, 16)))
    ex.check(model)
    if name in MAP_ONLY:
        with AnomalyTask(("normal", "anomalous")).explaining(model, x) as m:
            return ex.explain(m, x, torch.ones_like(t))
    return ex.explain(model, x, t)


@pytest.mark.parametrize("name", NAMES)
def test_output_contract_and_determinism(name: str, cnn: nn.Module, vit: nn.Module, batch: tuple) -> None:
    model = model_for(name, cnn, vit)
    x, t = batch
    a = run(name, model, x, t)
    b = run(name, model, x, t)
    assert a.shape == (2, 16, 16)
    assert a.dtype == torch.float32 and a.device.type == "cpu"
    assert torch.isfinite(a).all()
    assert a.abs().max() > 0, "all-zero map"
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    if not registry()[name].signed:
        assert a.min() >= 0


@pytest.mark.parametrize("name", NAMES)
def test_leaves_no_hooks_grads_mode_or_rng_change(name: str, cnn: nn.Module, vit: nn.Module, batch: tuple) -> None:
    model = model_for(name, cnn, vit)
    x, t = batch
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    run(name, model, x, t, seed=7)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]
    assert not model.training
    for mname, m in model.named_modules():
        assert not m.training, mname
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            assert len(getattr(m, attr)) == 0, f"{name} left {attr} on {mname!r}"
    for pname, p in model.named_parameters():
        assert p.grad is None, f"{name} left a gradient on {pname}"


def test_seed_changes_sampled_maps(cnn: nn.Module, batch: tuple) -> None:
    x, t = batch
    for name in ("smoothgrad", "lime", "gradient_shap"):
        assert not torch.equal(run(name, cnn, x, t, seed=0), run(name, cnn, x, t, seed=1)), name


def test_every_explainer_module_is_registered() -> None:
    registered = set(registry().values())
    found = []
    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, Explainer) and cls.__module__ == mod.__name__ and not inspect.isabstract(cls):
                found.append(cls)
                assert cls in registered, f"{cls.__name__} in {mod.__name__} is not in the registry"
    assert len(found) == len(registered) >= 17


@pytest.mark.parametrize("name", NAMES)
def test_params_are_documented_and_strict(name: str) -> None:
    cls = registry()[name]
    assert (cls.__doc__ or inspect.getmodule(cls).__doc__) and cls.legend and cls.title
    with pytest.raises(ConfigError, match=r"explainers\.options"):
        build_explainer(name, {"no_such_option": 1})
