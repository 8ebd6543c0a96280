"""LRP against a hand computation, conservation on every rule, and refusal where it cannot be right."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from audit.errors import ExplainerError
from audit.explainers import build_explainer


def two_layer() -> tuple[nn.Module, nn.Linear, nn.Linear]:
    torch.manual_seed(5)
    fc1, fc2 = nn.Linear(4, 3), nn.Linear(3, 2)
    return nn.Sequential(nn.Flatten(), fc1, nn.ReLU(), fc2).eval(), fc1, fc2


def test_lrp_epsilon_two_layer_relu_net_matches_hand_computation() -> None:
    model, fc1, fc2 = two_layer()
    x = torch.tensor([[0.5, -1.0, 2.0, 0.3], [1.5, 0.2, -0.7, 1.1]]).view(2, 1, 2, 2)
    t = torch.tensor([0, 1])
    eps = 1e-4
    ex = build_explainer("lrp", {"rule": "epsilon", "epsilon": eps})
    maps = ex.explain(model, x, t)

    w1, b1 = fc1.weight.detach().double().numpy(), fc1.bias.detach().double().numpy()
    w2, b2 = fc2.weight.detach().double().numpy(), fc2.bias.detach().double().numpy()

    def stab(z: np.ndarray) -> np.ndarray:
        return z + eps * np.where(z >= 0, 1.0, -1.0)

    for i in range(2):
        a0 = x[i].flatten().double().numpy()
        a1 = np.maximum(w1 @ a0 + b1, 0)
        out = w2 @ a1 + b2
        k = int(t[i])
        # top layer: contributions a1_j w2_kj share the logit (bias left out of the denominator)
        r1 = a1 * w2[k] / stab(a1 @ w2[k]) * out[k]
        # ReLU passes relevance unchanged; first layer: contributions a0_i w1_ji share r1_j
        r0 = sum(a0 * w1[j] / stab(w1[j] @ a0) * r1[j] for j in range(3))
        np.testing.assert_allclose(maps[i].flatten().double().numpy(), r0, rtol=1e-5, atol=1e-7)
        # conserved layer to layer up to the stabiliser
        np.testing.assert_allclose([r0.sum(), r1.sum()], [out[k], out[k]], rtol=1e-2)

    per_layer, logit = ex.relevances(model, x, t)
    names = [n for n, _ in per_layer]
    assert names == ["3", "2", "1", "0"]
    for _, r in per_layer:
        torch.testing.assert_close(r.flatten(1).sum(1), logit, rtol=1e-2, atol=1e-6)


@pytest.mark.parametrize(
    "options",
    [{"rule": "epsilon"}, {"rule": "gamma"}, {"rule": "gamma", "gamma": 1.0},
     {"rule": "alpha_beta"}, {"rule": "alpha_beta", "alpha": 2, "beta": 1}],
)
def test_lrp_conserves_on_a_batchnorm_vgg_style_chain(bn_cnn: nn.Module, batch: tuple, options: dict) -> None:
    x, t = batch
    ex = build_explainer("lrp", options)
    maps = ex.explain(bn_cnn, x, t)
    with torch.no_grad():
        logit = bn_cnn(x).gather(1, t.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(maps.flatten(1).sum(1), logit, rtol=0.05, atol=1e-4)
    names = [n for n, _ in ex.relevances(bn_cnn, x, t)[0]]
    assert "4+5" in names and "0+1" in names  # batchnorm folded into the conv before it


def test_lrp_epsilon_tends_to_gradient_times_input_without_biases() -> None:
    torch.manual_seed(6)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(64, 3, bias=False),
    ).eval()
    x, t = torch.randn(1, 3, 8, 8), torch.tensor([1])
    maps = build_explainer("lrp", {"epsilon": 1e-9}).explain(model, x, t)
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xg)[0, 1], xg)
    torch.testing.assert_close(maps, (g * x).sum(1), rtol=1e-4, atol=1e-6)


def test_lrp_withholds_a_map_that_does_not_conserve(cnn: nn.Module, batch: tuple) -> None:
    x, t = batch
    with pytest.raises(ExplainerError, match="not conserved"):
        build_explainer("lrp", {"epsilon": 100.0}).explain(cnn, x, t)  # the stabiliser absorbs the relevance


def test_lrp_on_resnet18_conserves_or_names_the_layer() -> None:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(weights=None, num_classes=4).eval()
    x, t = torch.randn(1, 3, 64, 64), torch.tensor([2])
    ex = build_explainer("lrp")
    try:
        maps = ex.explain(model, x, t)
    except ExplainerError as e:
        assert "layer1.0" in str(e)
        return
    with torch.no_grad():
        logit = model(x)[0, 2]
    assert abs(float(maps.sum()) - float(logit)) <= 0.05 * abs(float(logit))


def test_lrp_names_unsupported_layers_and_functional_gaps() -> None:
    ex = build_explainer("lrp")
    with pytest.raises(ExplainerError, match=re.escape("'1' (GELU)")):
        ex.check(nn.Sequential(nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 2)))

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(torch.relu(self.fc1(x.flatten(1))) + 1.0)

    with pytest.raises(ExplainerError, match="input of layer 'fc2' is not the output of 'fc1'"):
        ex.explain(Functional().eval(), torch.randn(2, 1, 2, 2), torch.tensor([0, 1]))


def test_lrp_trace_catches_a_skip_addition_in_an_unknown_block() -> None:
    class Skip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.relu = nn.Conv2d(3, 3, 3, padding=1), nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.relu(self.conv(x) + x)

    model = nn.Sequential(Skip(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)).eval()
    with pytest.raises(ExplainerError, match=re.escape("input of layer '0.relu' is not the output of '0.conv'")):
        build_explainer("lrp").explain(model, torch.randn(1, 3, 8, 8), torch.tensor([0]))
