"""Shared fixtures: tinted handwritten digits (scikit-learn's 8 x 8 digits upsampled to 32 x 32 RGB, each
digit drawn in a random colour on a random background) and a small CNN trained on them once per session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import Tensor, nn

SIZE = 32


class TinyCNN(nn.Module):
    """Two conv blocks, a 64-unit penultimate layer (the OOD features), a linear classifier."""

    def __init__(self, channels: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(16 * (SIZE // 4) ** 2, 64), nn.ReLU())
        self.fc = nn.Linear(64, classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.body(x))


@dataclass(frozen=True)
class Digits:
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def tinted_digits(seed: int = 0) -> Digits:
    d = load_digits()
    g = torch.Generator().manual_seed(seed)
    imgs = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    imgs = F.interpolate(imgs, size=(SIZE, SIZE), mode="bilinear", align_corners=False).clamp(0, 1)
    n = len(imgs)
    fg = torch.rand(n, 3, 1, 1, generator=g) * 0.5 + 0.5
    bg = torch.rand(n, 3, 1, 1, generator=g) * 0.4
    x = bg * (1 - imgs) + fg * imgs
    y = torch.from_numpy(d.target).long()
    order = torch.randperm(n, generator=g)
    x, y = x[order], y[order]
    return Digits(x[:1200], y[:1200], x[1200:], y[1200:])


def train(model: nn.Module, x: Tensor, y: Tensor, epochs: int = 4, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # weight initialisation happened before; this only fixes dropout-free training order
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), 50):
            idx = order[s:s + 50]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


@contextmanager
def one_thread() -> Iterator[None]:
    """Small tensors run fastest single-threaded; on a shared 2-core machine extra threads thrash (the attack
    tests took 16x the CPU time with two threads on a loaded box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture(scope="module")
def module_one_thread() -> Iterator[None]:
    """One thread for a module's own fixtures (the function-scoped one above starts too late for them); a fixture
    that asks for it gets session fixtures it builds (request.getfixturevalue) on one thread too."""
    with one_thread():
        yield


@pytest.fixture(scope="session")
def digits() -> Digits:
    return tinted_digits()


@pytest.fixture(scope="session")
def digit_model(digits: Digits) -> TinyCNN:
    with one_thread():
        torch.manual_seed(0)
        return train(TinyCNN(), digits.x_train, digits.y_train)
