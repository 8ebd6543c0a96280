"""Multi-label classification: K independent sigmoids (an image can show several findings); each label audited at
its own operating threshold, explained and judged label by label."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from ..drawing import curves
from ..drawing.fmt import fmt
from ..errors import ModelError
from ..products import Pick, PickCategory, Picks, Predictions
from ..scoring.multilabel import MultilabelMetrics, multilabel_metrics
from ..selection.threshold import CATEGORIES, LabelView, make_pick, ranked, take
from .base import ReportSection, SampleSummary, TargetMode, Task, TaskMetrics, TaskOptions
from .binary import calibration_section, choose, label_section, threshold_of

NONE = "(none)"


class MultilabelTask(Task):
    name = "multilabel"
    title = "multi-label classification (independent sigmoids)"
    model_views = False  # embeddings coloured by one class do not fit samples with several labels
    # class-level and paired-comparison rules read one class per sample: not for label sets
    provides = frozenset({"whole_image", "maps"})
    key_metric, group_metric = "auroc", "auroc:{group}"  # macro AUROC over the labels; per label
    pick_kinds = MappingProxyType({  # right and wrong as the decisions at the operating threshold define them
        "correct": ("correct", "right at the threshold (most confident)"),
        "incorrect": ("incorrect", "wrong at the threshold (misses first)"),
        "borderline": ("borderline", "closest to the threshold")})
    rule_hint = "use metric_min with a per-label metric such as 'sensitivity:<label>' or 'min_sensitivity'"

    def __init__(self, classes: Sequence[str], options: TaskOptions | None = None) -> None:
        super().__init__(classes, options)
        picked = [threshold_of(self.options, c) for c in self.classes]
        self.thresholds = np.array([t for t, _ in picked])
        self.sources = [src for _, src in picked]

    # ---- outputs -> scores --------------------------------------------------------------------------------
    def check_outputs(self, outputs: object, batch: int) -> torch.Tensor:
        K = len(self.classes)
        if not isinstance(outputs, torch.Tensor):
            raise ModelError(f"the model returned {type(outputs).__name__}, expected a tensor of logits")
        if outputs.dim() != 2 or outputs.shape[0] != batch or outputs.shape[1] != K:
            raise ModelError(f"the model output has shape {tuple(outputs.shape)}; a multi-label task with {K} labels "
                             f"needs (batch, {K}) logits")
        out = outputs.float()
        in_unit = bool(((out >= 0) & (out <= 1)).all())
        if self.output_kind == "auto" and in_unit and out.numel() >= 8:
            raise ModelError("every output lies in [0, 1], as sigmoids' would: a second sigmoid would squash them; set "
                             'model.output_kind = "probabilities" if forward applies the sigmoid (or "logits")')
        if self.output_kind == "probabilities" and not in_unit:
            raise ModelError('model.output_kind = "probabilities" but the outputs leave [0, 1]')
        return out

    def to_scores(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float() if self.output_kind == "probabilities" else torch.sigmoid(outputs.float())

    # ---- operating points ---------------------------------------------------------------------------------
    def fit(self, preds: Predictions, records: Sequence[Any] = (), preprocess: Any = None
            ) -> tuple[MultilabelTask, Predictions]:
        fitted = copy.copy(self)
        picked = [choose(self.options, c, preds.labels[:, k], preds.probs[:, k]) for k, c in enumerate(self.classes)]
        fitted.thresholds = np.array([t for t, _ in picked])
        fitted.sources = [src for _, src in picked]
        return fitted, replace(preds, decisions=(preds.probs >= fitted.thresholds[None, :]).astype(np.int64))

    def members(self, preds: Predictions, group: int, by: str) -> np.ndarray:
        return (preds.preds if by == "predicted" else preds.labels)[:, group] == 1

    def decide(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        t = np.asarray(targets, dtype=np.int64)
        return scores[np.arange(len(t)), t] >= self.thresholds[t]

    # ---- metrics ------------------------------------------------------------------------------------------
    def metrics(self, preds: Predictions, rng: np.random.Generator,
                subgroups: Sequence[str] = ()) -> MultilabelMetrics:
        return multilabel_metrics(self.classes, preds.labels, preds.probs, self.thresholds, self.sources,
                                  int(rng.integers(2**31 - 1)))

    def results_sections(self, metrics: TaskMetrics) -> dict[str, Any]:
        m = _ml(metrics)
        macro = {name: m.scalar(name) for name in ("auroc", "auprc", "sensitivity", "specificity", "ppv", "npv", "f1")}
        return {
            "metrics": {
                **{f"macro_{k}": v for k, v in macro.items()},
                **{f"macro_{k}_ci95": list(ci) for k, ci in m.macro_ci.items()},
                "micro_auroc": m.micro_auroc, "micro_auroc_ci95": list(m.micro_auroc_ci),
                "micro_auprc": m.micro_auprc, "micro_auprc_ci95": list(m.micro_auprc_ci),
                "subset_accuracy": m.subset_accuracy, "hamming_loss": m.hamming_loss,
                "per_label": [{"label": lm.name, "n_positive": lm.n_positive, "n_negative": lm.n_negative,
                               **label_section(lm), "brier": lm.brier} for lm in m.labels],
            },
            "label_cooccurrence": {"labels": list(self.classes), "counts": m.cooccurrence},
            "calibration_per_label": {lm.name: calibration_section(lm) for lm in m.labels},
            "curves": {lm.name: {"roc": lm.roc, "pr": lm.pr} for lm in m.labels},
        }

    def report_sections(self, metrics: TaskMetrics) -> list[ReportSection]:
        m = _ml(metrics)

        def ci(v: float, c: tuple[float, float] | None) -> str:
            return fmt(v) + (f" ({fmt(c[0])}–{fmt(c[1])})" if c else "")

        summary = [{"name": "Macro AUROC (95 % CI)", "value": ci(m.scalar("auroc"), m.interval("auroc"))},
                   {"name": "Macro average precision", "value": ci(m.scalar("auprc"), m.interval("auprc"))},
                   {"name": "Micro AUROC", "value": ci(m.micro_auroc, m.micro_auroc_ci)},
                   {"name": "Macro sensitivity / specificity at the thresholds",
                    "value": f"{fmt(m.scalar('sensitivity'))} / {fmt(m.scalar('specificity'))}"},
                   {"name": "Exact-match (subset) accuracy / Hamming loss",
                    "value": f"{fmt(m.subset_accuracy)} / {fmt(m.hamming_loss)}"},
                   {"name": "Samples", "value": str(m.n)}]
        per_label = [{"name": lm.name, "n": f"{lm.n_positive} / {lm.n_negative}",
                      "auroc": ci(lm.auroc, lm.auroc_ci), "auprc": ci(lm.auprc, lm.auprc_ci),
                      "threshold": f"{lm.op.threshold:.3g}", "source": lm.threshold_source,
                      **{k: ci(lm.op.rate(k), lm.op.interval(k)) for k in ("sensitivity", "specificity", "ppv")},
                      "f1": fmt(lm.op.f1), "counts": f"{lm.op.tp}/{lm.op.fp}/{lm.op.tn}/{lm.op.fn}",
                      "ece": fmt(lm.calibration.ece)} for lm in m.labels]
        return [
            ReportSection("metrics", "Metrics", "_metrics_multilabel.html.j2",
                          {"summary": summary, "per_label": per_label,
                           "cooccurrence": {"labels": list(self.classes), "counts": m.cooccurrence.tolist()}}),
            ReportSection("curves", "ROC and precision-recall per label", "_curves.html.j2",
                          {"figure": curves.roc_pr_figure(list(m.labels))}),
        ]

    def headline(self, metrics: TaskMetrics) -> str:
        m = _ml(metrics)
        worst = min(m.labels, key=lambda lm: lm.auroc if np.isfinite(lm.auroc) else 2.0)
        return (f"Macro AUROC {fmt(m.scalar('auroc'), 4)}, lowest '{worst.name}' {fmt(worst.auroc, 4)}; exact-match "
                f"accuracy {fmt(m.subset_accuracy, 4)}, n = {m.n}, {len(m.labels)} labels.")

    # ---- samples ------------------------------------------------------------------------------------------
    def views(self, preds: Predictions) -> list[LabelView]:
        return [LabelView(c, k, preds.labels[:, k], preds.probs[:, k], float(self.thresholds[k]), "absent", "present")
                for k, c in enumerate(self.classes)]

    def select(self, preds: Predictions, k: int, per_class: int) -> Picks:
        views = self.views(preds)
        every = np.arange(preds.n)
        overall: dict[PickCategory, tuple[Pick, ...]] = {}
        for c in CATEGORIES:
            cands = sorted((key, j, row) for j, v in enumerate(views) for row, key in ranked(v, every, c))
            overall[c] = tuple(make_pick(views[j], c, row, rank, "overall", str(preds.ids[row]),
                                         f"over all labels, '{views[j].name}'")
                               for rank, (_, j, row) in enumerate(cands[:k], start=1))
        by_label = {j: {c: take(v, preds.ids, every, c, per_class, f"label:{v.name}", f"for '{v.name}'")
                        for c in CATEGORIES} for j, v in enumerate(views)}
        return Picks(overall=overall, per_class=by_label)

    def outcome(self, preds: Predictions) -> np.ndarray:
        return preds.correct

    def describe(self, preds: Predictions, row: int) -> SampleSummary:
        def names(v: np.ndarray) -> str:
            return "|".join(c for c, on in zip(self.classes, v, strict=True) if on) or NONE

        return SampleSummary(label=names(preds.labels[row]), predicted=names(preds.preds[row]),
                             confidence=float(preds.probs[row].max()), correct=bool(preds.correct[row]))

    def predictions_json(self, preds: Predictions) -> dict[str, Any]:
        return {"ids": [str(s) for s in preds.ids], "labels": preds.labels, "predicted": preds.preds,
                "scores": preds.probs}

    def targets(self, preds: Predictions, rows: np.ndarray, mode: TargetMode) -> np.ndarray:
        """The label a sample's maps explain when its pick names none: its most probable predicted (or true) label,
        else its most probable label."""
        on = (preds.preds if mode == "predicted" else preds.labels)[rows] == 1
        s = preds.probs[rows]
        return np.where(on.any(axis=1), np.where(on, s, -1.0).argmax(axis=1), s.argmax(axis=1)).astype(np.int64)


def _ml(metrics: TaskMetrics) -> MultilabelMetrics:
    if not isinstance(metrics, MultilabelMetrics):
        raise TypeError(f"multi-label metrics expected, got {type(metrics).__name__}")
    return metrics
