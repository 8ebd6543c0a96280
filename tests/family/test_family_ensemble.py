"""The mean ensemble as a model: read by its task (outputs as probabilities), its scores are the mean of the
members' scores as each member's own task reads them, for every classifier task and output form, and an anomaly
detector's per-image scores."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from audit.family.ensemble import MeanEnsemble, ensemble_options
from audit.tasks import build_task
from audit.tasks.base import TaskOptions


class Fixed(nn.Module):
    """A member whose outputs are a fixed linear map of the flattened input."""

    def __init__(self, outputs: int, seed: int, squash: str = "") -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(12, outputs, generator=g))
        self.squash = squash

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.flatten(1) @ self.w
        return torch.softmax(out, 1) if self.squash == "softmax" else out


@pytest.mark.parametrize(("task", "classes", "outputs", "kind", "squash"), [
    ("multiclass", ("a", "b", "c"), 3, "logits", ""),
    ("multiclass", ("a", "b", "c"), 3, "probabilities", "softmax"),
    ("binary", ("neg", "pos"), 1, "logits", ""),
    ("binary", ("neg", "pos"), 2, "logits", ""),
    ("multilabel", ("x", "y", "z"), 3, "logits", ""),
    ("anomaly", ("good", "defect"), 1, "auto", ""),  # per-image anomaly scores, averaged as they are
])
def test_ensemble_scores_are_the_members_mean(task, classes, outputs, kind, squash):
    member_task = build_task(task, classes, options=TaskOptions(output_kind=kind))
    members = [Fixed(outputs, s, squash) for s in range(3)]
    x = torch.randn(5, 1, 3, 4, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        expected = torch.stack([member_task.to_scores(member_task.check_outputs(m(x), 5)) for m in members]).mean(0)
        ensemble_task = build_task(task, classes, options=ensemble_options(member_task))
        got = ensemble_task.to_scores(ensemble_task.check_outputs(MeanEnsemble(members, member_task)(x), 5))
    assert torch.allclose(got, expected, atol=1e-6)
