"""Feature inversion, attention rollout (against a manual attention forward) and the model-level views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from audit.errors import ExplainerError
from audit.explainers import build_explainer
from audit.views.features import embed_2d, linear_probe_per_layer, penultimate_features


def test_feature_inversion_cuts_feature_distance_by_80_percent(cnn: nn.Module, batch: tuple) -> None:
    x, _ = batch
    ex = build_explainer("feature_inversion", {"layers": ["3", "0"], "steps": 100})
    recon = ex.reconstructions(cnn, x)
    assert set(recon) == {"3", "0"}
    for img, d0, d1 in recon.values():
        assert img.shape == x.shape
        assert torch.all(d1 <= 0.2 * d0), (d0, d1)


def manual_rollout(vit: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Attention probabilities computed by hand from each block's in_proj weights, rolled out."""
    with torch.no_grad():
        h = vit._process_input(x)
        h = torch.cat([vit.class_token.expand(x.shape[0], -1, -1), h], dim=1) + vit.encoder.pos_embedding
        roll = torch.eye(h.shape[1], dtype=torch.float64).expand(x.shape[0], -1, -1)
        for block in vit.encoder.layers:
            mha = block.self_attention
            y = block.ln_1(h)
            q, k, _ = F.linear(y, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
            heads, d = mha.num_heads, mha.head_dim
            q = q.view(*q.shape[:2], heads, d).transpose(1, 2)
            k = k.view(*k.shape[:2], heads, d).transpose(1, 2)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1).mean(1).double()
            a = att + torch.eye(att.shape[-1], dtype=torch.float64)
            roll = (a / a.sum(-1, keepdim=True)) @ roll
            h = block(h)
    g = vit.image_size // vit.patch_size
    cls = roll[:, 0, 1:].reshape(-1, 1, g, g).float()
    return F.interpolate(cls, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


def test_attention_rollout_matches_manual_attention_product(vit: nn.Module, batch: tuple) -> None:
    x, t = batch
    maps = build_explainer("attention_rollout").explain(vit, x, t)
    torch.testing.assert_close(maps, manual_rollout(vit, x), rtol=1e-4, atol=1e-6)
    assert maps.min() >= 0


def test_attention_rollout_refuses_non_vit(cnn: nn.Module) -> None:
    with pytest.raises(ExplainerError, match="needs a vision transformer"):
        build_explainer("attention_rollout").check(cnn)


def test_layer_activations_all_layers(cnn: nn.Module, batch: tuple) -> None:
    x, t = batch
    ex = build_explainer("layer_activations", {"layers": ["4", "1"]})
    maps = ex.maps(cnn, x)
    with torch.no_grad():
        ref = F.interpolate(cnn[:5](x).sum(1, keepdim=True), size=(16, 16), mode="bilinear")[:, 0]
    torch.testing.assert_close(maps["4"], ref)
    torch.testing.assert_close(ex.explain(cnn, x, t), ref)
    assert maps["1"].min() >= 0


def test_views_embed_and_probe(cnn: nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 3, 16, 16, generator=g)
    y = torch.arange(24) % 2
    x[y == 1, 0] += 2.0  # class 1: red channel raised, visible to any layer after GAP
    feats = penultimate_features(cnn, [x[:10], x[10:]])
    assert feats.shape == (24, 6)
    for method in ("pca", "tsne"):
        emb = embed_2d(feats, method=method, seed=0)
        assert emb.shape == (24, 2) and np.isfinite(emb).all()
    np.testing.assert_allclose(embed_2d(feats[:5], "tsne", seed=1), embed_2d(feats[:5], "tsne", seed=1))
    acc = linear_probe_per_layer(cnn, [(x[:12], y[:12]), (x[12:], y[12:])], None, ["0", "4"], seed=0)
    assert set(acc) == {"0", "4"} and acc["0"] >= 0.9
    acc_t = linear_probe_per_layer(cnn, x, y, ["0"], seed=0)
    assert acc_t["0"] == acc["0"]
    with pytest.raises(ExplainerError, match="at least 2 samples"):
        linear_probe_per_layer(cnn, x[:3], torch.tensor([0, 0, 1]), ["0"])
