"""A network whose logits are, by construction, functions of one concept's presence each, and its concept images.

Inputs are 1x16x16 noise in [0, 1]. ``feat.0`` (the tested layer) computes x - 0.5, ``feat.1`` a ReLU; logit 0
("tl") is the sum of the ReLU over the top-left 6x6 corner, logit 1 ("br") over the bottom-right corner. So the
gradient of logit 0 at ``feat.0`` is 1 on the top-left pixels brighter than 0.5 and 0 elsewhere: moving along the
CAV of "bright top-left square" raises logit 0 for every input (TCAV = 1), while the CAV of "bright bottom-right
square" has only noise weights in the top-left corner (TCAV varies around 0.5 from run to run)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SIZE = 16
CORNER = 6


class CornerNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(1, 1, 1)
        with torch.no_grad():
            conv.weight.fill_(1.0)
            conv.bias.fill_(-0.5)
        self.feat = nn.Sequential(conv, nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.feat(x)[:, 0]
        tl = a[:, :CORNER, :CORNER].sum(dim=(1, 2))
        br = a[:, -CORNER:, -CORNER:].sum(dim=(1, 2))
        return torch.stack([tl, br], dim=1)


def noise(n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((n, 1, SIZE, SIZE)).astype(np.float32))


def with_square(x: torch.Tensor, corner: str) -> torch.Tensor:
    x = x.clone()
    if corner == "tl":
        x[:, :, :CORNER, :CORNER] = 1.0
    else:
        x[:, :, -CORNER:, -CORNER:] = 1.0
    return x
