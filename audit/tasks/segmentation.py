"""Semantic segmentation: the model returns per-pixel class logits (B, C, h, w); each held-out image has a mask of
class indices. Scored per pixel (IoU, Dice, boundary F1) with intervals over images; explained per class as the
class's logits summed over the region the model predicts for it (pytorch-grad-cam's SemanticSegmentationTarget,
MATLAB's gradCAM for segmentation)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..drawing import charts, segmaps
from ..drawing.fmt import fmt
from ..errors import ModelError
from ..loading.labelmask import fitted_label_mask, read_label_mask
from ..products import Pick, PickCategory, Picks, Predictions
from ..scoring.segmentation import SegmentationMetrics, class_ratios, image_confusions, segmentation_metrics
from .base import ReportSection, SampleSummary, TargetMode, Task, TaskMetrics

PRESENT = 0.01  # a class counts as predicted in an image when it covers at least this share of its pixels


class SegmentationTask(Task):
    name = "segmentation"
    title = "semantic segmentation (per-pixel class logits)"
    model_views = False
    provides = frozenset({"maps"})
    key_metric, group_metric = "mean_iou", "iou:{group}"
    pick_kinds = MappingProxyType({"correct": ("best", "best by Dice"), "incorrect": ("worst", "worst by Dice"),
                                   "borderline": ("least_certain", "least certain (mean pixel margin)")})
    rule_hint = "use metric_min with mean_iou, iou:<class>, dice:<class>, boundary_f1:<class> or min_iou"

    # ---- outputs: scores (B, C + 1) = each class's soft area, then the mean top-1 − top-2 margin ---------------
    def check_outputs(self, outputs: object, batch: int) -> torch.Tensor:
        C = len(self.classes)
        if not isinstance(outputs, torch.Tensor) or outputs.dim() != 4 or outputs.shape[0] != batch \
                or outputs.shape[1] != C:
            shape = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
            raise ModelError(f"the model output has shape {shape}; a segmentation task with {C} classes needs "
                             f"per-pixel logits (batch, {C}, height, width)")
        return outputs.float()

    def _probs(self, outputs: torch.Tensor) -> torch.Tensor:
        out = outputs.float()
        return out if self.output_kind == "probabilities" else torch.softmax(out, dim=1)

    def to_scores(self, outputs: torch.Tensor) -> torch.Tensor:
        p = self._probs(outputs)
        top2 = p.topk(min(2, p.shape[1]), dim=1).values
        margin = (top2[:, 0] - top2[:, -1]).mean(dim=(1, 2)) if p.shape[1] > 1 else torch.ones(len(p))
        return torch.cat([p.mean(dim=(2, 3)), margin[:, None]], dim=1)

    def dense(self, outputs: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        out = outputs.float()
        if tuple(out.shape[-2:]) != tuple(size):
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        return out.argmax(dim=1).to(torch.int16).cpu().numpy()

    def fit(self, preds: Predictions, records: Sequence[Any] = (), preprocess: Any = None
            ) -> tuple[SegmentationTask, Predictions]:
        """The true masks at the input geometry, beside the predicted ones."""
        size = preprocess.size
        truth = np.stack([fitted_label_mask(read_label_mask(r.mask, len(self.classes), r.source), size, r.resize)
                          for r in records])
        return self, replace(preds, dense_truth=truth)

    # ---- explanations: a class's logits summed over its predicted region -----------------------------------
    @contextmanager
    def explaining(self, model: nn.Module, inputs: torch.Tensor | None = None) -> Iterator[nn.Module]:
        if inputs is None:
            raise ModelError("segmentation explanations need the batch (the predicted regions come from it)")
        with torch.no_grad():
            region = F.one_hot(model(inputs).argmax(dim=1), len(self.classes)).permute(0, 3, 1, 2).float()

        def summed(_m: nn.Module, args: tuple, out: object) -> object:
            if not isinstance(out, torch.Tensor) or out.dim() != 4:
                return out
            n, b = out.shape[0], region.shape[0]
            if n == b:
                reg = region
            elif n < b and args and torch.equal(args[0], inputs[:n].to(args[0].device, args[0].dtype)):
                reg = region[:n]  # the batch's first images as they are (e.g. a layer-shape probe)
            elif n % b == 0:  # perturbed copies (occlusion, integrated gradients): captum stacks whole copies of
                reg = region.repeat(n // b, 1, 1, 1)  # the batch, so row i belongs to image i mod B
            else:
                raise ModelError(f"a batch of {n} perturbed images for {b} explained ones: not whole copies of the "
                                 "batch")
            return (out * reg.to(out.dtype)).sum(dim=(2, 3))

        handle = model.register_forward_hook(summed)
        try:
            yield model
        finally:
            handle.remove()

    def target_region(self, roi: np.ndarray | None, truth: np.ndarray | None, target: int | None
                      ) -> np.ndarray | None:
        """``target``: that class's true region. None (the sample as a whole, e.g. the object a background swap
        keeps): every labelled pixel of a class other than the first (usually the background), with the
        record's ROI where it has one."""
        if truth is None:
            return roi
        region = truth == target if target is not None else truth > 0
        if target is None and roi is not None:
            region = region | roi
        return region if region.any() else None

    # ---- rules ------------------------------------------------------------------------------------------
    def _areas(self, preds: Predictions, rows: np.ndarray | None = None) -> np.ndarray:
        """(n, C) share of each image's pixels predicted as each class (the argmax masks; soft areas before the
        masks exist)."""
        rows = np.arange(preds.n) if rows is None else np.asarray(rows)
        if preds.dense is None:
            return preds.probs[rows, :-1]
        C = len(self.classes)
        d = preds.dense[rows].reshape(len(rows), -1).astype(np.int64)
        counts = np.stack([np.bincount(r[r >= 0], minlength=C)[:C] for r in d]) if len(rows) else np.zeros((0, C))
        return counts / max(d.shape[1], 1)

    def members(self, preds: Predictions, group: int, by: str) -> np.ndarray:
        if by == "predicted":
            return self._areas(preds)[:, group] > 0 if preds.dense is not None else preds.probs[:, group] >= PRESENT
        return preds.labels[:, group] == 1

    def decide(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        t = np.asarray(targets, dtype=np.int64)
        return scores[np.arange(len(t)), t] >= PRESENT

    # ---- metrics ------------------------------------------------------------------------------------------
    def metrics(self, preds: Predictions, rng: np.random.Generator,
                subgroups: Sequence[str] = ()) -> SegmentationMetrics:
        if preds.dense is None or preds.dense_truth is None:
            raise ModelError("segmentation metrics need the per-pixel predictions and masks")
        return segmentation_metrics(self.classes, preds.dense_truth, preds.dense, int(rng.integers(2**31 - 1)))

    def results_sections(self, metrics: TaskMetrics) -> dict[str, Any]:
        m = _seg(metrics)
        return {
            "metrics": {
                "mean_iou": m.mean_iou, "mean_iou_ci95": list(m.mean_iou_ci), "pixel_accuracy": m.pixel_accuracy,
                "pixel_accuracy_ci95": list(m.pixel_accuracy_ci), "mean_dice": m.scalar("mean_dice"),
                "mean_boundary_f1": m.scalar("mean_boundary_f1"), "boundary_tolerance_px": m.tolerance_px,
                "median_image_dice": m.scalar("median_image_dice"),
                "per_class": [{"class": c, "iou": m.iou[i], "iou_ci95": list(m.iou_ci[i]), "dice": m.dice[i],
                               "dice_ci95": list(m.dice_ci[i]), "boundary_f1": m.boundary_f1[i],
                               "pixels_true": int(m.confusion[i].sum()), "pixels_predicted": int(m.confusion[:, i].sum())}
                              for i, c in enumerate(self.classes)],
            },
            "confusion_matrix": {"unit": "pixels", "counts": m.confusion, "normalized": m.confusion_normalized},
            "image_dice": {"quantiles": {str(q): float(np.nanquantile(m.image_dice, q))
                                         for q in (0.05, 0.25, 0.5, 0.75, 0.95)} if np.isfinite(m.image_dice).any()
                           else {}},
        }

    def report_sections(self, metrics: TaskMetrics) -> list[ReportSection]:
        m = _seg(metrics)

        def ci(v: float, c: tuple[float, float]) -> str:
            return f"{fmt(v)} ({fmt(c[0])}–{fmt(c[1])})"

        rows = [{"name": "Mean IoU (95 % CI over images)", "value": ci(m.mean_iou, m.mean_iou_ci)},
                {"name": "Pixel accuracy", "value": ci(m.pixel_accuracy, m.pixel_accuracy_ci)},
                {"name": "Mean Dice", "value": fmt(m.scalar("mean_dice"))},
                {"name": f"Mean boundary F1 (tolerance {m.tolerance_px} px)", "value": fmt(m.scalar("mean_boundary_f1"))},
                {"name": "Median image Dice", "value": fmt(m.scalar("median_image_dice"))},
                {"name": "Images", "value": str(m.n)}]
        per_class = [{"name": c, "iou": ci(m.iou[i], m.iou_ci[i]), "dice": ci(m.dice[i], m.dice_ci[i]),
                      "bf1": fmt(m.boundary_f1[i]), "true": int(m.confusion[i].sum()),
                      "pred": int(m.confusion[:, i].sum())} for i, c in enumerate(self.classes)]
        confusion = {"figure": charts.confusion_figure(m.confusion, m.confusion_normalized, self.classes),
                     "counts": m.confusion.tolist(),
                     "normalized": [[fmt(v, 2) for v in row] for row in m.confusion_normalized],
                     "classes": list(self.classes)}
        return [
            ReportSection("metrics", "Metrics", "_metrics_segmentation.html.j2",
                          {"rows": rows, "per_class": per_class, "histogram": segmaps.dice_histogram(m.image_dice)}),
            ReportSection("confusion", "Pixel confusion matrix", "_confusion.html.j2", {"confusion": confusion}),
        ]

    def headline(self, metrics: TaskMetrics) -> str:
        m = _seg(metrics)
        lo, hi = m.mean_iou_ci
        return (f"Mean IoU {fmt(m.mean_iou, 4)} (95 % CI {fmt(lo, 4)}–{fmt(hi, 4)}), pixel accuracy "
                f"{fmt(m.pixel_accuracy, 4)}, mean Dice {fmt(m.scalar('mean_dice'), 4)}, n = {m.n} images.")

    # ---- samples: best, worst and most uncertain images, overall and per class ------------------------------
    def _class_dice(self, preds: Predictions) -> np.ndarray:
        """(N, C) each image's Dice per class (NaN where the class is in neither its truth nor its prediction)."""
        assert preds.dense is not None and preds.dense_truth is not None
        return class_ratios(image_confusions(preds.dense_truth, preds.dense, len(self.classes)))[1]

    def select(self, preds: Predictions, k: int, per_class: int) -> Picks:
        dice = self._class_dice(preds)
        margin = preds.probs[:, -1]
        mean = np.array([np.nanmean(d) if np.isfinite(d).any() else np.nan for d in dice])
        main = self.targets(preds, np.arange(preds.n), "predicted")  # the largest foreground class

        def picks(rows: np.ndarray, score: np.ndarray, target: np.ndarray, scope: str, n: int,
                  where: str) -> dict[PickCategory, tuple[Pick, ...]]:
            rows = rows[np.isfinite(score[rows])]
            best = rows[np.lexsort((rows, -score[rows]))][:n]
            # worst: strictly below the best score of the scope and not already picked as best, so no image is both
            # "#1 best" and "#1 worst" (when every image scores the same, there is no worst)
            top = score[rows].max() if len(rows) else np.nan
            rest = rows[(score[rows] < top) & ~np.isin(rows, best)]
            order = {"correct": best, "incorrect": rest[np.lexsort((rest, score[rest]))][:n],
                     "borderline": rows[np.lexsort((rows, margin[rows]))][:n]}
            what = {"correct": "best", "incorrect": "worst", "borderline": "least certain"}
            return {cat: tuple(Pick(str(preds.ids[r]), cat, scope, int(target[r]), int(target[r]), float(score[r]),
                                    float(margin[r]),
                                    f"Dice {score[r]:.3f}, mean pixel margin {margin[r]:.3f}: #{i} {what[cat]} {where}",
                                    target=int(target[r]))
                               for i, r in enumerate(o, start=1)) for cat, o in order.items()}

        every = np.arange(preds.n)
        overall = picks(every, mean, main, "overall", k, "overall (mean Dice over its classes)")
        by_class = {c: picks(every, dice[:, c], np.full(preds.n, c), f"class:{name}", per_class, f"for '{name}'")
                    for c, name in enumerate(self.classes)}
        return Picks(overall=overall, per_class=by_class)

    def outcome(self, preds: Predictions) -> np.ndarray | None:
        return None  # an image is not right or wrong as a whole: its Dice says how far

    def sample_sections(self, preds: Predictions, picks: Picks, images: Mapping[str, Any]) -> list[ReportSection]:
        """The picked images with their true and predicted masks and where they disagree."""
        assert preds.dense is not None and preds.dense_truth is not None
        rows = []
        for sid in picks.all_ids():
            view = images.get(sid)
            if view is None:
                continue
            i = int(preds.index_of([sid])[0])
            rows.append({"id": sid, **segmaps.mask_cells(view.image, preds.dense_truth[i], preds.dense[i],
                                                         len(self.classes))})
        return [ReportSection("masks", "Predicted and true masks", "_masks.html.j2",
                              {"rows": rows, "legend": segmaps.legend(self.classes)})]

    def describe(self, preds: Predictions, row: int) -> SampleSummary:
        present = [c for c, on in zip(self.classes, preds.labels[row], strict=True) if on]
        areas = self._areas(preds, np.array([row]))[0]
        predicted = [c for c, a in zip(self.classes, areas, strict=True) if a > (0 if preds.dense is not None
                                                                               else PRESENT)]
        return SampleSummary(label=", ".join(present) or "(none)", predicted=", ".join(predicted) or "(none)",
                             confidence=float(preds.probs[row, -1]), correct=None)

    def predictions_json(self, preds: Predictions) -> dict[str, Any]:
        return {"ids": [str(s) for s in preds.ids], "classes_present": preds.labels,
                "predicted_area": preds.probs[:, :-1], "mean_margin": preds.probs[:, -1]}

    def targets(self, preds: Predictions, rows: np.ndarray, mode: TargetMode) -> np.ndarray:
        """The class explained when a pick names none: the class with most predicted pixels that is not the first
        class (usually the background), else the first."""
        if mode == "label" and preds.dense_truth is not None:  # the class with most true pixels
            preds = replace(preds, dense=preds.dense_truth)
        areas = self._areas(preds, rows).copy()
        floor = 0.0 if preds.dense is not None else PRESENT
        if areas.shape[1] > 1:
            areas[:, 0] = np.where(areas[:, 1:].max(axis=1) > floor, -1.0, areas[:, 0])
        return areas.argmax(axis=1).astype(np.int64)


def _seg(metrics: TaskMetrics) -> SegmentationMetrics:
    if not isinstance(metrics, SegmentationMetrics):
        raise TypeError(f"segmentation metrics expected, got {type(metrics).__name__}")
    return metrics
