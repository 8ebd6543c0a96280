"""Anomaly detection for visual inspection: the model returns an anomaly score per image (B,) / (B, 1), or an
anomaly map (B, H, W) / (B, 1, H, W) whose maximum is the image's score (as PaDiM, PatchCore and anomalib's
models report it; said so in the report). data.classes = [normal, anomalous]; the manifest's optional 'mask'
column holds defect masks (non-zero = defect; empty for a normal image).

Image level: AUROC and average precision of the score (bootstrap intervals), F1 and the rates at the operating
threshold — configured (model.threshold, any score) or chosen on the held-out set (model.operating_point,
default 'f1': the threshold of maximum F1), stated as such. Pixel level, with maps and masks: pixel AUROC and
AUPRO (:mod:`audit.scoring.anomaly`). Explanations target the score; the model's own map is the explainer
``anomaly_map``. Scores are not probabilities: no calibration is reported.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..drawing import curves, segmaps
from ..drawing.fmt import fmt
from ..errors import ModelError
from ..explainers.anomaly_map import MAP_ATTR
from ..loading.labelmask import fitted_label_mask, read_defect_mask
from ..products import Predictions
from ..scoring.anomaly import PixelMetrics, pixel_metrics
from ..scoring.classification import Metrics, score
from ..scoring.labels import LabelMetrics, label_metrics
from ..selection.threshold import LabelView
from .base import ReportSection, SampleSummary, TaskMetrics, TaskOptions
from .binary import BinaryTask, ThresholdedViews, choose, label_section

IMAGE = ("auroc", "auprc", "f1", "sensitivity", "specificity", "ppv", "npv", "threshold", "prevalence")


@dataclass(frozen=True)
class AnomalyMetrics(ThresholdedViews):
    n: int
    image: LabelMetrics  # the score against normal / anomalous (calibration and Brier are not meaningful)
    at: Metrics  # the decisions at the threshold as a two-class table (accuracy, per class, confusion, subgroups)
    pixel: PixelMetrics | None
    pixel_reason: str  # why pixel metrics are unavailable ("" when computed)

    def scalar(self, name: str) -> float:
        if name in ("pixel_auroc", "aupro"):
            return float(getattr(self.pixel, name)) if self.pixel is not None else float("nan")
        if name in IMAGE:
            return self.image.scalar(name)
        if name in ("ece", "brier", "nll"):
            raise KeyError(f"{name!r}: an anomaly score is not a probability; no calibration metric applies")
        return self.at.scalar(name)

    def interval(self, name: str) -> tuple[float, float] | None:
        if name in ("pixel_auroc", "aupro"):
            return getattr(self.pixel, f"{name}_ci") if self.pixel is not None else None
        if name in IMAGE or name == "accuracy":
            return self.image.interval(name)
        return self.at.interval(name)


class AnomalyTask(BinaryTask):
    name = "anomaly"
    title = "anomaly detection (a score per image, or an anomaly map whose maximum is the score)"
    model_views = False
    key_metric = "auroc"  # image AUROC (per class: the recall at the operating threshold)

    def __init__(self, classes: Sequence[str], options: TaskOptions | None = None) -> None:
        opts = options or TaskOptions()
        if opts.threshold is None and opts.operating_point is None:
            opts = dataclasses.replace(opts, operating_point="f1")  # no natural threshold for a raw score
        super().__init__(classes, opts)

    # ---- outputs: a score, or a map and its maximum ----------------------------------------------------------
    def check_outputs(self, outputs: object, batch: int) -> torch.Tensor:
        ok = isinstance(outputs, torch.Tensor) and outputs.shape[:1] == (batch,) and (
            outputs.dim() in (1, 3) or (outputs.dim() in (2, 4) and outputs.shape[1] == 1))
        if not ok:
            shape = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
            raise ModelError(f"the model output has shape {shape}; an anomaly detector returns a score per image "
                             "(batch,) or (batch, 1), or an anomaly map (batch, height, width) or (batch, 1, height, "
                             "width)")
        out = outputs.float()  # type: ignore[union-attr]
        if not torch.isfinite(out).all():
            raise ModelError("the model returned non-finite anomaly scores")
        return out

    @staticmethod
    def _map(out: torch.Tensor) -> torch.Tensor | None:
        """(B, h, w) anomaly map of a map output, None for a score output."""
        if out.dim() == 4:
            return out[:, 0]
        return out if out.dim() == 3 else None

    @classmethod
    def _score(cls, out: torch.Tensor) -> torch.Tensor:
        m = cls._map(out)
        return m.amax(dim=(1, 2)) if m is not None else out.reshape(len(out))

    def to_scores(self, outputs: torch.Tensor) -> torch.Tensor:
        s = self._score(outputs.float())
        return torch.stack([-s, s], dim=1)  # column 1 is the anomaly score; column 0 only mirrors it

    def dense(self, outputs: torch.Tensor, size: tuple[int, int]) -> np.ndarray | None:
        m = self._map(outputs.float())
        if m is None:
            return None
        if tuple(m.shape[-2:]) != tuple(size):
            m = F.interpolate(m[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        return m.cpu().numpy().astype(np.float32)

    @contextmanager
    def explaining(self, model: nn.Module, inputs: torch.Tensor | None = None) -> Iterator[nn.Module]:
        """The score as the logits (−s, s): target 1 explains "anomalous"; the map of the last forward is kept on
        the module for the ``anomaly_map`` explainer."""

        def as_two(mod: nn.Module, _args: tuple, out: object) -> object:
            if not isinstance(out, torch.Tensor):
                return out
            object.__setattr__(mod, MAP_ATTR, self._map(out))
            s = self._score(out)[:, None]
            return torch.cat([-s, s], dim=1)

        handle = model.register_forward_hook(as_two)
        try:
            yield model
        finally:
            handle.remove()
            if MAP_ATTR in model.__dict__:
                object.__delattr__(model, MAP_ATTR)

    # ---- the operating point and the defect masks ---------------------------------------------------------------
    def fit(self, preds: Predictions, records: Sequence[Any] = (), preprocess: Any = None
            ) -> tuple[AnomalyTask, Predictions]:
        t, source = choose(self.options, self.classes[1], preds.labels, preds.probs[:, 1])
        fitted = copy.copy(self)
        fitted.threshold, fitted.source = t, source
        truth = None
        if any(getattr(r, "mask", None) is not None for r in records) and preprocess is not None:
            size = preprocess.size
            rows = []
            for r, y in zip(records, preds.labels, strict=True):
                if r.mask is not None:
                    rows.append(fitted_label_mask(read_defect_mask(r.mask, r.source), size, r.resize))
                else:  # a normal image without a mask is defect-free; an anomalous one without a mask is unknown
                    rows.append(np.full(size, 0 if y == 0 else -1, dtype=np.int16))
            truth = np.stack(rows)
        return fitted, dataclasses.replace(preds, decisions=(preds.probs[:, 1] >= t).astype(np.int64),
                                           dense_truth=truth)

    def target_region(self, roi: np.ndarray | None, truth: np.ndarray | None, target: int | None) -> np.ndarray | None:
        """The defect mask where the image has one, else its ROI."""
        if truth is not None and (truth > 0).any():
            return truth > 0
        return roi

    # ---- metrics ----------------------------------------------------------------------------------------------
    def metrics(self, preds: Predictions, rng: np.random.Generator, subgroups: Sequence[str] = ()) -> AnomalyMetrics:
        seed = int(rng.integers(2**31 - 1))
        image = label_metrics(self.classes[1], preds.labels, preds.probs[:, 1], self.threshold, self.source, seed)
        decided = dataclasses.replace(preds, probs=np.eye(2)[preds.preds])  # the table reads the decisions only
        at = score(decided, self.classes, rng, tuple(subgroups))
        pixel, reason = None, ""
        if preds.dense_truth is None:
            reason = "the manifest has no defect masks ('mask' column)"
        elif preds.dense is None:
            reason = "the model returns a score only, no anomaly map"
        elif not (preds.dense_truth > 0).any():
            reason = "no held-out image has a defect pixel in its mask"
        else:
            pixel = pixel_metrics(preds.dense_truth, preds.dense, seed)
        return AnomalyMetrics(preds.n, image, at, pixel, reason)

    def results_sections(self, metrics: TaskMetrics) -> dict[str, Any]:
        m = _anomaly(metrics)
        px = m.pixel
        pixel: dict[str, Any] = {"available": px is not None, "reason": m.pixel_reason}
        if px is not None:
            pixel.update({"pixel_auroc": px.pixel_auroc, "pixel_auroc_ci95": list(px.pixel_auroc_ci),
                          "aupro": px.aupro, "aupro_ci95": list(px.aupro_ci), "aupro_fpr_limit": px.fpr_limit,
                          "n_images": px.n_images, "n_regions": px.n_regions, "pixel_stride": px.stride})
        section = label_section(m.image)
        return {
            "metrics": {**section, "accuracy": m.at.accuracy,
                "balanced_accuracy": m.at.balanced_accuracy,
                "per_class": [{"class": c.name, "precision": c.precision, "recall": c.recall, "f1": c.f1,
                               "support": c.support} for c in m.at.per_class],
                "subgroups": [{"column": g.column, "value": g.value, "n": g.n, "accuracy": g.accuracy,
                               "accuracy_ci95": list(g.accuracy_ci)} for g in m.at.subgroups],
                "pixel": pixel},
            "confusion_matrix": {"counts": m.at.confusion, "normalized": m.at.confusion_normalized},
            "curves": {self.classes[1]: {"roc": m.image.roc, "pr": m.image.pr}},
        }

    def report_sections(self, metrics: TaskMetrics) -> list[ReportSection]:
        m = _anomaly(metrics)
        im, op = m.image, m.image.op

        def ci(v: float, c: tuple[float, float] | None) -> str:
            return fmt(v) + (f" ({fmt(c[0])}–{fmt(c[1])})" if c else "")

        rows = [("Image AUROC", ci(im.auroc, im.auroc_ci)), ("Average precision (PR-AUC)", ci(im.auprc, im.auprc_ci)),
                ("Threshold on the score", f"{op.threshold:.4g} — {im.threshold_source}"),
                ("F1 at the threshold", fmt(op.f1))]
        rows += [(k.upper() if len(k) == 3 else k.capitalize(), ci(op.rate(k), op.interval(k)))
                 for k in ("sensitivity", "specificity", "ppv", "npv")]
        rows += [("Missed defects / false alarms", f"{op.fn} / {op.fp}"), ("Anomalous / normal images",
                                                                            f"{im.n_positive} / {im.n_negative}")]
        if m.pixel is not None:
            px = m.pixel
            rows += [("Pixel AUROC", ci(px.pixel_auroc, px.pixel_auroc_ci)),
                     (f"AUPRO (FPR ≤ {px.fpr_limit:g})", ci(px.aupro, px.aupro_ci)),
                     ("Defect regions", f"{px.n_regions} in {px.n_images} images"
                      + (f" (every {px.stride}th pixel per direction)" if px.stride > 1 else ""))]
        else:
            rows.append(("Pixel AUROC / AUPRO", f"unavailable: {m.pixel_reason}"))
        table = [{"name": a, "value": b} for a, b in rows]
        return [
            ReportSection("metrics", "Metrics", "_metrics_anomaly.html.j2",
                          {"rows": table, "positive": self.classes[1], "source": im.threshold_source,
                           "per_class": [{"name": c.name, "precision": fmt(c.precision), "recall": fmt(c.recall),
                                          "f1": fmt(c.f1), "support": c.support} for c in m.at.per_class]}),
            ReportSection("curves", "ROC and precision-recall", "_curves.html.j2",
                          {"figure": curves.roc_pr_figure([im])}),
        ]

    def sample_sections(self, preds: Predictions, picks: Any, images: Any) -> list[ReportSection]:
        """The score distribution of normal and anomalous images with the threshold."""
        s = preds.probs[:, 1]
        fig = segmaps.score_classes_histogram(s, preds.labels, self.classes, self.threshold)
        return [ReportSection("scores", "Anomaly scores", "_anomaly_scores.html.j2", {"figure": fig})]

    def headline(self, metrics: TaskMetrics) -> str:
        m = _anomaly(metrics)
        im = m.image
        px = (f"; pixel AUROC {fmt(m.pixel.pixel_auroc, 4)}, AUPRO {fmt(m.pixel.aupro, 4)}"
              if m.pixel is not None else "")
        return (f"Image AUROC {fmt(im.auroc, 4)} (95 % CI {fmt(im.auroc_ci[0], 4)}–{fmt(im.auroc_ci[1], 4)}), F1 "
                f"{fmt(im.op.f1, 4)} at threshold {im.op.threshold:.4g} ({im.threshold_source}){px}, "
                f"n = {m.n}.")

    # ---- samples -------------------------------------------------------------------------------------------
    def view(self, preds: Predictions) -> LabelView:
        s = preds.probs[:, 1]
        return LabelView(self.classes[1], 1, preds.labels, s, self.threshold, negative=self.classes[0],
                         positive=self.classes[1], unit="anomaly score",
                         span=(float(s.min()), float(s.max())) if len(s) else (0.0, 1.0))

    def describe(self, preds: Predictions, row: int) -> SampleSummary:
        d = int(preds.preds[row])
        return SampleSummary(label=self.classes[int(preds.labels[row])], predicted=self.classes[d],
                             confidence=float(preds.probs[row, 1]), correct=bool(d == preds.labels[row]))

    def predictions_json(self, preds: Predictions) -> dict[str, Any]:
        return {"ids": [str(s) for s in preds.ids], "labels": preds.labels, "predicted": preds.preds,
                "score": preds.probs[:, 1]}


def _anomaly(metrics: TaskMetrics) -> AnomalyMetrics:
    if not isinstance(metrics, AnomalyMetrics):
        raise TypeError(f"anomaly metrics expected, got {type(metrics).__name__}")
    return metrics
