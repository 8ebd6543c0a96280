"""Perturbation explainers find the only patch a hand-built model reads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from audit.explainers import build_explainer

PATCH = (slice(4, 8), slice(8, 12))  # grid cell (row 1, col 2) of 4x4-pixel cells


def patch_reader() -> nn.Module:
    """4x4 patch means (conv, stride 4) -> class 0 reads cell (1, 2) only, class 1 its negative."""
    conv = nn.Conv2d(3, 1, 4, stride=4, bias=False)
    fc = nn.Linear(16, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1 / 48)
        fc.weight.zero_()
        fc.weight[0, 1 * 4 + 2] = 5.0
        fc.weight[1, 1 * 4 + 2] = -5.0
    return nn.Sequential(conv, nn.Flatten(), fc).eval()


def image() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, 16, 16, generator=g) + 0.5  # positive, so blanking the patch lowers class 0


def inside_outside(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[PATCH] = True
    return m[0][mask], m[0][~mask]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("occlusion", {"window": 4, "stride": 4}),
        ("lime", {"segmentation": "grid", "cell": 4, "n_samples": 100}),
        ("kernel_shap", {"segmentation": "grid", "cell": 4, "n_samples": 100}),
    ],
)
def test_localises_the_only_informative_patch(name: str, options: dict) -> None:
    model, x = patch_reader(), image()
    maps = build_explainer(name, options).explain(model, x, torch.tensor([0]))
    inside, outside = inside_outside(maps)
    assert inside.min() > 0
    assert outside.abs().max() < 0.05 * inside.mean()
    # class 1 reads the same patch with the opposite sign
    neg = build_explainer(name, options).explain(model, x, torch.tensor([1]))
    assert inside_outside(neg)[0].max() < 0


def test_occlusion_with_overlapping_windows_peaks_on_the_patch() -> None:
    model, x = patch_reader(), image()
    maps = build_explainer("occlusion", {"window": 4, "stride": 2}).explain(model, x, torch.tensor([0]))[0]
    inside, _ = inside_outside(maps[None])
    assert float(maps.max()) == float(inside.max())
    far = torch.ones(16, 16, dtype=torch.bool)
    far[2:10, 6:14] = False  # beyond the reach of a 4-pixel window that touches the patch
    assert maps[far].abs().max() == 0


def test_occlusion_value_is_the_score_drop() -> None:
    model, x = patch_reader(), image()
    maps = build_explainer("occlusion", {"window": 4, "stride": 4}).explain(model, x, torch.tensor([0]))
    with torch.no_grad():
        blanked = x.clone()
        blanked[:, :, PATCH[0], PATCH[1]] = 0
        drop = model(x)[0, 0] - model(blanked)[0, 0]
    torch.testing.assert_close(maps[0][PATCH], drop.expand(4, 4))


def test_lime_on_slic_superpixels_runs_and_is_piecewise_constant() -> None:
    model, x = patch_reader(), image()
    maps = build_explainer("lime", {"n_segments": 8, "n_samples": 40}).explain(model, x, torch.tensor([0]))
    assert maps.shape == (1, 16, 16)
    assert torch.unique(maps).numel() <= 16
