"""The demo's small CNN: four conv blocks with batch norm, global average pooling, one linear layer
(so CAM applies and Grad-CAM's last feature map is 8×8 on a 64×64 input)."""

from __future__ import annotations

from torch import nn


class DemoCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 24) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for out, pool in ((width, True), (2 * width, True), (2 * width, True), (2 * width, False)):
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool2d(2))
            c = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def build(num_classes: int = 10, in_channels: int = 1, width: int = 24) -> DemoCNN:
    """Factory named in the demo config as ``audit.demo.model:build``."""
    return DemoCNN(num_classes=num_classes, in_channels=in_channels, width=width)
