"""Binary classification: one sigmoid output or a two-way softmax; the second class in data.classes is the
positive one (the finding, the defect). Audited at an operating threshold on the positive probability."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import nn

from ..drawing import charts, curves
from ..drawing.fmt import fmt
from ..errors import ConfigError, DataError, ModelError
from ..products import Picks, Predictions
from ..scoring.classification import Metrics, score
from ..scoring.labels import LabelMetrics, label_metrics
from ..scoring.ranking import choose_threshold
from ..selection.threshold import CATEGORIES, LabelView, take
from .base import ReportSection, TaskMetrics, TaskOptions
from .multiclass import MulticlassTask

RANKING = ("auroc", "auprc", "sensitivity", "specificity", "ppv", "npv", "f1")


class ThresholdedViews:
    """The multiclass views of thresholded decisions (``self.at``) that class-level rules read."""

    at: Metrics

    @property
    def per_class(self) -> tuple:
        return self.at.per_class

    @property
    def confusion(self) -> np.ndarray:
        return self.at.confusion

    @property
    def confusion_normalized(self) -> np.ndarray:
        return self.at.confusion_normalized


@dataclass(frozen=True)
class BinaryMetrics(ThresholdedViews):
    """Ranking metrics of the positive probability and everything at the threshold (the multiclass table of the
    thresholded decisions: accuracy, per class, confusion, subgroups)."""

    n: int
    positive: LabelMetrics
    at: Metrics

    def scalar(self, name: str) -> float:
        if name in RANKING or name in ("brier", "ece", "threshold", "prevalence"):
            return self.positive.scalar(name)
        return self.at.scalar(name)

    def interval(self, name: str) -> tuple[float, float] | None:
        if name in RANKING or name == "accuracy":
            return self.positive.interval(name)
        return self.at.interval(name)


def threshold_of(options: TaskOptions, label: str) -> tuple[float, str]:
    """The configured threshold for ``label`` and how it reads ("default 0.5", "model.threshold")."""
    t = options.threshold
    if t is None:
        return 0.5, "default 0.5"
    if isinstance(t, (int, float)):
        return float(t), "model.threshold"
    if label not in t:
        raise ConfigError(f"model.threshold: no threshold for {label!r} (thresholds are given for "
                          f"{', '.join(map(repr, t))})")
    return float(t[label]), f"model.threshold.{label}"


def choose(options: TaskOptions, label: str, y: np.ndarray, s: np.ndarray) -> tuple[float, str]:
    """The operating threshold of one label: configured, or chosen on these held-out scores (said so)."""
    if options.operating_point is None:
        return threshold_of(options, label)
    t = choose_threshold(y, s, options.operating_point)
    if math.isnan(t):
        raise DataError(f"model.operating_point: no threshold reaches {options.operating_point} for {label!r} on the "
                        "held-out set")
    return t, f"chosen on the held-out set ({options.operating_point})"


class BinaryTask(MulticlassTask):
    name = "binary"
    title = "binary classification (one sigmoid or a two-way softmax; the second class is the positive one)"
    pick_kinds = MappingProxyType({  # right and wrong as the decisions at the operating threshold define them
        "correct": ("correct", "right at the threshold (most confident)"),
        "incorrect": ("incorrect", "wrong at the threshold (misses first)"),
        "borderline": ("borderline", "closest to the threshold")})

    def __init__(self, classes: Sequence[str], options: TaskOptions | None = None) -> None:
        super().__init__(classes, options)
        if len(self.classes) != 2:
            raise ConfigError(f"model.task = 'binary' needs two classes (negative, positive) in data.classes; got "
                              f"{len(self.classes)}")
        self.threshold, self.source = threshold_of(self.options, self.classes[1])

    # ---- outputs -> scores (N, 2): (1 − p, p) for one logit and two alike ----------------------------------
    def check_outputs(self, outputs: object, batch: int) -> torch.Tensor:
        if not isinstance(outputs, torch.Tensor):
            raise ModelError(f"the model returned {type(outputs).__name__}, expected a tensor of logits")
        if outputs.dim() != 2 or outputs.shape[0] != batch or outputs.shape[1] not in (1, 2):
            raise ModelError(f"the model output has shape {tuple(outputs.shape)}; a binary task needs (batch, 1) "
                             "(one sigmoid logit) or (batch, 2) (two softmax logits)")
        out = outputs.float()
        if out.shape[1] == 2:
            return super().check_outputs(outputs, batch)
        in_unit = bool(((out >= 0) & (out <= 1)).all())
        if self.output_kind == "probabilities" and not in_unit:
            raise ModelError('model.output_kind = "probabilities" but the single output leaves [0, 1]')
        return out

    def to_scores(self, outputs: torch.Tensor) -> torch.Tensor:
        out = outputs.float()
        if out.shape[1] == 2:
            return super().to_scores(out)
        p = out[:, 0] if self.output_kind == "probabilities" else torch.sigmoid(out[:, 0])
        return torch.stack([1 - p, p], dim=1)

    @contextmanager
    def explaining(self, model: nn.Module, inputs: torch.Tensor | None = None) -> Iterator[nn.Module]:
        """A one-logit model z explained as the logits (−z, z): target 1 explains the finding, target 0 its absence
        (both sides of the same log-odds); a two-logit model is explained as it is."""

        def as_two(_m: nn.Module, _args: tuple, out: object) -> object:
            return torch.cat([-out, out], dim=1) if isinstance(out, torch.Tensor) and out.shape[-1] == 1 else out

        handle = model.register_forward_hook(as_two)
        try:
            yield model
        finally:
            handle.remove()

    def predictions_json(self, preds: Predictions) -> dict[str, Any]:
        """The multiclass record plus each sample's probability of the positive class (the score the threshold
        is applied to)."""
        return {**super().predictions_json(preds), "p_positive": preds.probs[:, 1]}

    # ---- the operating point ------------------------------------------------------------------------------
    def fit(self, preds: Predictions, records: Sequence[Any] = (), preprocess: Any = None
            ) -> tuple[BinaryTask, Predictions]:
        t, source = choose(self.options, self.classes[1], preds.labels, preds.probs[:, 1])
        fitted = copy.copy(self)
        fitted.threshold, fitted.source = t, source
        return fitted, replace(preds, decisions=(preds.probs[:, 1] >= t).astype(np.int64))

    def decide(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        yes = scores[:, 1] >= self.threshold
        return np.where(np.asarray(targets) == 1, yes, ~yes)

    def members(self, preds: Predictions, group: int, by: str) -> np.ndarray:
        return (preds.preds if by == "predicted" else preds.labels) == group

    # ---- metrics ------------------------------------------------------------------------------------------
    def metrics(self, preds: Predictions, rng: np.random.Generator, subgroups: Sequence[str] = ()) -> BinaryMetrics:
        seed = int(rng.integers(2**31 - 1))
        pos = label_metrics(self.classes[1], preds.labels, preds.probs[:, 1], self.threshold, self.source, seed)
        return BinaryMetrics(n=preds.n, positive=pos, at=score(preds, self.classes, rng, tuple(subgroups)))

    def results_sections(self, metrics: TaskMetrics) -> dict[str, Any]:
        m = _binary(metrics)
        out = super().results_sections(m.at)
        out["metrics"] = {**out["metrics"], **label_section(m.positive), "ece": m.positive.calibration.ece,
                          "mce": m.positive.calibration.mce, "brier": m.positive.brier}
        out["calibration"] = calibration_section(m.positive)
        out["curves"] = {self.classes[1]: {"roc": m.positive.roc, "pr": m.positive.pr}}
        return out

    def report_sections(self, metrics: TaskMetrics) -> list[ReportSection]:
        m = _binary(metrics)
        base = {s.id: s for s in super().report_sections(m.at)}
        rows = label_rows(m.positive)
        return [
            ReportSection("metrics", "Metrics", "_metrics_binary.html.j2",
                          {"positive": self.classes[1], "rows": rows, "table": base["metrics"].context["metrics"],
                           "source": m.positive.threshold_source}),
            ReportSection("curves", "ROC and precision-recall", "_curves.html.j2",
                          {"figure": curves.roc_pr_figure([m.positive])}),
            base["confusion"],
            ReportSection("calibration", "Calibration", "_calibration.html.j2",
                          {"figure": charts.reliability_figure(m.positive.calibration),
                           "caption": f"Bars: fraction of '{self.classes[1]}' among the samples whose predicted "
                           f"probability of '{self.classes[1]}' falls in each bin; dots: their mean predicted "
                           "probability. ECE is the sample-weighted mean gap."}),
        ]

    def headline(self, metrics: TaskMetrics) -> str:
        m = _binary(metrics).positive
        lo, hi = m.auroc_ci
        return (f"AUROC {fmt(m.auroc, 4)} (95 % CI {fmt(lo, 4)}–{fmt(hi, 4)}), sensitivity "
                f"{fmt(m.op.rate('sensitivity'), 4)}, specificity {fmt(m.op.rate('specificity'), 4)} at threshold "
                f"{m.op.threshold:.4g} ({m.threshold_source}), n = {m.n_positive + m.n_negative}.")

    # ---- samples ------------------------------------------------------------------------------------------
    def view(self, preds: Predictions) -> LabelView:
        return LabelView(self.classes[1], 1, preds.labels, preds.probs[:, 1], self.threshold, negative=self.classes[0],
                         positive=self.classes[1])

    def select(self, preds: Predictions, k: int, per_class: int) -> Picks:
        v = self.view(preds)
        every = np.arange(preds.n)
        overall = {c: take(v, preds.ids, every, c, k, "overall", "overall") for c in CATEGORIES}
        by_class = {ci: {c: take(v, preds.ids, np.flatnonzero(preds.labels == ci), c, per_class,
                                 f"class:{name}", f"among true '{name}'") for c in CATEGORIES}
                    for ci, name in enumerate(self.classes)}
        return Picks(overall=overall, per_class=by_class)

    def targets(self, preds: Predictions, rows: np.ndarray, mode: str) -> np.ndarray:
        return np.ones(len(rows), dtype=np.int64)  # the finding's evidence, whatever the answer


def _binary(metrics: TaskMetrics) -> BinaryMetrics:
    if not isinstance(metrics, BinaryMetrics):
        raise TypeError(f"binary metrics expected, got {type(metrics).__name__}")
    return metrics


def label_section(m: LabelMetrics) -> dict[str, Any]:
    """One label's figures as results.json states them."""
    op = m.op
    return {
        "auroc": m.auroc, "auroc_ci95": list(m.auroc_ci), "auprc": m.auprc, "auprc_ci95": list(m.auprc_ci),
        "prevalence": m.prevalence,
        "operating_point": {
            "threshold": op.threshold, "source": m.threshold_source, "tp": op.tp, "fp": op.fp, "tn": op.tn,
            "fn": op.fn, "f1": op.f1,
            **{k: op.rate(k) for k in ("sensitivity", "specificity", "ppv", "npv")},
            **{f"{k}_ci95": list(op.interval(k)) for k in ("sensitivity", "specificity", "ppv", "npv")},
        },
    }


def calibration_section(m: LabelMetrics) -> dict[str, Any]:
    c = m.calibration
    return {"bins": len(c.bin_counts), "bin_edges": list(c.bin_edges), "count": list(c.bin_counts),
            "confidence": list(c.bin_confidence), "accuracy": list(c.bin_accuracy), "ece": c.ece,
            "of": f"probability of '{m.name}' (accuracy = fraction positive)"}


def label_rows(m: LabelMetrics) -> list[dict[str, str]]:
    """The table rows a reader needs for one label, each with its interval."""
    def with_ci(v: float, ci: tuple[float, float] | None) -> str:
        return fmt(v) + (f" ({fmt(ci[0])}–{fmt(ci[1])})" if ci else "")

    op = m.op
    rows = [("AUROC", with_ci(m.auroc, m.auroc_ci)), ("Average precision (PR-AUC)", with_ci(m.auprc, m.auprc_ci)),
            ("Threshold", f"{op.threshold:.4g} — {m.threshold_source}")]
    rows += [(k.upper() if len(k) == 3 else k.capitalize(), with_ci(op.rate(k), op.interval(k)))
             for k in ("sensitivity", "specificity", "ppv", "npv")]
    rows += [("F1", fmt(op.f1)), ("TP / FP / TN / FN", f"{op.tp} / {op.fp} / {op.tn} / {op.fn}"),
             ("Prevalence", fmt(m.prevalence)), ("Brier score / ECE", f"{fmt(m.brier)} / {fmt(m.calibration.ece)}")]
    return [{"name": a, "value": b} for a, b in rows]

