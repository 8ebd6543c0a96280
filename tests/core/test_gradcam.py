"""Grad-CAM against a hand computation and against CAM on a GAP + linear head."""

import torch
from torch import nn

from audit.explainers.gradcam import GradCAM, GradCAMParams


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).flatten(1))


def test_gradcam_equals_hand_computation():
    model = Tiny().eval()
    x = torch.randn(2, 1, 4, 4)
    targets = torch.tensor([0, 1])
    maps = GradCAM(GradCAMParams(layer="conv")).explain(model, x, targets)
    # by hand: A = conv(x); dy/dA for the linear head through the ReLU
    A = model.conv(x).detach()
    W = model.fc.weight.detach().view(2, 3, 4, 4)
    for b in range(2):
        grad = W[targets[b]] * (A[b] > 0)
        alpha = grad.mean(dim=(1, 2))
        cam = torch.relu((alpha[:, None, None] * A[b]).sum(0))
        assert torch.allclose(maps[b], cam, atol=1e-5)


class GapNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        a = self.act(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(a.mean(dim=(2, 3)))


def test_gradcam_proportional_to_cam_on_gap_linear_head():
    model = GapNet().eval()
    x = torch.randn(3, 1, 8, 8)
    targets = torch.tensor([0, 1, 2])
    # on the layer feeding global average pooling, alpha_k = w[target, k] / (H*W): Grad-CAM = CAM / (H*W)
    gc = GradCAM(GradCAMParams(layer="act")).explain(model, x, targets)
    with torch.no_grad():
        a = model.act(model.conv2(torch.relu(model.conv1(x))))
        cam = torch.relu(torch.einsum("bk,bkhw->bhw", model.fc.weight[targets], a))
    assert cam.abs().sum() > 0
    assert torch.allclose(gc * 64, cam, atol=1e-5)


def test_gradcam_leaves_model_untouched():
    model = GapNet().eval()
    GradCAM().explain(model, torch.randn(2, 1, 8, 8), torch.tensor([0, 1]))
    assert not model.training
    for m in model.modules():
        assert not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
