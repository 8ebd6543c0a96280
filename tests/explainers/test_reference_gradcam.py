"""Grad-CAM and Grad-CAM++ against the PyPI grad-cam package (pytorch-grad-cam) on the same model, layer, targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from audit.explainers import build_explainer

pgc = pytest.importorskip("pytorch_grad_cam")


def minmax(m: np.ndarray) -> np.ndarray:
    return (m - m.min()) / max(float(m.max() - m.min()), 1e-12)


def cases(cnn: nn.Module) -> list[tuple[str, nn.Module, str, torch.Tensor]]:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    res = resnet18(weights=None, num_classes=5).eval()
    g = torch.Generator().manual_seed(4)
    return [
        ("tiny_cnn", cnn, "3", torch.randn(3, 3, 16, 16, generator=g)),
        ("resnet18", res, "layer4.1.conv2", torch.randn(2, 3, 64, 64, generator=g)),
    ]


@pytest.mark.parametrize(("ours", "theirs"), [("gradcam", "GradCAM"), ("gradcam_pp", "GradCAMPlusPlus")])
def test_matches_pytorch_grad_cam(ours: str, theirs: str, cnn: nn.Module) -> None:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    for label, model, layer, x in cases(cnn):
        targets = torch.arange(x.shape[0]) % 3
        mine = build_explainer(ours, {"layer": layer}).explain(model, x, targets).numpy()
        with getattr(pgc, theirs)(model=model, target_layers=[dict(model.named_modules())[layer]]) as cam:
            ref = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
        for i in range(x.shape[0]):
            a, b = minmax(mine[i]), minmax(ref[i])
            assert a.std() > 0 and b.std() > 0, f"{label}: degenerate map {i}"
            r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
            assert r >= 0.999, f"{label} image {i}: Pearson {r:.5f}"
