"""The Task interface: what a model's outputs mean and how an audit of that kind of model is scored.

One subclass per task type (multiclass, and later binary, multi-label, segmentation, anomaly), one module each
under ``audit/tasks/``. The stages never branch on the task: they ask it

- how a batch of raw outputs becomes scores (``check_outputs`` + ``to_scores``: softmax, sigmoid, ...),
- which metrics apply (``metrics``) and how they appear in results.json and the report
  (``results_sections``, ``report_sections``, ``headline``),
- how samples are picked (``select``) and described (``describe``, ``outcome``),
- what an explanation target is (``targets`` + ``explaining``: the module whose output column the target
  indexes),
- what it offers the rules (``provides``: capabilities of ``CAPABILITIES``; a pack asking for a rule kind whose
  ``needs`` the task does not meet is refused before the model runs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch
from torch import nn

from ..products import PickCategory, Picks, Predictions

#: What a task can offer the rules. A rule kind names those it reads (``Rule.needs``); a task names those it offers
#: (``Task.provides``).
CAPABILITIES: dict[str, str] = {
    "single_label": "one class per sample: per-class recall, a confusion matrix, per-sample comparisons with a "
                    "baseline",
    "whole_image": "answers and truth per image, not per pixel: samples grouped by their own labels",
    "maps": "explanation maps judged group by group (targets, groups, members, decide, target_scores)",
}

TargetMode = Literal["predicted", "label"]
OutputKind = Literal["auto", "logits", "probabilities"]


@dataclass(frozen=True)
class TaskOptions:
    """What the config says about reading the outputs (model.output_kind, model.threshold, model.operating_point)."""

    output_kind: OutputKind = "auto"
    threshold: float | Mapping[str, float] | None = None  # operating threshold, one or per label
    operating_point: str | None = None  # e.g. "sensitivity>=0.95": the threshold is chosen on the held-out set


class TaskMetrics(Protocol):
    """What every task's metrics offer the rules: a sample count and named scalars."""

    n: int

    def scalar(self, name: str) -> float: ...

    def interval(self, name: str) -> tuple[float, float] | None: ...


@dataclass(frozen=True)
class ReportSection:
    """One section of the report a task contributes: a template under ``templates/`` and its context."""

    id: str
    title: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    pagebreak: bool = False


@dataclass(frozen=True)
class SampleSummary:
    """How one sample reads in the report: its label, the model's answer, a confidence and whether it is right."""

    label: str
    predicted: str
    confidence: float
    correct: bool | None


class Task(ABC):
    """How one kind of model is audited. Subclasses set ``name`` and implement the abstract methods."""

    name: ClassVar[str]
    title: ClassVar[str]
    # what the task offers the rules (keys of CAPABILITIES), and what to suggest when a rule kind does not apply
    provides: ClassVar[frozenset[str]] = frozenset()
    rule_hint: ClassVar[str] = ""
    # embeddings of penultimate features coloured by class, per-layer linear probes on the labels
    model_views: ClassVar[bool] = True
    # the task's own headline metric (a name its metrics' ``scalar`` and ``interval`` know), which robustness checks
    # follow under corruption, and its form per group ("{group}" filled in; "": each class's recall at the task's
    # decisions when the task is single-label, no per-group value otherwise)
    key_metric: ClassVar[str] = "accuracy"
    group_metric: ClassVar[str] = ""
    # the task's names of its three pick lists (the ``PickCategory`` slots): the key results.json files each under and
    # the title the report shows. A task without right or wrong answers per image names them by its metric
    pick_kinds: ClassVar[Mapping[PickCategory, tuple[str, str]]] = MappingProxyType({
        "correct": ("correct", "most confident correct"), "incorrect": ("incorrect", "most confident wrong"),
        "borderline": ("borderline", "closest calls (top-1 − top-2 margin)")})

    def __init__(self, classes: Sequence[str], options: TaskOptions | None = None) -> None:
        self.classes = tuple(classes)
        self.options = options or TaskOptions()
        self.output_kind = self.options.output_kind  # "probabilities": forward already returns the task's scores

    # ---- outputs -> scores ----------------------------------------------------------------------------
    @abstractmethod
    def check_outputs(self, outputs: object, batch: int) -> torch.Tensor:
        """The batch's raw model outputs as a float tensor after the task's checks (ModelError naming the
        problem when they cannot be this task's outputs)."""

    @abstractmethod
    def to_scores(self, outputs: torch.Tensor) -> torch.Tensor:
        """Checked outputs -> per-sample scores (n, K) float (probabilities for classifiers)."""

    def dense(self, outputs: torch.Tensor, size: tuple[int, int]) -> np.ndarray | None:
        """Per-pixel answers (B, H, W) at input resolution ``size`` kept beside the scores (a segmentation's class
        map, an anomaly map); None for image-level tasks."""
        return None

    def fit(self, preds: Predictions, records: Sequence[Any] = (), preprocess: Any = None
            ) -> tuple[Task, Predictions]:
        """The task with what it settles on the held-out scores (e.g. a threshold chosen at a target sensitivity),
        and the predictions with the task's decisions (and, for per-pixel tasks, the truth read from ``records``
        at the input geometry of ``preprocess``). Default: nothing to settle."""
        return self, preds

    # ---- metrics and their presentation ----------------------------------------------------------------
    @abstractmethod
    def metrics(self, preds: Predictions, rng: np.random.Generator, subgroups: Sequence[str] = ()) -> TaskMetrics:
        """All metrics of the audit for one prediction table."""

    @abstractmethod
    def results_sections(self, metrics: TaskMetrics) -> dict[str, Any]:
        """results.json sections after ``classes`` (unrounded; the writer rounds), e.g. metrics, confusion."""

    @abstractmethod
    def report_sections(self, metrics: TaskMetrics) -> list[ReportSection]:
        """Report sections for the metrics, in reading order."""

    def sample_sections(self, preds: Predictions, picks: Picks, images: Mapping[str, Any]) -> list[ReportSection]:
        """Report sections drawn from the picked samples (``images``: sample id -> its view with ``image``), e.g.
        a segmentation's predicted and true masks; default none."""
        return []

    @abstractmethod
    def headline(self, metrics: TaskMetrics) -> str:
        """One line of the key figures, for the console and summary.md."""

    # ---- samples --------------------------------------------------------------------------------------
    @abstractmethod
    def select(self, preds: Predictions, k: int, per_class: int) -> Picks:
        """Samples worth a closer look."""

    @abstractmethod
    def outcome(self, preds: Predictions) -> np.ndarray | None:
        """(N,) bool: whether each prediction is right, or None when the task has no such notion."""

    @abstractmethod
    def describe(self, preds: Predictions, row: int) -> SampleSummary:
        """The label, answer and confidence of one sample for captions and tables."""

    def predictions_json(self, preds: Predictions) -> dict[str, Any]:
        """Per-sample record kept in results.json (read by comparisons with a later audit)."""
        return {"ids": [str(s) for s in preds.ids], "labels": preds.labels}

    # ---- what the rules aggregate over ------------------------------------------------------------------
    def groups(self) -> tuple[str, ...]:
        """The units rules judge one by one and fail on the worst of: classes (multiclass), labels (multi-label)."""
        return self.classes

    @abstractmethod
    def members(self, preds: Predictions, group: int, by: Literal["predicted", "true"]) -> np.ndarray:
        """(N,) bool: the samples the model assigns to ``group`` (``by = "predicted"``) or that truly belong to it."""

    @abstractmethod
    def decide(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(n,) bool: for task scores (n, K), whether the model's answer for each row's target is "yes" (the
        predicted class, a label over its threshold). A counterfactual flips a decision when this changes."""

    def target_scores(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(n,) the score of each row's target output (a class probability, a label probability)."""
        return scores[np.arange(len(targets)), np.asarray(targets, dtype=np.int64)]

    # ---- explanations ---------------------------------------------------------------------------------
    @abstractmethod
    def targets(self, preds: Predictions, rows: np.ndarray, mode: TargetMode) -> np.ndarray:
        """(n,) int: the output column each explainer explains for these rows."""

    @contextmanager
    def explaining(self, model: nn.Module, inputs: torch.Tensor | None = None) -> Iterator[nn.Module]:
        """The module explainers run on while inside, for the batch ``inputs``: its (B, K) output is indexed by
        ``targets`` (default: the model itself; a one-logit binary model is read as the logits (−z, z); a
        segmentation model as each class's logits summed over the region it predicts for that class)."""
        yield model

    def target_region(self, roi: np.ndarray | None, truth: np.ndarray | None, target: int | None
                      ) -> np.ndarray | None:
        """Where the evidence for ``target`` (None: for the sample as a whole) should lie in one sample: its ROI
        (default), or for a per-pixel task the true region of the target class or the defect (``truth``: the
        sample's per-pixel truth)."""
        return roi
