"""faithfulness (deletion / insertion) with explainers whose answer is known."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from audit.rules.faithfulness import Faithfulness, _ranks, auc


def rule(**kw) -> Faithfulness:
    return Faithfulness(Faithfulness.Params.model_validate({"id": "f", "kind": "faithfulness", **kw}))


def test_auc_and_ranks() -> None:
    assert auc(np.array([1.0, 1.0, 1.0])) == 1.0 and auc(np.array([1.0, 0.0, 0.0])) == 0.25
    m = np.array([[[0.0, 3.0], [2.0, 1.0]]])
    assert _ranks(m, np.random.default_rng(0)).tolist() == [[3, 0, 1, 2]]
    flat = _ranks(np.zeros((1, 4, 4)), np.random.default_rng(0))
    assert sorted(flat[0].tolist()) == list(range(16))  # a constant map ranks at random


def test_gradcam_beats_random_orders_and_bad_explainers_do_not(zoo_evidence, with_test_explainers) -> None:
    ev = with_test_explainers(zoo_evidence("none", fresh=True))
    good = rule(explainers=["gradcam"]).check(ev)[0]
    assert good.status == "pass"
    g = good.details["explainers"]["gradcam"]
    assert g["deletion_gain"] > 0.1 and g["insertion_gain"] > 0.1
    assert len(g["deletion_curve"]) == 21 and set(g["per_class"]) == {"disc", "square", "cross"}
    json.dumps(good.details)
    bad = ["test_random", "test_inverted_gradcam", "test_zero"]
    f = rule(explainers=["gradcam", *bad]).check(ev)[0]
    assert f.status == "fail" and f.details["unfaithful"] == bad and f.sample_ids
    per = f.details["explainers"]
    assert per["gradcam"]["failed"] == [] and per["gradcam"]["deletion_gain"] == g["deletion_gain"]
    assert per["test_inverted_gradcam"]["deletion_gain"] < 0 and per["test_inverted_gradcam"]["insertion_gain"] < 0
    assert per["test_zero"]["n_constant_maps"] == per["test_zero"]["n"]


class MeanColour(nn.Module):
    """Decides from the mean colour only: a blur keeps the evidence, so deletion curves stay flat."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.fc = nn.Linear(3, 3)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.conv.bias.zero_()
            self.fc.weight.copy_(torch.tensor([[8.0, 0, -8], [0, 0, 0], [-8, 0, 8]]))
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


def test_baseline_that_keeps_the_prediction_is_an_error(zoo, evidence_for) -> None:
    ev = evidence_for(replace(zoo("tint"), model=MeanColour().eval()))
    f = rule(explainers=["gradcam"]).check(ev)[0]
    assert f.status == "error" and "baseline keeps the prediction" in f.message
    assert rule(explainers=["gradcam"], baseline="zero").check(ev)[0].status != "error"
