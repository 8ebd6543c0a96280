"""A segmentation explanation targets "class c inside its predicted region": the class's logits summed over the
pixels the model assigns to c (pytorch-grad-cam's SemanticSegmentationTarget). Checked against that library and
against autograd on a small random fully convolutional net."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM as RefGradCAM
from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

from audit.demo.segment import SceneNet
from audit.errors import ModelError
from audit.explainers.gradcam import GradCAM, GradCAMParams
from audit.tasks.segmentation import SegmentationTask

CLASSES = ("background", "disc", "square")


def _net() -> SceneNet:
    torch.manual_seed(0)
    return SceneNet(3, width=4).eval()


def test_summed_region_logits_match_autograd():
    net, task = _net(), SegmentationTask(CLASSES)
    x = torch.rand(2, 1, 24, 24)
    with torch.no_grad():
        region = net(x).argmax(dim=1)
    with task.explaining(net, x) as hooked:
        out = hooked(x)
    assert out.shape == (2, 3)
    with torch.no_grad():
        logits = net(x)
    for b in range(2):
        for c in range(3):
            assert torch.isclose(out[b, c], (logits[b, c] * (region[b] == c)).sum(), rtol=1e-5)
    assert net._forward_hooks == {}  # the hook is gone after explaining


def test_gradcam_matches_pytorch_grad_cam_semantic_target():
    net, task = _net(), SegmentationTask(CLASSES)
    x = torch.rand(3, 1, 24, 24)
    with torch.no_grad():
        pred = net(x).argmax(dim=1)
    targets = torch.tensor([1, 2, 0])
    with task.explaining(net, x) as hooked:
        ours = GradCAM(GradCAMParams(layer="features.5")).explain(hooked, x, targets).detach().numpy()
    with RefGradCAM(model=net, target_layers=[net.features[5]]) as ref:
        for b in range(3):
            c = int(targets[b])
            want = ref(input_tensor=x[b:b + 1],
                       targets=[SemanticSegmentationTarget(c, (pred[b] == c).float().numpy())])[0]
            got = ours[b] - ours[b].min()
            got = got / (got.max() + 1e-7)
            np.testing.assert_allclose(got, want, atol=1e-4)


def test_perturbed_copies_keep_each_image_s_region():
    """Occlusion and integrated gradients (captum) evaluate whole copies of the batch stacked: row i belongs to
    image i mod B, whose predicted region stays fixed while its pixels are perturbed."""
    net, task = _net(), SegmentationTask(CLASSES)
    x = torch.rand(2, 1, 24, 24)
    x2 = torch.rand(2, 1, 24, 24)  # "perturbed" versions
    with torch.no_grad():
        region = net(x).argmax(dim=1)
        logits2 = net(x2)
    with task.explaining(net, x) as hooked:
        out = hooked(torch.cat([x, x2]))
        assert out.shape == (4, 3)
        for b in range(2):
            for c in range(3):
                assert torch.isclose(out[2 + b, c], (logits2[b, c] * (region[b] == c)).sum(), rtol=1e-5)
        with pytest.raises(ModelError, match="not whole copies"):
            hooked(torch.rand(3, 1, 24, 24))
        with pytest.raises(ModelError, match="not whole copies"):
            hooked(x2[:1])  # one image that is not the batch's first: its region is unknown
        first = hooked(x[:1])  # the batch's first image as it is (a layer-shape probe): its own region
        torch.testing.assert_close(first, out[:1])


def test_the_sample_as_a_whole_is_its_labelled_objects():
    """A rule that asks for a sample's region with no class (a background swap keeps the object; a corner is
    skipped where the object covers it) gets every labelled pixel of the classes after the first, plus the
    record's ROI; ignored pixels (-1) and the first class (the background) are not objects."""
    task = SegmentationTask(CLASSES)
    truth = np.zeros((6, 6), np.int64)
    truth[0, :] = -1
    truth[1:3, 1:3] = 1
    truth[4:6, 3:6] = 2
    whole = task.target_region(None, truth, None)
    assert whole is not None and whole.sum() == 4 + 6 and not whole[0].any()
    np.testing.assert_array_equal(task.target_region(None, truth, 2), truth == 2)
    roi = np.zeros((6, 6), bool)
    roi[3, 0] = True
    assert task.target_region(roi, truth, None).sum() == 11
    assert task.target_region(None, np.zeros((6, 6), np.int64), None) is None  # background only: no object
    assert task.target_region(roi, None, None) is roi
