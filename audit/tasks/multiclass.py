"""Multiclass classification: one softmax over mutually exclusive classes (the model returns logits (B, C))."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..drawing import charts
from ..drawing.fmt import fmt
from ..errors import ModelError
from ..products import Picks, Predictions
from ..scoring.classification import Metrics, score
from ..selection.classification import select_samples
from .base import ReportSection, SampleSummary, TargetMode, Task, TaskMetrics

PROB_TOL = 1e-3  # rows of a softmax output sum to 1 within float rounding


class MulticlassTask(Task):
    name = "multiclass"
    title = "multiclass classification (softmax)"
    provides = frozenset({"single_label", "whole_image", "maps"})

    # ---- outputs -> scores ----------------------------------------------------------------------------
    def check_outputs(self, outputs: object, batch: int) -> torch.Tensor:
        C = len(self.classes)
        if not isinstance(outputs, torch.Tensor):
            raise ModelError(f"the model returned {type(outputs).__name__}, expected a tensor of logits")
        if outputs.dim() != 2 or outputs.shape[0] != batch:
            raise ModelError(
                f"the model output has shape {tuple(outputs.shape)}; expected (batch, classes) = ({batch}, {C})")
        if outputs.shape[1] != C:
            raise ModelError(f"the model has {outputs.shape[1]} outputs but data.classes lists {C} classes")
        out = outputs.float()
        rows_are_distributions = bool(((out >= 0).all(dim=1) & ((out.sum(dim=1) - 1).abs() <= PROB_TOL)).all())
        if self.output_kind == "auto" and rows_are_distributions:
            raise ModelError(
                "the model's outputs are already probabilities (every row non-negative and summing to 1): a second "
                'softmax would flatten them; set model.output_kind = "probabilities" if forward applies softmax (or "logits" '
                'if these are logits)')
        if self.output_kind == "probabilities" and not rows_are_distributions:
            raise ModelError('model.output_kind = "probabilities" but the outputs are not probabilities (rows '
                             "negative or not summing to 1): use the default \"logits\"")
        return out

    def to_scores(self, outputs: torch.Tensor) -> torch.Tensor:
        if self.output_kind == "probabilities":
            return outputs.float()
        return torch.softmax(outputs.float(), dim=1)

    # ---- metrics --------------------------------------------------------------------------------------
    def metrics(self, preds: Predictions, rng: np.random.Generator, subgroups: Sequence[str] = ()) -> Metrics:
        return score(preds, self.classes, rng, tuple(subgroups))

    def results_sections(self, metrics: TaskMetrics) -> dict[str, Any]:
        m = _as_metrics(metrics)
        return {
            "metrics": {
                "accuracy": m.accuracy,
                "accuracy_ci95": list(m.accuracy_ci),
                "balanced_accuracy": m.balanced_accuracy,
                "macro_f1": m.macro_f1,
                "weighted_f1": m.weighted_f1,
                "nll": m.nll,
                "brier": m.brier,
                "top_k_accuracy": {str(k): v for k, v in m.top_k.items()},
                "ece": m.calibration.ece,
                "mce": m.calibration.mce,
                "per_class": [
                    {"class": c.name, "precision": c.precision, "recall": c.recall, "f1": c.f1, "support": c.support}
                    for c in m.per_class
                ],
                "subgroups": [
                    {"column": g.column, "value": g.value, "n": g.n, "accuracy": g.accuracy,
                     "accuracy_ci95": list(g.accuracy_ci), "balanced_accuracy": g.balanced_accuracy,
                     "macro_f1": g.macro_f1}
                    for g in m.subgroups
                ],
            },
            "confusion_matrix": {"counts": m.confusion, "normalized": m.confusion_normalized},
            "calibration": {
                "bins": len(m.calibration.bin_counts),
                "bin_edges": list(m.calibration.bin_edges),
                "count": list(m.calibration.bin_counts),
                "confidence": list(m.calibration.bin_confidence),
                "accuracy": list(m.calibration.bin_accuracy),
            },
        }

    def report_sections(self, metrics: TaskMetrics) -> list[ReportSection]:
        m = _as_metrics(metrics)
        table = {
            "n": m.n,
            "accuracy": fmt(m.accuracy),
            "accuracy_ci": f"{fmt(m.accuracy_ci[0])}–{fmt(m.accuracy_ci[1])}",
            "balanced_accuracy": fmt(m.balanced_accuracy),
            "macro_f1": fmt(m.macro_f1),
            "weighted_f1": fmt(m.weighted_f1),
            "ece": fmt(m.calibration.ece),
            "mce": fmt(m.calibration.mce),
            "nll": fmt(m.nll),
            "brier": fmt(m.brier),
            "top_k": [{"k": k, "value": fmt(v)} for k, v in m.top_k.items()],
            "per_class": [{"name": c.name, "precision": fmt(c.precision), "recall": fmt(c.recall),
                           "f1": fmt(c.f1), "support": c.support} for c in m.per_class],
            "subgroups": [{"column": g.column, "value": g.value, "n": g.n, "accuracy": fmt(g.accuracy),
                           "ci": f"{fmt(g.accuracy_ci[0])}–{fmt(g.accuracy_ci[1])}",
                           "balanced_accuracy": fmt(g.balanced_accuracy), "macro_f1": fmt(g.macro_f1)}
                          for g in m.subgroups],
        }
        confusion = {
            "figure": charts.confusion_figure(m.confusion, m.confusion_normalized, self.classes),
            "counts": m.confusion.tolist(),
            "normalized": [[fmt(v, 2) for v in row] for row in m.confusion_normalized],
            "classes": list(self.classes),
        }
        return [
            ReportSection("metrics", "Metrics", "_metrics_multiclass.html.j2", {"metrics": table}),
            ReportSection("confusion", "Confusion matrix", "_confusion.html.j2", {"confusion": confusion}),
            ReportSection("calibration", "Calibration", "_calibration.html.j2",
                          {"figure": charts.reliability_figure(m.calibration)}),
        ]

    def headline(self, metrics: TaskMetrics) -> str:
        m = _as_metrics(metrics)
        lo, hi = m.accuracy_ci
        return (f"Accuracy {m.accuracy:.4f} (95 % CI {lo:.4f}–{hi:.4f}), balanced accuracy "
                f"{m.balanced_accuracy:.4f}, macro F1 {m.macro_f1:.4f}, ECE {m.calibration.ece:.4f}, n = {m.n}.")

    # ---- samples --------------------------------------------------------------------------------------
    def select(self, preds: Predictions, k: int, per_class: int) -> Picks:
        return select_samples(preds, self.classes, k, per_class)

    def outcome(self, preds: Predictions) -> np.ndarray:
        return preds.correct

    def describe(self, preds: Predictions, row: int) -> SampleSummary:
        return SampleSummary(label=self.classes[int(preds.labels[row])], predicted=self.classes[int(preds.preds[row])],
                             confidence=float(preds.confidence[row]), correct=bool(preds.correct[row]))

    def predictions_json(self, preds: Predictions) -> dict[str, Any]:
        return {"ids": [str(s) for s in preds.ids], "labels": preds.labels, "predicted": preds.preds,
                "confidence": preds.confidence}

    # ---- rules ----------------------------------------------------------------------------------------
    def members(self, preds: Predictions, group: int, by: str) -> np.ndarray:
        return (preds.preds if by == "predicted" else preds.labels) == group

    def decide(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return scores.argmax(axis=1) == np.asarray(targets)

    # ---- explanations ---------------------------------------------------------------------------------
    def targets(self, preds: Predictions, rows: np.ndarray, mode: TargetMode) -> np.ndarray:
        if mode == "predicted":
            return preds.preds[rows]
        if mode == "label":
            return preds.labels[rows]
        raise ValueError(f"target must be 'predicted' or 'label'; got {mode!r}")


def _as_metrics(metrics: TaskMetrics) -> Metrics:
    if not isinstance(metrics, Metrics):
        raise TypeError(f"multiclass metrics expected, got {type(metrics).__name__}")
    return metrics
