"""Gradient-based explainers against closed forms and against each other."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from audit.errors import ExplainerError
from audit.explainers import build_explainer


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.flatten().double().numpy(), b.flatten().double().numpy())[0, 1])


def test_saliency_of_linear_model_is_abs_weight_max_over_channels() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(3 * 8 * 8, 4)
    model = nn.Sequential(nn.Flatten(), lin).eval()
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([1, 3])
    maps = build_explainer("saliency").explain(model, x, t)
    expected = lin.weight.detach()[t].abs().view(2, 3, 8, 8).amax(dim=1)
    assert maps.dtype == torch.float32
    torch.testing.assert_close(maps, expected)


def test_integrated_gradients_completeness(cnn: nn.Module, batch: tuple) -> None:
    x, _ = batch
    with torch.no_grad():
        deltas = cnn(x) - cnn(torch.zeros_like(x))
    t = deltas.abs().argmax(1)  # a relative tolerance needs f(x) - f(baseline) well away from 0
    delta = deltas.gather(1, t.view(-1, 1)).squeeze(1)
    maps = build_explainer("integrated_gradients", {"n_steps": 64}).explain(cnn, x, t)
    sums = maps.flatten(1).sum(1)
    assert torch.all(delta.abs() > 0.02)
    assert torch.all((sums - delta).abs() <= 0.01 * delta.abs()), (sums, delta)


def test_cam_equals_gradcam_up_to_scale_on_gap_linear_net(cnn: nn.Module, batch: tuple) -> None:
    x, t = batch
    cam = build_explainer("cam", {"relu": True}).explain(cnn, x, t)
    # Grad-CAM at the map that feeds the global average pool (the ReLU after the last conv)
    grad_cam = build_explainer("gradcam", {"layer": "4"}).explain(cnn, x, t)
    for c, g in zip(cam, grad_cam, strict=True):
        assert g.abs().max() > 0
        scale = float((c * g).sum() / (g * g).sum())
        assert scale > 0
        torch.testing.assert_close(c, scale * g, rtol=1e-4, atol=1e-6)
        assert corr(c, g) > 0.999


def test_cam_raw_map_mean_plus_bias_is_the_logit(cnn: nn.Module, batch: tuple) -> None:
    x, t = batch
    cam = build_explainer("cam").explain(cnn, x, t)
    # the 8x8 map is upsampled by exactly 2, which keeps its mean (bilinear, align_corners=False)
    with torch.no_grad():
        logits = cnn(x).gather(1, t.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(cam.flatten(1).mean(1) + cnn[-1].bias.detach()[t], logits, rtol=1e-4, atol=1e-5)


def test_cam_refuses_a_head_without_global_average_pooling() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()
    ex = build_explainer("cam")  # the head is verified on a forward pass (concatenated branches can feed it too)
    with pytest.raises(ExplainerError, match="global-average-pooling"):
        ex.explain(model, torch.randn(1, 3, 8, 8), torch.tensor([0]))
    # same channel count, but the head flattens a 2x2 map instead of averaging it
    model2 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with pytest.raises(ExplainerError, match="not the spatial mean"):
        ex.explain(model2.eval(), torch.randn(1, 3, 8, 8), torch.tensor([0]))


def test_guided_gradcam_is_guided_backprop_times_upsampled_gradcam(cnn: nn.Module, batch: tuple) -> None:
    x, t = batch
    for layer in ("3", "0"):
        ggc = build_explainer("guided_gradcam", {"layer": layer}).explain(cnn, x, t)
        gbp = build_explainer("guided_backprop").explain(cnn, x, t)
        gc = build_explainer("gradcam", {"layer": layer}).explain(cnn, x, t)
        assert gc.abs().max() > 0 and gbp.abs().max() > 0
        torch.testing.assert_close(ggc, gbp * gc, rtol=1e-5, atol=1e-7)


def test_deconvnet_and_guided_backprop_differ_exactly_where_relu_rules_differ() -> None:
    # flatten -> identity linear -> ReLU -> linear with weights of both signs
    fc1, fc2 = nn.Linear(4, 4, bias=False), nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        fc1.weight.copy_(torch.eye(4))
        fc2.weight.copy_(torch.tensor([[1.0, 1.0, -1.0, -1.0]]))
    model = nn.Sequential(nn.Flatten(), fc1, nn.ReLU(), fc2).eval()
    x = torch.tensor([1.0, -1.0, 1.0, -1.0]).view(1, 1, 2, 2)
    t = torch.tensor([0])
    gbp = build_explainer("guided_backprop").explain(model, x, t).flatten()
    dec = build_explainer("deconvnet").explain(model, x, t).flatten()
    pre_act, grad_out = x.flatten(), fc2.weight.detach().flatten()
    # guided: grad passes only where input > 0 and grad > 0; deconvnet: only where grad > 0
    torch.testing.assert_close(gbp, grad_out * (pre_act > 0) * (grad_out > 0))
    torch.testing.assert_close(dec, grad_out.clamp_min(0))
    differs = gbp != dec
    assert differs.tolist() == ((pre_act <= 0) & (grad_out > 0)).tolist() == [False, True, False, False]


def test_gradcam_pp_reduces_to_its_formula(cnn: nn.Module, batch: tuple) -> None:
    x, t = batch
    maps = build_explainer("gradcam_pp", {"layer": "4"}).explain(cnn, x, t)
    # for a GAP + linear head the gradient is w[t, k] / (h w) everywhere, so alpha is constant per channel
    with torch.no_grad():
        a = cnn[:5](x)
    hw = a.shape[2] * a.shape[3]
    g = (cnn[-1].weight[t] / hw)[:, :, None, None].expand_as(a)
    alpha = g**2 / (2 * g**2 + a.sum((2, 3), keepdim=True) * g**3 + 1e-6)
    w = (alpha * g.clamp_min(0)).sum((2, 3), keepdim=True)
    cam = (w * a).sum(1, keepdim=True).clamp_min(0)
    ref = torch.nn.functional.interpolate(cam, size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(maps, ref, rtol=1e-4, atol=1e-7)
