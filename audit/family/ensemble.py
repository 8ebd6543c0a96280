"""The family's mean ensemble as a model: forward returns the mean of the members' outputs in probability form
(softmax or sigmoid of their logits, a one-logit binary model's sigmoid; an anomaly detector's raw scores or maps),
read by the task as probabilities. So its task scores are the mean of the members' scores, and its passes run
through the engine like any model's."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..tasks.base import Task, TaskOptions

#: task name -> how one member's checked outputs become the probability form the ensemble averages
_SOFTMAX = ("multiclass", "segmentation")
_SIGMOID = ("multilabel",)
_RAW = ("anomaly",)
SUPPORTED = (*_SOFTMAX, *_SIGMOID, *_RAW, "binary")


def probability_form(task: Task, out: torch.Tensor) -> torch.Tensor:
    """One member's outputs as the probabilities (or scores) the ensemble averages."""
    out = out.float()
    if task.name in _RAW:
        return out
    if task.name == "binary":  # the positive class's probability, (B, 1)
        if out.shape[1] == 2:
            return out[:, 1:] if task.output_kind == "probabilities" else torch.softmax(out, dim=1)[:, 1:]
        return out if task.output_kind == "probabilities" else torch.sigmoid(out)
    if task.output_kind == "probabilities":
        return out
    return torch.softmax(out, dim=1) if task.name in _SOFTMAX else torch.sigmoid(out)


class MeanEnsemble(nn.Module):
    """The mean of ``members``' outputs in probability form (each member: a module returning its output tensor)."""

    def __init__(self, members: Sequence[nn.Module], task: Task) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [probability_form(self.task, self.task.check_outputs(m(x), len(x))) for m in self.members]
        return torch.stack(parts).mean(dim=0)


def ensemble_options(task: Task) -> TaskOptions:
    """The member task's options with the outputs read as probabilities (an anomaly detector's as they are)."""
    o = task.options
    return TaskOptions(output_kind="auto" if task.name in _RAW else "probabilities", threshold=o.threshold,
                       operating_point=o.operating_point)
