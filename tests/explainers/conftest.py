"""Tiny models shared by the explainer tests (seconds on two CPU cores)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn
from torchvision.models import VisionTransformer


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models run fastest single-threaded; on a shared 2-core machine extra threads thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_cnn() -> nn.Sequential:
    """VGG-style chain with a GAP + linear head: 3x16x16 -> 3 classes."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),
    ).eval()


def tiny_bn_cnn() -> nn.Sequential:
    """Chain with batchnorm (non-trivial running stats), max pooling and a two-layer head."""
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(24, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3),
    )
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(-1.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def tiny_vit() -> VisionTransformer:
    torch.manual_seed(2)
    model = VisionTransformer(
        image_size=16, patch_size=4, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=16, num_classes=3
    ).eval()
    nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision starts its head at zero (every logit 0)
    return model


@pytest.fixture
def cnn() -> nn.Sequential:
    return tiny_cnn()


@pytest.fixture
def bn_cnn() -> nn.Sequential:
    return tiny_bn_cnn()


@pytest.fixture
def vit() -> VisionTransformer:
    return tiny_vit()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, 3, 16, 16, generator=g), torch.tensor([0, 2])

