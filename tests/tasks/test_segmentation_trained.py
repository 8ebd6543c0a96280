"""The trained segmentation example (`audit demo --task segmentation --train`): a small network trained where
squares lie only on striped ground learns the stripes (it loses the objects on a swapped copy), its twin trained
on random ground learns the shapes; the segmentation pack fails the first and passes the second."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from task_helpers import run_audit_cli

from audit.demo import examples, segment


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = {}
    for name, clean in (("clean", True), ("context", False)):
        root = tmp_path_factory.mktemp(f"trained-{name}")
        cfg = examples.prepare_segmentation(root, clean=clean, trained=True)
        res = run_audit_cli(cfg, root / "out", "--set", 'report.formats=["json","junit"]')
        out[name] = (res, json.loads((root / "out" / "results.json").read_text()), root)
    return out


def _iou_on(root, layout: str) -> np.ndarray:
    """Per-class IoU of the example's trained net on 60 fresh scenes of ``layout``."""
    net = segment.SceneNet(len(segment.CLASSES), examples.TRAINED_WIDTH)
    net.load_state_dict(load_file(str(root / "weights.safetensors")))
    s = segment.make_scenes(60, 77, layout, same_level=True)
    with torch.no_grad():
        pred = net.eval()(torch.from_numpy(s.images).float().div(255).unsqueeze(1)).argmax(1).numpy()
    return np.array([((pred == c) & (s.masks == c)).sum() / ((pred == c) | (s.masks == c)).sum() for c in range(3)])


def test_the_context_net_relies_on_the_stripes_and_its_twin_on_the_shapes(trained):
    ctx, clean = trained["context"][2], trained["clean"][2]
    assert (_iou_on(ctx, "context")[1:] > 0.8).all() and (_iou_on(ctx, "swapped")[1:] < 0.3).all()
    assert (_iou_on(clean, "context")[1:] > 0.85).all() and (_iou_on(clean, "swapped")[1:] > 0.85).all()


def test_the_pack_fails_the_context_net_and_passes_its_twin(trained):
    res, doc, _ = trained["clean"]
    assert res.exit_code == 0, res.output
    assert doc["metrics"]["mean_iou"] > 0.9
    res, doc, _ = trained["context"]
    assert res.exit_code == 1, res.output
    status = {r["id"]: r["status"] for r in doc["rules"]}
    assert status["context-swap"] == "fail" and status["context-attribution"] == "fail"
    assert status["mean-iou-floor"] == "pass"  # it segments the held-out set well: only the audit shows why
