"""The explainer interface every method implements.

Output convention: ``explain`` returns a float32 tensor of shape (B, H, W) at the model-input resolution,
on the CPU. ``signed = True`` means the map keeps its sign (positive = evidence for the target class);
``signed = False`` means it is non-negative. Maps are never normalised here: display scaling happens in
the report (a shared colour scale per method), and rules read the raw values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

GENERIC_UNIT = "attribution, the method's own units"


class ExplainerParams(BaseModel):
    """Parameters of an explainer (each method subclasses this; unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ExplainContext:
    """What an explainer may know beyond the model and the batch."""

    seed: int = 0
    dataset_mean: torch.Tensor | None = None  # (C, H, W) mean model input, for mean baselines
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


class Explainer(ABC):
    """One attribution method. Subclasses set the class attributes and implement ``explain``."""

    name: ClassVar[str]
    title: ClassVar[str]  # human name for the report
    signed: ClassVar[bool]
    legend: ClassVar[str]  # what the map shows and its known limits (report text)
    unit: ClassVar[str] = GENERIC_UNIT  # what one unit of the map means (the colour bar's caption)
    attribution: ClassVar[bool] = True  # evidence for the target; False: shows the input's content (no ROI share)
    # drawn per layer in the report's layer views: "activations" (``maps``) or "inversions" (``reconstructions``)
    layer_view: ClassVar[Literal["", "activations", "inversions"]] = ""
    Params: ClassVar[type[ExplainerParams]] = ExplainerParams

    def __init__(self, params: ExplainerParams | None = None, context: ExplainContext | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.context = context if context is not None else ExplainContext()

    def check(self, model: nn.Module) -> None:
        """Raise ExplainerError naming the reason when this method cannot run on ``model``."""

    @abstractmethod
    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Attribution maps (B, H, W) for ``inputs`` (B, C, H, W) and class indices ``targets`` (B,)."""
